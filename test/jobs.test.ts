import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rgbaToPixelFormat, syntheticRgba } from '#codecs';
import { decodeImage, decodeVideoToRgb, probeVideo, psnr } from '#codecs/testing/media-check.js';
import { rgbaToRgb } from '#codecs/testing/synthetic-frames.js';
import { Redis } from 'ioredis';
import type { JobEventWithId } from '#client';
import { EventLog, KeySpace } from '#cluster';
import type { JobEvent } from '#contracts';
import { ServiceStack } from '#scripts/lib/stack.js';
import { readWs } from './stream-support.js';

/**
 * The whole path with real parts: redis-server on a free port, the API and an encoder node as
 * processes, frames over HTTP, outputs decoded and compared with the input pixels.
 */
describe('jobs end to end', () => {
  let stack: ServiceStack;
  let dataDir: string;
  const width = 320;
  const height = 240;
  const scene = (frameIndex: number, overlay = false) => syntheticRgba(width, height, frameIndex, overlay);

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'encoder-e2e-'));
    stack = await ServiceStack.start({ dataDir, workers: [{ name: 'e2e-cpu', concurrency: 2 }] });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function encode(codec: 'jpeg' | 'png' | 'h264', format: 'bgra' | 'rgba', rgbaFrames: Buffer[]) {
    const body = Buffer.concat(rgbaFrames.map((rgba) => rgbaToPixelFormat(rgba, format)));
    const accepted = await stack.client.submitRaw(
      { codec, width, height, format, frames: rgbaFrames.length, quality: 90 },
      body,
    );
    const events: JobEventWithId[] = [];
    const job = await stack.client.waitFor(accepted.id, (event) => events.push(event));
    return { accepted, job, events };
  }

  it('encodes JPEG frames that decode close to the input (PSNR >= 30 dB), one output per frame', async () => {
    const frames = [scene(0), scene(1), scene(2)];
    const { accepted, job } = await encode('jpeg', 'bgra', frames);
    expect(accepted).toMatchObject({ status: 'queued', codec: 'jpeg', pool: 'cpu', frames: 3 });
    expect(job.status).toBe('completed');
    expect(job.outputs.map((output) => output.index)).toEqual([0, 1, 2]);
    for (const [index, rgba] of frames.entries()) {
      const { data, contentType } = await stack.client.output(job.id, index);
      expect(contentType).toBe('image/jpeg');
      const decoded = await decodeImage(data, 3);
      expect([decoded.width, decoded.height]).toEqual([width, height]);
      expect(psnr(rgbaToRgb(rgba), decoded.data)).toBeGreaterThanOrEqual(30);
    }
  });

  it('encodes PNG bit-exact, alpha included', async () => {
    const rgba = scene(3, true);
    const { job } = await encode('png', 'rgba', [rgba]);
    expect(job.status).toBe('completed');
    const { data, contentType } = await stack.client.output(job.id, 0);
    expect(contentType).toBe('image/png');
    const decoded = await decodeImage(data, 4);
    expect(decoded.data.equals(rgba)).toBe(true);
  });

  it('encodes an H.264 batch as one playable segment with exactly the frames sent (PSNR >= 28 dB)', async () => {
    const frames = Array.from({ length: 24 }, (_, index) => scene(index));
    const { job, events } = await encode('h264', 'bgra', frames);
    expect(job.status).toBe('completed');
    expect(job.outputs).toHaveLength(1);
    const { data, contentType } = await stack.client.output(job.id, 0);
    expect(contentType).toBe('video/mp4');
    const probe = await probeVideo(data);
    expect(probe).toMatchObject({ codecName: 'h264', width, height, frames: frames.length });
    expect(probe.firstFrame.keyFrame).toBe(true);
    const decoded = await decodeVideoToRgb(data);
    expect(decoded.length).toBe(frames.length * width * height * 3);
    expect(psnr(Buffer.concat(frames.map(rgbaToRgb)), decoded)).toBeGreaterThanOrEqual(28);
    expect(events.filter((event) => event.type === 'progress').length).toBeGreaterThan(0);
  });

  it('reports the state moving queued -> active -> completed, in events and in GET /v1/jobs/:id', async () => {
    const { accepted, job, events } = await encode('jpeg', 'bgra', [scene(5)]);
    expect(accepted.status).toBe('queued');
    const types = events.map((event) => event.type);
    expect(types[0]).toBe('active');
    expect(types.at(-1)).toBe('completed');
    expect(types.indexOf('output')).toBeGreaterThan(0);
    expect(job).toMatchObject({
      status: 'completed',
      progress: 1,
      node: 'e2e-cpu',
      attempts: 1,
      error: null,
    });
    expect(Date.parse(job.startedAt!)).toBeGreaterThanOrEqual(Date.parse(job.createdAt));
    expect(Date.parse(job.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(job.startedAt!));
  });

  it('replays exactly the missed events after Last-Event-ID, each once', async () => {
    const { job, events } = await encode('jpeg', 'bgra', [scene(6), scene(7)]);
    expect(job.status).toBe('completed');
    const all: JobEventWithId[] = [];
    for await (const event of stack.client.events(job.id)) all.push(event);
    expect(all.map((event) => event.id)).toEqual(events.map((event) => event.id));
    const resumed: JobEventWithId[] = [];
    for await (const event of stack.client.events(job.id, all[1].id)) resumed.push(event);
    expect(resumed.map((event) => event.id)).toEqual(all.slice(2).map((event) => event.id));
    expect(new Set(all.map((event) => event.id)).size).toBe(all.length);
    expect(
      all.filter((event) => event.type === 'output').map((event) => event.type === 'output' && event.index),
    ).toEqual([0, 1]);
  });

  it("numbers a job's events 1, 2, ... as a stream's, and resumes after a number (Last-Event-ID or since)", async () => {
    const { job, events } = await encode('jpeg', 'bgra', [scene(8), scene(9)]);
    expect(job.status).toBe('completed');
    expect(events.map((event) => event.id)).toEqual(events.map((_, index) => String(index + 1)));
    const resumed: JobEventWithId[] = [];
    for await (const event of stack.client.events(job.id, '2')) resumed.push(event);
    expect(resumed.map((event) => event.id)).toEqual(events.slice(2).map((event) => event.id));
    const response = await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/events?since=${events.length - 1}`);
    const text = await response.text();
    expect([...text.matchAll(/^id: (.*)$/gm)].map((match) => match[1])).toEqual([String(events.length)]);
  });

  it('delivers a job over a WebSocket as a one-batch stream: numbered events from since, output bytes inline', async () => {
    const { job, events } = await encode('png', 'rgba', [scene(12), scene(13)]);
    expect(job.status).toBe('completed');
    const all = await readWs(stack.apiUrl, job.id, 0, 'jobs');
    expect(all.events.map((event) => [event.id, event.type])).toEqual(
      events.map((event) => [Number(event.id), event.type]),
    );
    for (const event of all.events.filter((event) => event.type === 'output')) {
      const { data } = await stack.client.output(job.id, event.data.index as number);
      expect(all.bytes.get(event.id!)!.equals(data)).toBe(true);
    }
    const resumed = await readWs(stack.apiUrl, job.id, 2, 'jobs');
    expect(resumed.events.map((event) => event.id)).toEqual(all.events.slice(2).map((event) => event.id));
  });

  it('resumes after an id of the old form (ms-seq), in a log written before jobs were numbered', async () => {
    const { job, events } = await encode('jpeg', 'bgra', [scene(10), scene(11)]);
    expect(job.status).toBe('completed');
    const keys = new KeySpace('encoder');
    const redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      // The log as an API of before left it (Redis' own ids), all but its final event, which a node
      // appends now: the log goes on in its own form.
      const entries = await redis.xrange(keys.events(job.id), '-', '+');
      expect(entries.map(([id]) => id)).toEqual(events.map((event) => `0-${event.id}`));
      await redis.del(keys.events(job.id), keys.emitted(job.id));
      for (const [, fields] of entries.slice(0, -1)) await redis.xadd(keys.events(job.id), '*', ...fields);
      const final = JSON.parse(entries.at(-1)![1][1]) as JobEvent;
      const finalId = await new EventLog(redis, keys, 3600).append(job.id, final);
      expect(finalId).toMatch(/^[1-9]\d*-\d+$/);

      const all: JobEventWithId[] = [];
      for await (const event of stack.client.events(job.id)) all.push(event);
      expect(all.map((event) => event.type)).toEqual(events.map((event) => event.type));
      expect(all.every((event) => /^[1-9]\d*-\d+$/.test(event.id ?? ''))).toBe(true);
      const resumed: JobEventWithId[] = [];
      for await (const event of stack.client.events(job.id, all[1].id)) resumed.push(event);
      expect(resumed.map((event) => event.id)).toEqual(all.slice(2).map((event) => event.id));
      expect(resumed.at(-1)!.id).toBe(finalId);
    } finally {
      redis.disconnect();
    }
  });

  describe('bad requests get a clear 4xx and break nothing', () => {
    async function post(query: string, body: Buffer | string, contentType = 'application/octet-stream') {
      const response = await fetch(`${stack.apiUrl}/v1/jobs?${query}`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
      return {
        status: response.status,
        body: (await response.json()) as { statusCode: number; error: string; message: string },
      };
    }
    const frame = Buffer.alloc(8 * 8 * 4);

    it.each([
      [
        'a body shorter than declared',
        'codec=png&width=8&height=8&format=rgba&frames=2',
        frame,
        400,
        /body is 256 bytes but the parameters declare 512/,
      ],
      [
        'a body longer than declared',
        'codec=png&width=8&height=8&format=rgba',
        Buffer.concat([frame, frame]),
        400,
        /longer than the 256 bytes the parameters declare/,
      ],
      [
        'an unknown codec',
        'codec=gif&width=8&height=8&format=rgba',
        frame,
        400,
        /codec must be one of jpeg, webp/,
      ],
      ['a missing width', 'codec=png&height=8&format=rgba', frame, 400, /width is required/],
      ['a missing codec', 'width=8&height=8&format=rgba', frame, 400, /codec is required/],
      ['a missing format', 'codec=png&width=8&height=8', frame, 400, /format is required/],
      [
        'an unknown pixel format',
        'codec=png&width=8&height=8&format=yuv420',
        frame,
        400,
        /format must be one of rgba/,
      ],
      ['a zero width', 'codec=png&width=0&height=8&format=rgba', frame, 400, /width must be at least 1/],
      [
        'a negative frame count',
        'codec=png&width=8&height=8&format=rgba&frames=-1',
        frame,
        400,
        /frames must be at least 1/,
      ],
      [
        'a quality above 100',
        'codec=png&width=8&height=8&format=rgba&quality=101',
        frame,
        400,
        /quality must be an integer from 0 to 100/,
      ],
      [
        'an unknown parameter',
        'codec=png&width=8&height=8&format=rgba&colour=red',
        frame,
        400,
        /colour should not exist/,
      ],
      ['a huge frame', 'codec=png&width=16000&height=16000&format=rgba', frame, 413, /exceeds the limit of/],
      [
        'an empty body',
        'codec=png&width=8&height=8&format=rgba',
        Buffer.alloc(0),
        400,
        /body is 0 bytes but the parameters declare 256/,
      ],
      [
        'a huge frame count',
        'codec=png&width=8&height=8&format=rgba&frames=100000000',
        frame,
        413,
        /frames per job/,
      ],
      [
        'a non-numeric width',
        'codec=png&width=abc&height=8&format=rgba',
        frame,
        400,
        /width must be an integer/,
      ],
    ])('%s', async (_name, query, body, status, message) => {
      const response = await post(query, body);
      expect(response.status).toBe(status);
      expect(response.body).toMatchObject({ statusCode: status });
      expect(response.body.message).toMatch(message);
    });

    it('malformed JSON gets 400, not a crash', async () => {
      const response = await post(
        'codec=png&width=8&height=8&format=rgba',
        '{"width": 8,',
        'application/json',
      );
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/JSON/);
    });

    it('a wrong content type gets 415', async () => {
      const response = await post('codec=png&width=8&height=8&format=rgba', '{"a":1}', 'application/json');
      expect(response.status).toBe(415);
      expect(response.body.message).toMatch(/application\/octet-stream/);
    });

    it('unknown jobs and outputs get 404', async () => {
      expect((await fetch(`${stack.apiUrl}/v1/jobs/AAAAAAAAAAAAAAAA`)).status).toBe(404);
      expect((await fetch(`${stack.apiUrl}/v1/jobs/../../etc`)).status).toBe(404);
      expect((await fetch(`${stack.apiUrl}/v1/jobs/AAAAAAAAAAAAAAAA/outputs/0`)).status).toBe(404);
    });

    it('the service still works afterwards', async () => {
      expect(await stack.client.ready()).toBe(true);
      const { job } = await encode('png', 'rgba', [scene(9, true)]);
      expect(job.status).toBe('completed');
    });
  });
});
