import http from 'node:http';
import sharp from 'sharp';
import { psnr } from '#codecs/testing/media-check.js';
import { rgbaToPixelFormat, rgbaToRgb, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import type { JobView } from '#contracts';
import { KeySpace, StreamStore, createRedisConnection } from '#cluster';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir } from './support.js';
import {
  createLiveStream,
  createStream,
  expectVideoOf,
  postJson,
  readSse,
  readWs,
  submitFrames,
} from './stream-support.js';

/**
 * Streams against real processes: redis-server, the API and two encoder nodes. Outputs are decoded and
 * compared with the frames that went in.
 */
const LOG_MAX_EVENTS = 100;

function frame(width: number, height: number, index: number): Buffer {
  return syntheticRgba(width, height, index, false);
}

function bgra(frames: Buffer[]): Buffer {
  return Buffer.concat(frames.map((rgba) => rgbaToPixelFormat(rgba, 'bgra')));
}

async function rgbOf(image: Buffer): Promise<Buffer> {
  return sharp(image).removeAlpha().raw().toBuffer();
}

describe('streams', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-streams-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      env: { STREAM_LOG_MAX_EVENTS: String(LOG_MAX_EVENTS), STREAM_STALL_MS: '1000' },
      workers: [
        { name: 'node-a', concurrency: 2 },
        { name: 'node-b', concurrency: 2 },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  const api = () => stack.apiUrl;
  const close = (id: string) => fetch(`${api()}/v1/streams/${id}`, { method: 'DELETE' });

  it('batch mode: outputs come in submission order although later batches finish first', async () => {
    const width = 320;
    const height = 240;
    // A slow first batch (WebP at the slowest effort), then quick ones: with two nodes of two slots
    // each, the later batches finish first.
    const sizes = [40, 1, 8, 1, 4, 1];
    const stream = await createStream(api(), {
      codec: 'webp',
      width,
      height,
      format: 'bgra',
      speed: 0,
      quality: 90,
    });
    expect(stream).toMatchObject({ codec: 'webp', mode: 'batch', state: 'open', batches: 0 });
    const inputs: Buffer[] = [];
    for (const [batch, size] of sizes.entries()) {
      const frames = Array.from({ length: size }, (_, index) => frame(width, height, batch * 100 + index));
      const answer = await submitFrames(api(), stream.id, bgra(frames), size);
      expect(answer.status).toBe(202);
      expect(answer.body).toMatchObject({ seq: batch, firstFrame: inputs.length, frames: size });
      inputs.push(...frames);
    }
    expect((await close(stream.id)).status).toBe(200);

    const events = await readSse(api(), stream.id);
    expect(events.map((event) => event.id)).toEqual(events.map((_, index) => index + 1));
    const outputs = events.filter((event) => event.type === 'output');
    const batches = events.filter((event) => event.type === 'batch');
    expect(batches.map((event) => event.data.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(outputs.map((event) => event.data.frame)).toEqual(inputs.map((_, index) => index));
    expect(events.at(-1)).toMatchObject({ type: 'end', data: { batches: 6 } });
    // Every output of a batch comes before the batch's own event, and after the previous batch's.
    let seq = 0;
    for (const event of events) {
      if (event.type === 'output') expect(event.data.seq).toBe(seq);
      if (event.type === 'batch') seq++;
    }
    for (const event of outputs) {
      const response = await fetch(`${api()}${event.data.url as string}`);
      expect(response.headers.get('content-type')).toBe('image/webp');
      const decoded = await rgbOf(Buffer.from(await response.arrayBuffer()));
      expect(psnr(rgbaToRgb(inputs[event.data.frame as number]), decoded)).toBeGreaterThan(30);
    }

    // The premise: the nodes did finish out of order.
    const jobs = await Promise.all(
      batches.map(
        async (event) =>
          (await (await fetch(`${api()}/v1/jobs/${event.data.jobId as string}`)).json()) as JobView,
      ),
    );
    const finished = jobs.map((job) => Date.parse(job.finishedAt!));
    expect(finished.slice(1).some((at) => at < finished[0])).toBe(true);
  });

  it('live mode: one node keeps the encoder, so single-frame batches make one inter-frame video', async () => {
    const width = 320;
    const height = 240;
    const count = 24;
    const stream = await createLiveStream(api(), width, height);
    expect(stream).toMatchObject({ mode: 'live', codec: 'h264' });
    expect(stream.node).toEqual(expect.any(String));
    const delivery = readWs(api(), stream.id);
    const inputs = Array.from({ length: count }, (_, index) => frame(width, height, index));
    for (const input of inputs) {
      const { status, body } = await submitFrames(api(), stream.id, bgra([input]), 1);
      expect(status).toBe(202);
      expect(body.firstFrame).toBe(inputs.indexOf(input));
    }
    await close(stream.id);
    const { events, bytes } = await delivery;
    const outputs = events.filter((event) => event.type === 'output');
    expect(outputs.map((event) => event.data.frame)).toEqual(inputs.map((_, index) => index));
    expect(outputs.every((event) => event.data.contentType === 'video/h264')).toBe(true);
    expect(
      new Set(events.filter((event) => event.type === 'batch').map((event) => event.data.node)).size,
    ).toBe(1);
    const keyframes = outputs.filter((event) => event.data.keyframe).map((event) => event.data.frame);
    expect(keyframes).toEqual([0]);

    const annexB = Buffer.concat(outputs.map((event) => bytes.get(event.id!)!));
    expect((await expectVideoOf(annexB, inputs, width, height)).codecName).toBe('h264');
    const view = await (await fetch(`${api()}/v1/streams/${stream.id}`)).json();
    expect(view).toMatchObject({ state: 'ended', batches: count, delivered: count });
  });

  it('SSE resumes after Last-Event-ID with exactly the events that were missed', async () => {
    const stream = await createStream(api(), { codec: 'png', width: 32, height: 24, format: 'bgra' });
    for (let batch = 0; batch < 4; batch++) {
      const frames = [frame(32, 24, batch * 2), frame(32, 24, batch * 2 + 1)];
      expect((await submitFrames(api(), stream.id, bgra(frames), 2)).status).toBe(202);
    }
    await close(stream.id);
    const all = await readSse(api(), stream.id);
    expect(all.at(-1)?.type).toBe('end');
    const first = await readSse(api(), stream.id, { stopAfter: 5 });
    const rest = await readSse(api(), stream.id, { lastEventId: first.at(-1)!.id! });
    expect([...first, ...rest]).toEqual(all);
    expect(rest[0].id).toBe(6);
    const since = await readWs(api(), stream.id, 5);
    expect(since.events.map((event) => event.id)).toEqual(rest.map((event) => event.id));
  });

  it('a consumer further behind than the kept log is told what it missed', async () => {
    const frames = 130;
    const stream = await createStream(api(), { codec: 'png', width: 8, height: 8, format: 'bgra' });
    const batch = bgra(Array.from({ length: frames }, (_, index) => frame(8, 8, index)));
    expect((await submitFrames(api(), stream.id, batch, frames)).status).toBe(202);
    await close(stream.id);
    const events = await readSse(api(), stream.id);
    // 130 outputs + batch + end = 132 events, of which the newest 100 are kept.
    expect(events[0]).toMatchObject({ id: null, type: 'fell-behind', data: { from: 1, to: 32, missed: 32 } });
    expect(events.slice(1).map((event) => event.id)).toEqual(
      Array.from({ length: 100 }, (_, index) => index + 33),
    );
  });

  it('a batch that was acknowledged but never queued does not hold the stream back', async () => {
    const stream = await createStream(api(), { codec: 'jpeg', width: 16, height: 16, format: 'bgra' });
    // What an API process that died between giving a batch its seq and queueing it leaves behind.
    const redis = createRedisConnection({ url: stack.redisUrl, role: 'worker', name: 'test' });
    try {
      const store = new StreamStore(redis, new KeySpace('encoder'), 60);
      expect(await store.allocate(stream.id, 1, 'lostJobIdAAAAAA')).toEqual({ seq: 0, firstFrame: 0 });
    } finally {
      redis.disconnect();
    }
    const next = await submitFrames(api(), stream.id, bgra([frame(16, 16, 1)]), 1);
    expect(next.body).toMatchObject({ seq: 1, firstFrame: 1 });
    await close(stream.id);
    const events = await readSse(api(), stream.id);
    expect(events.map((event) => [event.type, event.data.seq])).toEqual([
      ['batch-failed', 0],
      ['output', 1],
      ['batch', 1],
      ['end', undefined],
    ]);
    expect(events[0].data.error).toMatch(/lost before it was queued/);
  });

  it('an Idempotency-Key repeat of a batch gets the first batch, kept in the one idempotency store', async () => {
    const stream = await createStream(api(), { codec: 'png', width: 16, height: 16, format: 'bgra' });
    const body = bgra([frame(16, 16, 1)]);
    const first = await submitFrames(api(), stream.id, body, 1, { 'idempotency-key': 'batch-a' });
    expect(first.status).toBe(202);
    const repeat = await submitFrames(api(), stream.id, body, 1, { 'idempotency-key': 'batch-a' });
    expect(repeat).toEqual(first);
    const redis = createRedisConnection({ url: stack.redisUrl, role: 'worker', name: 'test' });
    try {
      const entry = await redis.get(new KeySpace('encoder').streamBatchKey(stream.id, 'batch-a'));
      expect(JSON.parse(entry!)).toEqual({ fingerprint: '', state: 'done', result: first.body });
    } finally {
      redis.disconnect();
    }
    const next = await submitFrames(api(), stream.id, body, 1, { 'idempotency-key': 'batch-b' });
    expect(next.body).toMatchObject({ seq: 1, firstFrame: 1 });
    await close(stream.id);
    const events = await readSse(api(), stream.id);
    expect(events.filter((event) => event.type === 'batch').map((event) => event.data.seq)).toEqual([0, 1]);
  });

  it('bad requests get a clear 4xx and leave the stream working', async () => {
    const missing = await postJson<{ message: string[] | string }>(`${api()}/v1/streams`, { codec: 'jpeg' });
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body.message)).toMatch(/width is required/);
    const liveImage = await postJson<{ message: string }>(`${api()}/v1/streams`, {
      codec: 'jpeg',
      mode: 'live',
      width: 8,
      height: 8,
      format: 'rgba',
    });
    expect(liveImage.status).toBe(400);
    expect(liveImage.body.message).toMatch(/live mode .* jpeg is an image codec/);
    const badMode = await postJson<{ message: string }>(`${api()}/v1/streams`, {
      codec: 'h264',
      mode: 'realtime',
      width: 8,
      height: 8,
      format: 'rgba',
    });
    expect(badMode.status).toBe(400);

    const stream = await createStream(api(), { codec: 'jpeg', width: 16, height: 16, format: 'rgba' });
    const short = await submitFrames(api(), stream.id, Buffer.alloc(16 * 16 * 4 - 1), 1);
    expect(short.status).toBe(400);
    expect((await submitFrames(api(), 'sAAAAAAAAAAAAAAAA', Buffer.alloc(16 * 16 * 4), 1)).status).toBe(404);
    const badResume = await fetch(`${api()}/v1/streams/${stream.id}/events`, {
      headers: { 'last-event-id': 'yesterday' },
    });
    expect(badResume.status).toBe(400);
    const wrongType = await fetch(`${api()}/v1/streams/${stream.id}/frames`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: Buffer.alloc(4),
    });
    expect(wrongType.status).toBe(415);

    // An upgrade that is not a WebSocket handshake (curl --http2 sends one) is a plain request.
    const h2c = await new Promise<number>((resolve, reject) => {
      const request = http.get(`${api()}/v1/nodes`, { headers: { connection: 'Upgrade', upgrade: 'h2c' } });
      request.on('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
    });
    expect(h2c).toBe(200);
    const socketToNowhere = await new Promise<number>((resolve) => {
      const request = http.get(`${api()}/v1/streams/sAAAAAAAAAAAAAAAA/ws`, {
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        },
      });
      request.on('response', (response) => resolve(response.statusCode ?? 0));
    });
    expect(socketToNowhere).toBe(404);

    // The stream still works after all that, and refuses frames once closed.
    expect((await submitFrames(api(), stream.id, bgra([frame(16, 16, 0)]), 1)).status).toBe(202);
    await close(stream.id);
    const afterClose = await submitFrames(api(), stream.id, bgra([frame(16, 16, 1)]), 1);
    expect(afterClose.status).toBe(409);
    const events = await readSse(api(), stream.id);
    expect(events.map((event) => event.type)).toEqual(['output', 'batch', 'end']);
    expect(events[0].data.seq).toBe(0);
  });
});
