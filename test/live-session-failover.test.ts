import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '#client/cli.js';
import { decodeVideoToRgb, psnr } from '#codecs/testing/media-check.js';
import { rgbaToPixelFormat, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import type { NodeRecord } from '#contracts';
import {
  EndpointPool,
  LiveSession,
  StreamClient,
  type LiveFailover,
  type LiveOutput,
  type OutputEventWithData,
} from '#client';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir, waitUntil } from './support.js';
import { expectVideoOf } from './stream-support.js';

/**
 * The SDK's live session against real processes (the API, nodes with their data ports, Redis, ffmpeg):
 * kill -9 of the node that holds the stream, mid-session, directly and through the API's relay. The
 * client finds out by itself, reports the node, reconnects where the API moved the stream and sends
 * again what the new node lacks; the caller gets every frame's output once, in order, and they decode
 * as one video of the frames sent. The stream's event log holds exactly what the client received.
 */
const KEY = 'live-failover-key-0123456789';
// Registry records outlive a killed node by this long: the move the tests see is the client's report.
const NODE_TIMEOUT_S = 20;

/** Frames and their bgra bytes, built before any connection is pooled (PITFALLS.md, "Sockets and tests"). */
function framesOf(width: number, height: number, count: number): { inputs: Buffer[]; bgra: Buffer[] } {
  const inputs = Array.from({ length: count }, (_, index) => syntheticRgba(width, height, index, false));
  return { inputs, bgra: inputs.map((rgba) => rgbaToPixelFormat(rgba, 'bgra')) };
}
const KILL = { width: 320, height: 240, ...framesOf(320, 240, 60) };
const SMALL = { width: 160, height: 120, ...framesOf(160, 120, 24) };

describe('live sessions through the SDK, with kill -9 of the node', () => {
  let stack: ServiceStack;
  let client: StreamClient;
  let spares = 0;
  const dir = tempDir('encoder-live-failover-');

  beforeAll(async () => {
    stack = await ServiceStack.start({ dataDir: dir.path, env: { API_KEYS: KEY } });
    // One at a time: three nodes starting at once on a loaded 2-core box can miss the stack's deadline.
    for (const name of ['node-a', 'node-b', 'node-c'])
      await stack.startWorker({ name, timeoutSeconds: NODE_TIMEOUT_S });
    client = new StreamClient(new EndpointPool(`${stack.apiUrl}/,timeout=5,reconnect-delay=0.2`), {
      apiKey: KEY,
    });
  }, 240_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  const nodeNamed = async (id: string): Promise<NodeRecord> => {
    const node = (await client.nodes()).find((candidate) => candidate.id === id);
    if (!node) throw new Error(`node ${id} is not registered`);
    return node;
  };

  /** Reads a session's outputs in the background. */
  function collect(session: LiveSession) {
    const outputs: LiveOutput[] = [];
    const reading = (async () => {
      for await (const output of session) outputs.push(output);
    })();
    reading.catch(() => undefined);
    return { outputs, reading };
  }

  /**
   * Sends `frames` over a new session of a new stream; before frame `killAt`, once some outputs came,
   * kills the node holding the stream with -9. Returns what the caller received and the node killed.
   */
  async function runSession(
    frames: { width: number; height: number; bgra: Buffer[] },
    options: { viaApi?: boolean; killAt?: number; signal?: NodeJS.Signals } = {},
  ) {
    const view = await client.create({
      codec: 'h264',
      mode: 'live',
      width: frames.width,
      height: frames.height,
      format: 'bgra',
      fps: 30,
    });
    const failovers: LiveFailover[] = [];
    const session = await LiveSession.open(client, view, {
      viaApi: options.viaApi,
      // A loaded CI box can be slow to answer; the kill is seen as a dropped socket, not a timeout.
      frameTimeoutMs: 5000,
      onFailover: (failover) => failovers.push(failover),
    });
    const { outputs, reading } = collect(session);
    let killed: NodeRecord | undefined;
    for (let index = 0; index < frames.bgra.length; index++) {
      if (index === options.killAt) {
        await waitUntil(() => outputs.length >= options.killAt! / 2, 60_000, 'the first outputs');
        killed = await nodeNamed(session.node);
        const signal = options.signal ?? 'SIGKILL';
        if (signal === 'SIGKILL') expect(await stack.signalWorker(killed.name, signal)).toBeNull();
        // A draining node hands its streams over while the session goes on sending.
        else void stack.signalWorker(killed.name, signal);
      }
      expect(await session.send(frames.bgra[index])).toBe(index);
    }
    await session.close();
    await reading;
    await client.close(view.id);
    return { view, session, outputs, failovers, killed };
  }

  /** Starts a node in place of a killed one, once the registry has let the dead one go. */
  async function replace(killed: NodeRecord) {
    await waitUntil(
      async () => !(await client.nodes()).some((node) => node.id === killed.id),
      60_000,
      'the killed node to leave the registry',
    );
    await stack.startWorker({ name: `spare-${++spares}`, timeoutSeconds: NODE_TIMEOUT_S });
  }

  it('direct: every output once, in order, keyframes at 0 and the takeover, one video, the log as received', async () => {
    const { view, outputs, failovers, killed } = await runSession(KILL, { killAt: 20 });
    const count = KILL.bgra.length;
    expect(outputs.map((output) => output.frame)).toEqual([...Array(count).keys()]);
    expect(failovers.length).toBeGreaterThanOrEqual(1);
    expect(failovers[0]).toMatchObject({ node: killed!.id, reported: true });

    // Outputs the killed node logged but could not send come from the log on the new connection.
    const takeover = outputs.findIndex((output) => output.node !== killed!.id && !output.replayed);
    expect(takeover).toBeGreaterThan(0);
    expect(outputs.slice(takeover).every((output) => output.node !== killed!.id && !output.replayed)).toBe(
      true,
    );
    expect(outputs.filter((output) => output.keyframe).map((output) => output.frame)).toEqual([0, takeover]);
    expect(outputs.every((output) => output.durable)).toBe(true);
    await expectVideoOf(
      Buffer.concat(outputs.map((output) => output.data)),
      KILL.inputs,
      KILL.width,
      KILL.height,
    );

    // The stream's event log holds exactly the outputs the client was given (the fenced old node
    // wrote nothing after the move), with the same bytes.
    const logged: OutputEventWithData[] = [];
    for await (const event of client.followWs(view.id)) if (event.type === 'output') logged.push(event);
    expect(logged.map((event) => [event.frame, event.keyframe, event.bytes])).toEqual(
      outputs.map((output) => [output.frame, output.keyframe, output.data.length]),
    );
    expect(logged.every((event, index) => event.data.equals(outputs[index].data))).toBe(true);
    await replace(killed!);
  });

  it('the CLI sends a live stream over its session by default and writes one decodable video', async () => {
    const input = join(dir.path, 'small.bgra');
    writeFileSync(input, Buffer.concat(SMALL.bgra));
    const out = join(dir.path, 'cli-out');
    let stdout = '';
    let stderr = '';
    const code = await main(
      [
        'stream',
        '--api',
        `${stack.apiUrl}/`,
        '--codec',
        'h264',
        '--mode',
        'live',
        '--input',
        input,
        '--width',
        String(SMALL.width),
        '--height',
        String(SMALL.height),
        '--format',
        'bgra',
        '--out',
        out,
        // Not about timeouts: a loaded CI box must not make it give up on a slow node.
        '--frame-timeout',
        '5000',
      ],
      { API_KEY: KEY },
      {
        stdout: { write: (text: string) => (stdout += text) },
        stderr: { write: (text: string) => (stderr += text) },
      },
    );
    expect({ code, stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/over its session on node/) });
    expect(JSON.parse(stdout)).toMatchObject({ frames: 24, outputs: 24, keyframes: 1, failovers: 0 });
    await expectVideoOf(readFileSync(join(out, 'stream.h264')), SMALL.inputs, SMALL.width, SMALL.height);
  });

  it('the relay gives the same decoded frames as the direct session', async () => {
    const direct = await runSession(SMALL);
    const relayed = await runSession(SMALL, { viaApi: true });
    for (const run of [direct, relayed]) {
      expect(run.outputs.map((output) => output.frame)).toEqual([...Array(SMALL.bgra.length).keys()]);
      expect(run.failovers).toEqual([]);
      await expectVideoOf(
        Buffer.concat(run.outputs.map((output) => output.data)),
        SMALL.inputs,
        SMALL.width,
        SMALL.height,
      );
    }
    const [a, b] = await Promise.all(
      [direct, relayed].map((run) =>
        decodeVideoToRgb(Buffer.concat(run.outputs.map((output) => output.data))),
      ),
    );
    const frameBytes = SMALL.width * SMALL.height * 3;
    for (let index = 0; index < SMALL.bgra.length; index++) {
      const range = [index * frameBytes, (index + 1) * frameBytes] as const;
      expect(psnr(a.subarray(...range), b.subarray(...range))).toBeGreaterThan(45);
    }
  });

  it('through the relay, the SDK survives a kill -9 too: the relay closes, the client asks again', async () => {
    const { outputs, failovers, killed } = await runSession(KILL, { viaApi: true, killAt: 20 });
    expect(outputs.map((output) => output.frame)).toEqual([...Array(KILL.bgra.length).keys()]);
    expect(failovers.length).toBeGreaterThanOrEqual(1);
    expect(failovers[0].node).toBe(killed!.id);
    // Outputs the killed node logged but could not send come from the log on the new connection.
    const takeover = outputs.findIndex((output) => output.node !== killed!.id && !output.replayed);
    expect(outputs.filter((output) => output.keyframe).map((output) => output.frame)).toEqual([0, takeover]);
    await expectVideoOf(
      Buffer.concat(outputs.map((output) => output.data)),
      KILL.inputs,
      KILL.width,
      KILL.height,
    );
    await replace(killed!);
  });

  it('SIGTERM of the node: it hands the stream over and closes with 1012; the SDK asks again, nothing lost', async () => {
    const { outputs, failovers, killed } = await runSession(KILL, { killAt: 20, signal: 'SIGTERM' });
    expect(outputs.map((output) => output.frame)).toEqual([...Array(KILL.bgra.length).keys()]);
    const handover = failovers.find((failover) => failover.node === killed!.id);
    expect(handover).toMatchObject({ reported: false, reason: expect.stringMatching(/1012/) });
    expect(outputs.at(-1)!.node).not.toBe(killed!.id);
    await expectVideoOf(
      Buffer.concat(outputs.map((output) => output.data)),
      KILL.inputs,
      KILL.width,
      KILL.height,
    );
  });

  it('Redis away mid-session: outputs keep coming (not durable), frames are kept until the log catches up', async () => {
    const view = await client.create({
      codec: 'h264',
      mode: 'live',
      width: SMALL.width,
      height: SMALL.height,
      format: 'bgra',
    });
    const session = await LiveSession.open(client, view, { frameTimeoutMs: 5000 });
    const { outputs, reading } = collect(session);
    const third = SMALL.bgra.length / 3;
    for (let index = 0; index < third; index++) await session.send(SMALL.bgra[index]);
    await session.drain({ durable: true });
    await stack.redis!.stop();
    for (let index = third; index < 2 * third; index++) await session.send(SMALL.bgra[index]);
    await session.drain();
    const whileAway = outputs.slice(third).filter((output) => !output.durable).length;
    const heldWhileAway = session.heldFrames;
    await stack.redis!.start();
    await waitUntil(() => stack.client.ready(), 30_000, 'the API to see Redis again');
    for (let index = 2 * third; index < SMALL.bgra.length; index++) await session.send(SMALL.bgra[index]);
    await session.drain({ durable: true });
    expect(session.heldFrames).toBe(0);
    await session.close();
    await reading;
    await client.close(view.id);
    expect(outputs.map((output) => output.frame)).toEqual([...Array(SMALL.bgra.length).keys()]);
    expect(whileAway).toBeGreaterThan(0);
    expect(heldWhileAway).toBeGreaterThan(0);
    expect(outputs.filter((output) => output.keyframe).map((output) => output.frame)).toEqual([0]);
    await expectVideoOf(
      Buffer.concat(outputs.map((output) => output.data)),
      SMALL.inputs,
      SMALL.width,
      SMALL.height,
    );
  });
});
