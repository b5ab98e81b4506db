import { mulberry32, rgbaToPixelFormat, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import { SessionTokens, moveLiveStream, StreamStore } from '#cluster';
import { LIVE_SESSION_CLOSE, liveSessionPath, type StreamView } from '#contracts';
import { ServiceStack } from '#scripts/lib/stack.js';
import { childrenNamed, tempDir, waitUntil } from './support.js';
import { createLiveStream, expectVideoOf, readSse } from './stream-support.js';
import { TestSession, grantFor, nodeOf, withRedis } from './session-support.js';

/**
 * What a node's data port does with bad input and under faults: each bad input gets the contract's
 * close code (or HTTP status before the upgrade) and leaves no ffmpeg behind; a node fenced out by a
 * move cannot write; Redis away does not stop a session; a draining node hands its streams over.
 */
const WIDTH = 160;
const HEIGHT = 120;

function framesOf(width: number, height: number, count: number): { inputs: Buffer[]; bgra: Buffer[] } {
  const inputs = Array.from({ length: count }, (_, index) => syntheticRgba(width, height, index, false));
  return { inputs, bgra: inputs.map((rgba) => rgbaToPixelFormat(rgba, 'bgra')) };
}
const FRAMES = framesOf(WIDTH, HEIGHT, 40);
/** Noise compresses badly: big outputs, to fill a reader's buffers. */
const NOISE_SIZE = { width: 640, height: 480 };
const NOISE = Array.from({ length: 8 }, (_, index) => {
  const random = mulberry32(index + 1);
  const frame = Buffer.allocUnsafe(NOISE_SIZE.width * NOISE_SIZE.height * 4);
  for (let offset = 0; offset < frame.length; offset += 4)
    frame.writeUInt32LE((random() * 2 ** 32) >>> 0, offset);
  return frame;
});

describe('live sessions: bad input and faults', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-live-session-faults-');
  const idle = ['--live-idle-timeout', '1'];

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      workers: [
        { name: 'node-a', concurrency: 2, args: idle },
        { name: 'node-b', concurrency: 2, args: idle },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  const live = (extra: Record<string, unknown> = {}) => createLiveStream(stack.apiUrl, WIDTH, HEIGHT, extra);
  const nodeName = async (nodeId: string) =>
    (await stack.client.nodes()).find((node) => node.id === nodeId)!.name;
  /** No live encoder of the node runs (contexts close after the 1 s idle timeout). */
  const noFfmpegOn = async (name: string) =>
    waitUntil(
      () => childrenNamed(stack.workerPid(name)!, 'ffmpeg').length === 0,
      20_000,
      `no ffmpeg under ${name}`,
    );
  const refused = (promise: Promise<unknown>) =>
    promise.then(
      () => {
        throw new Error('the upgrade was accepted');
      },
      (error: { status?: number; body?: string }) => ({
        status: error.status,
        body: JSON.parse(error.body ?? '{}') as { message?: string },
      }),
    );
  const tokenFor = (
    claims: { stream: string; node: string; epoch: number },
    ttlMs = 60_000,
    secret = stack.clusterSecrets,
  ) => new SessionTokens([secret]).issue(claims, ttlMs).token;

  it('refuses bad upgrades with the contract statuses, before any socket opens', async () => {
    const stream = await live();
    const other = await live();
    const grant = await grantFor(stack, stream.id);
    const claims = { stream: stream.id, node: grant.node.id, epoch: grant.epoch };

    expect(await refused(TestSession.open(grant.url))).toMatchObject({ status: 401 });
    expect(await refused(TestSession.open(grant.url, { token: tokenFor(claims, -1) }))).toMatchObject({
      status: 401,
      body: { message: expect.stringContaining('expired') },
    });
    const forged = tokenFor(claims, 60_000, 'x'.repeat(43));
    expect(await refused(TestSession.open(grant.url, { token: forged }))).toMatchObject({
      status: 401,
      body: { message: expect.stringContaining('not signed') },
    });
    const forOther = tokenFor({ ...claims, stream: other.id });
    expect(await refused(TestSession.open(grant.url, { token: forOther }))).toMatchObject({
      status: 401,
      body: { message: expect.stringContaining('another stream') },
    });
    const forOtherNode = tokenFor({ ...claims, node: 'another-node' });
    expect(await refused(TestSession.open(grant.url, { token: forOtherNode }))).toMatchObject({
      status: 401,
      body: { message: expect.stringContaining('node another-node') },
    });
    const stale = tokenFor({ ...claims, epoch: claims.epoch + 1 });
    expect(await refused(TestSession.open(grant.url, { token: stale }))).toMatchObject({ status: 409 });
    const unknownId = 'sAAAAAAAAAAAAAAAA';
    const unknown = tokenFor({ ...claims, stream: unknownId });
    const unknownUrl = grant.url.replace(liveSessionPath(stream.id), liveSessionPath(unknownId));
    expect(await refused(TestSession.open(unknownUrl, { token: unknown }))).toMatchObject({ status: 404 });
    expect(await refused(TestSession.open(grant.url, { token: grant.token, since: -2 }))).toMatchObject({
      status: 400,
    });
    await fetch(`${stack.apiUrl}/v1/streams/${other.id}`, { method: 'DELETE' });
    const otherGrant = await grantFor(stack, other.id);
    expect(await refused(TestSession.open(otherGrant.url, { token: otherGrant.token }))).toMatchObject({
      status: 410,
    });

    // The data port serves sessions and its health check, nothing else.
    const base = grant.node.dataUrl!.replace(/^ws/, 'http');
    expect(await (await fetch(`${base}/healthz`)).json()).toMatchObject({ node: grant.node.id });
    expect((await fetch(`${base}/v1/streams`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
  });

  it.each([
    [
      'a frame of the wrong size',
      (session: TestSession) => session.send(Buffer.alloc(WIDTH * HEIGHT * 4 - 1)),
      'bytes',
    ],
    ['text where a frame is due', (session: TestSession) => session.send('hello'), 'JSON'],
    ['an unknown text message', (session: TestSession) => session.send('{"type":"pause"}'), 'keyframe'],
    [
      'more frames than the window before any output',
      (session: TestSession) => {
        for (let index = 0; index < 24; index++) session.send(FRAMES.bgra[index]);
      },
      'window',
    ],
  ])('%s: error message, close 4400, no ffmpeg left', async (_what, misbehave, words) => {
    const stream = await live();
    const grant = await grantFor(stack, stream.id);
    const session = await TestSession.open(grant.url, { token: grant.token });
    await session.ready();
    await session.sendAll(FRAMES.bgra.slice(0, 2), 4);
    misbehave(session);
    const closed = await session.closed;
    expect(closed.code).toBe(LIVE_SESSION_CLOSE.badMessage);
    const error = session.texts.find((message) => message.type === 'error');
    expect(error).toMatchObject({ type: 'error', message: expect.stringContaining(words) });
    await noFfmpegOn(grant.node.name);
  });

  it('a second socket for the stream replaces the first (4409) and goes on from its next frame', async () => {
    const stream = await live();
    const grant = await grantFor(stack, stream.id);
    const first = await TestSession.open(grant.url, { token: grant.token });
    await first.ready();
    const before = await first.sendAll(FRAMES.bgra.slice(0, 5), 4);
    const second = await TestSession.open(grant.url, { token: grant.token, since: 4 });
    expect((await first.closed).code).toBe(LIVE_SESSION_CLOSE.moved);
    expect((await second.ready()).nextFrame).toBe(5);
    const after = await second.sendAll(FRAMES.bgra.slice(5, 10), 4);
    await expectVideoOf(
      Buffer.concat([...before, ...after].map((output) => output.data)),
      FRAMES.inputs.slice(0, 10),
      WIDTH,
      HEIGHT,
    );
    second.close();
  });

  it('a client that stops reading is closed with 4408', async () => {
    const stream = await createLiveStream(stack.apiUrl, NOISE_SIZE.width, NOISE_SIZE.height, {
      quality: 100,
    });
    const grant = await grantFor(stack, stream.id);
    const session = await TestSession.open(grant.url, { token: grant.token });
    await session.ready();
    session.ws.pause();
    // Paced by what the node logged (the client reads nothing): never more than the window in flight.
    const framesLogged = () =>
      withRedis(stack, async (redis, keys) =>
        Number(await redis.hget(keys.streamRecord(stream.id), 'frames')),
      );
    // Until the node stops taking frames: it closed the socket, which this client has not read yet.
    for (let index = 0; index < 2000; index++) {
      const logged = await waitUntil(
        async () => (await framesLogged()) >= index - 2,
        3000,
        'a frame logged',
      ).catch(() => null);
      if (logged === null) break;
      session.send(NOISE[index % NOISE.length]);
    }
    session.ws.resume();
    expect(await session.closed).toMatchObject({
      code: LIVE_SESSION_CLOSE.slowReader,
      reason: expect.stringContaining('unread'),
    });
    await noFfmpegOn(grant.node.name);
  });

  it('pings every second; a socket silent for 3 s (no pong, no message) is closed', async () => {
    const stream = await live();
    const grant = await grantFor(stack, stream.id);
    const session = await TestSession.open(grant.url, { token: grant.token });
    let pings = 0;
    session.ws.on('ping', () => pings++);
    await session.ready();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(pings).toBeGreaterThanOrEqual(1);
    // A peer that reads nothing answers no ping.
    session.ws.pause();
    await new Promise((resolve) => setTimeout(resolve, 5000));
    session.ws.resume();
    const closed = await session.closed;
    expect(closed).toMatchObject({
      code: LIVE_SESSION_CLOSE.slowReader,
      reason: expect.stringContaining('silent'),
    });
  });

  it('at its live-context cap a node refuses a session with 429', async () => {
    // node-c keeps one encoder context; a second stream is put on it by hand (the API would not).
    await stack.startWorker({
      name: 'node-c',
      concurrency: 1,
      args: [...idle, '--live-max-contexts', '1', '--codecs', 'vp9'],
    });
    const nodes = await stack.client.nodes();
    const nodeC = nodes.find((node) => node.name === 'node-c')!;
    const first = await live({ codec: 'vp9' });
    expect(first.node).toBe(nodeC.id);
    const second = await live();
    await withRedis(stack, (redis, keys) =>
      moveLiveStream(redis, keys, new StreamStore(redis, keys, 3600), second.id, second.node!, nodeC.id),
    );
    const firstGrant = await grantFor(stack, first.id);
    const holder = await TestSession.open(firstGrant.url, { token: firstGrant.token });
    await holder.ready();
    const secondGrant = await grantFor(stack, second.id);
    expect(await refused(TestSession.open(secondGrant.url, { token: secondGrant.token }))).toMatchObject({
      status: 429,
    });
    holder.close();
    await stack.signalWorker('node-c', 'SIGTERM');
  });

  it('a node fenced out by a move cannot write: its next commit is refused, 4409, its encoder closed', async () => {
    const stream = await live();
    const grant = await grantFor(stack, stream.id);
    const session = await TestSession.open(grant.url, { token: grant.token });
    await session.ready();
    const sent = await session.sendAll(FRAMES.bgra.slice(0, 6), 4);
    const other = (await stack.client.nodes()).find(
      (node) => node.id !== grant.node.id && node.name !== 'node-c',
    )!;
    expect(
      await withRedis(stack, (redis, keys) =>
        moveLiveStream(redis, keys, new StreamStore(redis, keys, 3600), stream.id, grant.node.id, other.id),
      ),
    ).toBe(true);
    session.send(FRAMES.bgra[6]);
    expect((await session.closed).code).toBe(LIVE_SESSION_CLOSE.moved);
    expect(session.outputs).toHaveLength(6);
    await noFfmpegOn(grant.node.name);

    // The log holds exactly the outputs sent before the move; the new node goes on from frame 6.
    const next = await grantFor(stack, stream.id);
    expect(next.node.id).toBe(other.id);
    const resumed = await TestSession.open(next.url, { token: next.token, since: 5 });
    expect((await resumed.ready()).nextFrame).toBe(6);
    const after = await resumed.sendAll(FRAMES.bgra.slice(6, 12), 4);
    expect(after[0].header.keyframe).toBe(true);
    resumed.close();
    await fetch(`${stack.apiUrl}/v1/streams/${stream.id}`, { method: 'DELETE' });
    const logged = (await readSse(stack.apiUrl, stream.id)).filter((event) => event.type === 'batch');
    expect(logged.map((event) => event.data.node)).toEqual([
      ...sent.map(() => grant.node.name),
      ...after.map(() => other.name),
    ]);
  });

  it('Redis restarted mid-session: outputs keep coming (durable: false), then a durable mark, and the log catches up', async () => {
    const stream = await live();
    const grant = await grantFor(stack, stream.id);
    const session = await TestSession.open(grant.url, { token: grant.token });
    await session.ready();
    const before = await session.sendAll(FRAMES.bgra.slice(0, 10), 4);
    await stack.redis!.stop();
    const during = await session.sendAll(FRAMES.bgra.slice(10, 20), 4);
    expect(during.every((output) => output.header.durable === false)).toBe(true);
    await stack.redis!.start();
    const mark = await session.until(
      () => session.texts.find((message) => message.type === 'durable'),
      'a durable mark',
    );
    expect(mark).toEqual({ type: 'durable', upTo: 19 });
    // The mark comes after every output it covers.
    const lastCovered = session.texts.findIndex(
      (message) => message.type === 'output' && message.frame === 19,
    );
    expect(session.texts.indexOf(mark)).toBeGreaterThan(lastCovered);
    const after = await session.sendAll(FRAMES.bgra.slice(20, 30), 4);
    expect(after.every((output) => output.header.durable === undefined)).toBe(true);
    session.close();
    await waitUntil(() => stack.client.ready(), 20_000, 'the API to see Redis again');
    await fetch(`${stack.apiUrl}/v1/streams/${stream.id}`, { method: 'DELETE' });

    const received = [...before, ...during, ...after];
    const logged = (await readSse(stack.apiUrl, stream.id)).filter((event) => event.type === 'output');
    expect(logged.map((event) => event.data.frame)).toEqual(received.map((output) => output.header.frame));
    expect(logged.map((event) => event.data.bytes)).toEqual(received.map((output) => output.data.length));
    await expectVideoOf(
      Buffer.concat(received.map((output) => output.data)),
      FRAMES.inputs.slice(0, 30),
      WIDTH,
      HEIGHT,
    );
  });

  it('SIGTERM: the draining node moves its session stream to another node, then closes with 1012', async () => {
    const stream = await live();
    const grant = await grantFor(stack, stream.id);
    const session = await TestSession.open(grant.url, { token: grant.token });
    await session.ready();
    const before = await session.sendAll(FRAMES.bgra.slice(0, 8), 4);
    const stopping = stack.signalWorker(grant.node.name, 'SIGTERM');
    expect((await session.closed).code).toBe(LIVE_SESSION_CLOSE.draining);
    const { view } = await nodeOf(stack, stream.id).catch(async () => ({
      view: (await (await fetch(`${stack.apiUrl}/v1/streams/${stream.id}`)).json()) as StreamView,
    }));
    expect(view.node).not.toBe(grant.node.id);
    expect(view.node).toBeTruthy();

    const next = await grantFor(stack, stream.id);
    const resumed = await TestSession.open(next.url, { token: next.token, since: 7 });
    expect((await resumed.ready()).nextFrame).toBe(8);
    const after = await resumed.sendAll(FRAMES.bgra.slice(8, 16), 4);
    expect(
      [...before, ...after].filter((output) => output.header.keyframe).map((output) => output.header.frame),
    ).toEqual([0, 8]);
    await expectVideoOf(
      Buffer.concat([...before, ...after].map((output) => output.data)),
      FRAMES.inputs.slice(0, 16),
      WIDTH,
      HEIGHT,
    );
    resumed.close();
    expect(await stopping).toBe(0);
    expect(await nodeName(next.node.id)).toBe(next.node.name);
  });
});
