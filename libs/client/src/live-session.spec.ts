import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './cli.js';
import type { StreamSummary } from './cli-commands.js';
import { EndpointPool } from './endpoint-pool.js';
import { LiveSession, LiveSessionError, type LiveFailover, type LiveOutput } from './live-session.js';
import { StreamClient } from './stream-client.js';
import { FakeLiveCluster, type FakeClusterOptions } from './testing/fake-live-cluster.js';

/**
 * The session client against an in-process fake of the API and two nodes (real loopback sockets):
 * ordering, the window, replay dedupe, and the failover decisions. Timings belong in the bench.
 */

const WIDTH = 4;
const HEIGHT = 2;

/** Frame `index`: its first byte is index % 256, so an output names the frame it came from. */
function frame(index: number): Buffer {
  const data = Buffer.alloc(WIDTH * HEIGHT * 4, 0x40);
  data[0] = index % 256;
  return data;
}

describe('LiveSession', () => {
  let cluster: FakeLiveCluster;
  let client: StreamClient;
  const failovers: LiveFailover[] = [];

  async function start(options: FakeClusterOptions = {}) {
    cluster = await FakeLiveCluster.start({ width: WIDTH, height: HEIGHT, ...options });
    client = new StreamClient(new EndpointPool(`${cluster.apiUrl}/,timeout=2,reconnect-delay=0.05`), {
      apiKey: options.apiKey,
    });
    failovers.length = 0;
  }

  afterEach(async () => {
    await cluster?.stop();
  });

  /** Opens a session and reads its outputs in the background. */
  async function open(options: Parameters<typeof LiveSession.open>[2] = {}) {
    const session = await LiveSession.open(client, cluster.view(), {
      frameTimeoutMs: 300,
      onFailover: (failover) => failovers.push(failover),
      ...options,
    });
    const outputs: LiveOutput[] = [];
    const reading = (async () => {
      for await (const output of session) outputs.push(output);
    })();
    reading.catch(() => undefined);
    return { session, outputs, reading };
  }

  /** Sends frames from..to-1; `before(index)` runs before each send. */
  async function sendFrames(
    session: LiveSession,
    from: number,
    to: number,
    before?: (index: number) => void,
  ) {
    for (let index = from; index < to; index++) {
      before?.(index);
      expect(await session.send(frame(index))).toBe(index);
    }
  }

  async function until(check: () => boolean): Promise<void> {
    while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  function expectInOrder(outputs: LiveOutput[], count: number) {
    expect(outputs.map((output) => output.frame)).toEqual([...Array(count).keys()]);
    // Each output is the encoding of its own frame (its first byte).
    for (const output of outputs) expect(output.data.toString().split(':')[2]).toBe(String(output.frame));
  }

  it('sends frames within the window and gives each output once, in frame order', async () => {
    await start({ window: 3 });
    cluster.node('node-a').delayMs = 5;
    const { session, outputs, reading } = await open();
    expect(session.window).toBe(3);
    expect(session.node).toBe('node-a');
    await sendFrames(session, 0, 30);
    await session.close();
    await reading;
    expectInOrder(outputs, 30);
    expect(outputs.filter((output) => output.keyframe).map((output) => output.frame)).toEqual([0]);
    expect(cluster.node('node-a').maxInFlight).toBeLessThanOrEqual(3);
    expect(cluster.node('node-a').maxInFlight).toBeGreaterThan(1);
    expect(session.heldFrames).toBe(0);
    expect(failovers).toEqual([]);
  });

  it('kill -9 of the node: reports it, moves on with since, re-sends what the new node lacks', async () => {
    await start({ window: 4 });
    const nodeA = cluster.node('node-a');
    nodeA.delayMs = 20;
    const { session, outputs, reading } = await open();
    await sendFrames(session, 0, 24, (index) => {
      if (index === 12) cluster.kill('node-a');
    });
    await session.close();
    await reading;
    expectInOrder(outputs, 24);
    expect(failovers).toEqual([expect.objectContaining({ node: 'node-a', reported: true })]);
    expect(cluster.apiRequests).toContain(`/v1/streams/${cluster.id}?unreachable=node-a`);
    const takeover = outputs.find((output) => output.node === 'node-b')!.frame;
    expect(outputs.filter((output) => output.keyframe).map((output) => output.frame)).toEqual([0, takeover]);
    // The new node got exactly the frames from the log's next frame on.
    const nodeB = cluster.node('node-b');
    expect(nodeB.received).toEqual([...Array(24 - takeover).keys()].map((index) => index + takeover));
    expect(cluster.connections.at(-1)).toEqual({ node: 'node-b', since: takeover - 1 });
    expect([...cluster.log.keys()]).toEqual([...Array(24).keys()]);
  });

  it('an output logged but never sent (the socket dropped) comes from the replay, once, and is not sent again', async () => {
    await start();
    const nodeA = cluster.node('node-a');
    nodeA.dropAfterCommit = 5;
    const { session, outputs, reading } = await open();
    await sendFrames(session, 0, 10);
    await session.close();
    await reading;
    expectInOrder(outputs, 10);
    // The node answered the API's probe: the stream stayed there.
    expect(outputs.every((output) => output.node === 'node-a')).toBe(true);
    expect(failovers).toEqual([expect.objectContaining({ node: 'node-a', reported: true })]);
    expect(nodeA.received.filter((received) => received === 5)).toEqual([5]);
    expect(outputs.filter((output) => output.replayed).map((output) => output.frame)).toEqual([5]);
  });

  it('a node that stops answering is given up after the frame timeout and reported', async () => {
    await start({ window: 2 });
    const { session, outputs, reading } = await open({ frameTimeoutMs: 200, firstOutputTimeoutMs: 200 });
    await sendFrames(session, 0, 10, (index) => {
      if (index === 4) cluster.node('node-a').hung = true;
    });
    await session.close();
    await reading;
    expectInOrder(outputs, 10);
    expect(failovers).toEqual([
      expect.objectContaining({ node: 'node-a', reported: true, reason: expect.stringMatching(/no output/) }),
    ]);
    expect(outputs.at(-1)!.node).toBe('node-b');
  });

  it('a node that is only slow keeps its socket: the API answers with the same node, the timeout grows', async () => {
    await start({ window: 2 });
    cluster.node('node-a').delayMs = 150;
    const { session, outputs, reading } = await open({ frameTimeoutMs: 50, firstOutputTimeoutMs: 50 });
    await sendFrames(session, 0, 8);
    await session.close();
    await reading;
    expectInOrder(outputs, 8);
    expect(cluster.apiRequests).toContain(`/v1/streams/${cluster.id}?unreachable=node-a`);
    expect(failovers).toEqual([]);
    expect(cluster.connections).toHaveLength(1);
  });

  it('a draining node (1012) makes it ask the API again without reporting the node', async () => {
    await start();
    const { session, outputs, reading } = await open();
    await sendFrames(session, 0, 12, (index) => {
      if (index === 6) cluster.drain('node-a', 'node-b');
    });
    await session.close();
    await reading;
    expectInOrder(outputs, 12);
    expect(failovers).toEqual([expect.objectContaining({ node: 'node-a', reported: false })]);
    expect(cluster.apiRequests.filter((url) => url.includes('unreachable'))).toEqual([]);
  });

  it('keeps frames whose outputs are not durable until `durable`, and survives losing them with the node', async () => {
    await start();
    const nodeA = cluster.node('node-a');
    const { session, outputs, reading } = await open();
    await sendFrames(session, 0, 4);
    await session.drain();
    nodeA.nonDurable = true;
    await sendFrames(session, 4, 8);
    await session.drain();
    await until(() => outputs.length === 8);
    expect(outputs.slice(4).map((output) => output.durable)).toEqual([false, false, false, false]);
    expect(session.heldFrames).toBe(4);
    cluster.flush('node-a');
    await session.drain({ durable: true });
    expect(session.heldFrames).toBe(0);

    // Redis away again, then the node dies: its outputs never reached the log. The new node encodes
    // them again (not given twice) and the first frame after them is a keyframe for the caller.
    nodeA.nonDurable = true;
    await sendFrames(session, 8, 12);
    await session.drain();
    cluster.kill('node-a');
    await sendFrames(session, 12, 16);
    await session.close();
    await reading;
    expectInOrder(outputs, 16);
    expect(cluster.node('node-b').received).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect(outputs.filter((output) => output.keyframe).map((output) => output.frame)).toEqual([0, 12]);
  });

  it('asks for a keyframe: the next frame sent is one', async () => {
    await start();
    const { session, outputs, reading } = await open();
    await sendFrames(session, 0, 3);
    await session.drain();
    session.requestKeyframe();
    await sendFrames(session, 3, 6);
    await session.close();
    await reading;
    expect(outputs.filter((output) => output.keyframe).map((output) => output.frame)).toEqual([0, 3]);
  });

  it('sends LZ4 blocks (u32 LE raw size + block) to a stream created with compression lz4', async () => {
    await start({ compression: 'lz4' });
    const { session, outputs, reading } = await open();
    await sendFrames(session, 0, 5);
    await session.close();
    await reading;
    expectInOrder(outputs, 5);
  });

  it('through the API relay with the API key, and again after the relay closes with 4409', async () => {
    await start({ apiKey: 'secret-key' });
    const { session, outputs, reading } = await open({ viaApi: true });
    await sendFrames(session, 0, 12, (index) => {
      if (index === 6) cluster.kill('node-a');
    });
    await session.close();
    await reading;
    expectInOrder(outputs, 12);
    expect(outputs.at(-1)!.node).toBe('node-b');
    expect(failovers[0]).toEqual(expect.objectContaining({ node: 'node-a' }));
  });

  it('fails with the close code when the node refuses a frame (4400)', async () => {
    await start();
    const { session, reading } = await open();
    await session.send(frame(0));
    await session.send(Buffer.alloc(3));
    await expect(reading).rejects.toThrow(LiveSessionError);
    await expect(reading).rejects.toThrow(/4400/);
    await expect(session.send(frame(2))).rejects.toThrow(/4400/);
  });
});

describe('CLI stream --mode live', () => {
  let cluster: FakeLiveCluster;
  const dir = mkdtempSync(join(tmpdir(), 'live-cli-'));

  beforeEach(async () => {
    cluster = await FakeLiveCluster.start({ width: WIDTH, height: HEIGHT });
  });

  afterEach(async () => {
    await cluster.stop();
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function run(extra: string[]) {
    let stdout = '';
    let stderr = '';
    const argv = [
      'stream',
      '--api',
      `${cluster.apiUrl}/`,
      '--codec',
      'h264',
      '--mode',
      'live',
      '--synthetic',
      '12',
      '--width',
      String(WIDTH),
      '--height',
      String(HEIGHT),
      ...extra,
    ];
    const code = await main(
      argv,
      {},
      {
        stdout: { write: (text: string) => (stdout += text) },
        stderr: { write: (text: string) => (stderr += text) },
      },
    );
    return { code, stderr, summary: JSON.parse(stdout) as StreamSummary };
  }

  it('sends the frames over the session and writes every packet in frame order', async () => {
    const out = join(dir, 'direct');
    const { code, summary, stderr } = await run(['--out', out]);
    expect({ code, stderr: stderr.match(/error.*/)?.[0] }).toEqual({ code: 0, stderr: undefined });
    expect(summary).toMatchObject({ frames: 12, outputs: 12, keyframes: 1, failovers: 0 });
    expect(stderr).toMatch(/over its session on node node-a/);
    const written = readFileSync(join(out, 'stream.h264'), 'utf8');
    expect(written).toBe(
      [...Array(12).keys()].map((frame) => cluster.log.get(frame)!.data.toString()).join(''),
    );
    expect(cluster.apiRequests.filter((url) => url.includes('/frames'))).toEqual([]);
    expect(cluster.record.state).toBe('ended');
  });

  it('--via-api goes through the relay', async () => {
    const { code, summary, stderr } = await run(['--via-api']);
    expect(code).toBe(0);
    expect(summary).toMatchObject({ outputs: 12 });
    expect(stderr).toMatch(/through the API relay/);
  });
});
