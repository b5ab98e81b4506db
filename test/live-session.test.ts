import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { compressSync } from 'lz4-napi';
import { StreamStore, moveLiveStream } from '#cluster';
import { rgbaToPixelFormat, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import { ivfFileHeader, ivfFrameHeader } from '#client';
import type { StreamView } from '#contracts';
import { ServiceStack } from '#scripts/lib/stack.js';
import { ScriptProcess } from './process-support.js';
import { selfSignedCertificate, tempDir } from './support.js';
import { createLiveStream, expectVideoOf, readSse } from './stream-support.js';
import { TestSession, grantFor, patchParams, withRedis } from './session-support.js';

/**
 * Live sessions on a node's data port (API.md, "Live sessions"): frames straight to the node over one
 * WebSocket, one output per frame back, each logged before it is sent.
 */
const WIDTH = 160;
const HEIGHT = 120;
const COUNT = 64;

/** Frames built before any connection is pooled (PITFALLS.md, "Sockets and tests"). */
function framesOf(count: number): { inputs: Buffer[]; bgra: Buffer[] } {
  const inputs = Array.from({ length: count }, (_, index) => syntheticRgba(WIDTH, HEIGHT, index, false));
  return { inputs, bgra: inputs.map((rgba) => rgbaToPixelFormat(rgba, 'bgra')) };
}
const FRAMES = framesOf(COUNT);

function ivf(packets: Buffer[]): Buffer {
  return Buffer.concat([
    ivfFileHeader('vp8', WIDTH, HEIGHT, 30, packets.length),
    ...packets.flatMap((packet, index) => [ivfFrameHeader(packet.length, index), packet]),
  ]);
}

describe('live sessions on the data port', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-live-session-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      workers: [{ name: 'node-a', concurrency: 2 }],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  const live = (codec: string, extra: Record<string, unknown> = {}) =>
    createLiveStream(stack.apiUrl, WIDTH, HEIGHT, { codec, ...extra });

  it.each(['h264', 'vp8'] as const)(
    '%s: a direct session of 64 frames decodes to exactly those frames, with one keyframe, all logged',
    async (codec) => {
      const stream = await live(codec);
      const grant = await grantFor(stack, stream.id);
      const session = await TestSession.open(grant.url, { token: grant.token, since: -1 });
      const ready = await session.ready();
      expect(ready).toEqual({ type: 'ready', node: grant.node.id, nextFrame: 0, window: 4 });

      const outputs = await session.sendAll(FRAMES.bgra, ready.window);
      expect(outputs.map((output) => output.header.frame)).toEqual(FRAMES.bgra.map((_, index) => index));
      expect(outputs.filter((output) => output.header.keyframe).map((output) => output.header.frame)).toEqual(
        [0],
      );
      expect(outputs.every((output) => output.header.durable === undefined)).toBe(true);
      const packets = outputs.map((output) => output.data);
      await expectVideoOf(
        codec === 'h264' ? Buffer.concat(packets) : ivf(packets),
        FRAMES.inputs,
        WIDTH,
        HEIGHT,
      );
      session.close();
      await session.closed;

      // The log holds exactly what the client was sent, with the same bytes.
      await fetch(`${stack.apiUrl}/v1/streams/${stream.id}`, { method: 'DELETE' });
      const events = await readSse(stack.apiUrl, stream.id);
      const logged = events.filter((event) => event.type === 'output');
      expect(logged.map((event) => event.data.frame)).toEqual(outputs.map((output) => output.header.frame));
      expect(logged.map((event) => event.data.bytes)).toEqual(outputs.map((output) => output.data.length));
      // An SSE follower fetches each output's bytes by its job and index: the same bytes the session sent.
      for (const frame of [0, COUNT - 1]) {
        const event = logged[frame].data as { jobId: string; index: number };
        const response = await fetch(`${stack.apiUrl}/v1/jobs/${event.jobId}/outputs/${event.index}`);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toBe(codec === 'h264' ? 'video/h264' : 'video/vp8');
        expect(Buffer.from(await response.arrayBuffer()).equals(outputs[frame].data)).toBe(true);
      }
      const view = (await (await fetch(`${stack.apiUrl}/v1/streams/${stream.id}`)).json()) as StreamView;
      expect(view).toMatchObject({ frames: COUNT, state: 'ended' });
    },
  );

  it('lz4 frames (a u32 raw size and one block) encode like raw ones', async () => {
    const stream = await live('h264');
    // The stream parameter POST /v1/streams takes as `"compression": "lz4"`.
    await patchParams(stack, stream.id, { compression: 'lz4' });
    const grant = await grantFor(stack, stream.id);
    const session = await TestSession.open(grant.url, { token: grant.token });
    await session.ready();
    const compressed = FRAMES.bgra.slice(0, 8).map((frame) => compressSync(frame));
    const outputs = await session.sendAll(compressed, 4);
    await expectVideoOf(
      Buffer.concat(outputs.map((output) => output.data)),
      FRAMES.inputs.slice(0, 8),
      WIDTH,
      HEIGHT,
    );
    // A block that does not decode to its declared size, then a declared size that is not the frame's.
    const corrupt = Buffer.concat([compressed[0].subarray(0, 4), Buffer.alloc(64, 0xff)]);
    session.send(corrupt);
    expect((await session.closed).code).toBe(4400);
    expect(session.texts.at(-1)).toMatchObject({ type: 'error', message: expect.stringContaining('lz4') });
    const again = await TestSession.open(grant.url, { token: grant.token, since: 7 });
    expect((await again.ready()).nextFrame).toBe(8);
    const lying = Buffer.from(compressed[0]);
    lying.writeUInt32LE(WIDTH * HEIGHT * 4 * 100, 0);
    again.send(lying);
    expect((await again.closed).code).toBe(4400);
    expect(again.texts.at(-1)).toMatchObject({ message: expect.stringContaining('declares') });
  });

  it('a `keyframe` request makes the next frame a keyframe', async () => {
    const stream = await live('h264');
    const grant = await grantFor(stack, stream.id);
    const session = await TestSession.open(grant.url, { token: grant.token });
    await session.ready();
    const before = await session.sendAll(FRAMES.bgra.slice(0, 5), 4);
    session.send(JSON.stringify({ type: 'keyframe' }));
    const after = await session.sendAll(FRAMES.bgra.slice(5, 10), 4);
    const outputs = [...before, ...after];
    expect(outputs.filter((output) => output.header.keyframe).map((output) => output.header.frame)).toEqual([
      0, 5,
    ]);
    await expectVideoOf(
      Buffer.concat(outputs.map((output) => output.data)),
      FRAMES.inputs.slice(0, 10),
      WIDTH,
      HEIGHT,
    );
    session.close();
  });

  it('a node given a certificate and key serves its sessions over TLS (wss://)', async () => {
    const certDir = tempDir('encoder-data-tls-');
    try {
      const cert = join(certDir.path, 'cert.pem');
      const key = join(certDir.path, 'key.pem');
      await selfSignedCertificate(key, cert);
      await stack.startWorker({
        name: 'node-tls',
        args: ['--data-tls-cert', cert, '--data-tls-key', key, '--codecs', 'h264'],
      });
      const tlsNode = (await stack.client.nodes()).find((node) => node.name === 'node-tls')!;
      expect(tlsNode.dataUrl).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
      const stream = await live('h264');
      if (stream.node !== tlsNode.id) {
        await withRedis(stack, (redis, keys) =>
          moveLiveStream(
            redis,
            keys,
            new StreamStore(redis, keys, 3600),
            stream.id,
            stream.node!,
            tlsNode.id,
          ),
        );
      }
      const grant = await grantFor(stack, stream.id);
      expect(grant.url.startsWith('wss://')).toBe(true);
      const session = await TestSession.open(grant.url, { token: grant.token, ca: readFileSync(cert) });
      await session.ready();
      const outputs = await session.sendAll(FRAMES.bgra.slice(0, 4), 4);
      await expectVideoOf(
        Buffer.concat(outputs.map((output) => output.data)),
        FRAMES.inputs.slice(0, 4),
        WIDTH,
        HEIGHT,
      );
      session.close();
      await stack.signalWorker('node-tls', 'SIGTERM');
    } finally {
      certDir.remove();
    }
  });

  it('a reconnect with `since` gets the logged outputs it lacks, then goes on with the same encoder', async () => {
    const stream = await live('h264');
    const grant = await grantFor(stack, stream.id);
    const first = await TestSession.open(grant.url, { token: grant.token });
    await first.ready();
    const before = await first.sendAll(FRAMES.bgra.slice(0, 10), 4);
    first.close();
    await first.closed;

    const second = await TestSession.open(grant.url, { token: grant.token, since: 5 });
    const ready = await second.ready();
    expect(ready.nextFrame).toBe(10);
    const replayed = await second.until(
      () => (second.outputs.length >= 4 ? second.outputs.slice() : false),
      'the replay',
    );
    expect(replayed.map((output) => output.header.frame)).toEqual([6, 7, 8, 9]);
    expect(replayed.map((output) => output.data)).toEqual(before.slice(6).map((output) => output.data));
    const after = await second.sendAll(FRAMES.bgra.slice(10, 20), 4);
    expect(after.map((output) => output.header.frame)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    // The same encoder context went on: no second keyframe.
    expect(after.some((output) => output.header.keyframe)).toBe(false);
    const all = [...before, ...after].map((output) => output.data);
    await expectVideoOf(Buffer.concat(all), FRAMES.inputs.slice(0, 20), WIDTH, HEIGHT);
    second.close();
  });
});

describe('the data port settings at start', () => {
  const env = { REDIS_URL: 'redis://127.0.0.1:1', CLUSTER_SECRETS: undefined };

  it('a data port beyond loopback without CLUSTER_SECRETS stops the node, naming the setting', async () => {
    const node = new ScriptProcess('apps/worker/src/main.js', ['--bind', '0.0.0.0:0'], env);
    expect(await node.exitWithin(20_000)).toBe(2);
    expect(node.output).toMatch(/configuration error: CLUSTER_SECRETS is required .*--bind 0\.0\.0\.0:0/);
  });

  it('a port it cannot listen on stops the node with a configuration error naming --bind', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const node = new ScriptProcess(
        'apps/worker/src/main.js',
        ['--bind', `127.0.0.1:${port}`, '--codecs', 'h264'],
        {
          ...env,
          CLUSTER_SECRETS: 'c'.repeat(32),
        },
      );
      expect(await node.exitWithin(60_000)).toBe(2);
      expect(node.output).toContain(`configuration error: --bind 127.0.0.1:${port}: cannot listen there`);
    } finally {
      taken.close();
    }
  });
});
