import { request as httpRequest, type ClientRequest } from 'node:http';
import type { Redis } from 'ioredis';
import { encodeLz4BlockRecordSync, rgbaToPixelFormat, syntheticRgba } from '#codecs';
import { decodeVideoToRgb, psnr } from '#codecs/testing/media-check.js';
import { rgbaToRgb } from '#codecs/testing/synthetic-frames.js';
import type { JobView } from '#contracts';
import type { ServiceStack } from '#scripts/lib/stack.js';
import { bgraBatch, startStackWithRedis, stopStackWithRedis, tempDir, waitUntil } from './support.js';

/**
 * Video batches are queued once their first frame is stored and encoded as the rest arrives: a batch
 * sent slowly still decodes to exactly its frames, its node starts before the upload ends, and an
 * upload that stalls holds the node's slot no longer than the node's timeout.
 */

const NODE_TIMEOUT_S = 2;

describe('video batches encoded as their frames arrive', () => {
  let stack: ServiceStack;
  let redis: Redis;
  let data: ReturnType<typeof tempDir>;
  const width = 160;
  const height = 96;
  const frameBytes = width * height * 4;
  const count = 8;
  // Built before any connection is pooled (PITFALLS.md, "Sockets and tests").
  const rgba = Array.from({ length: count }, (_, index) => syntheticRgba(width, height, index, false));
  const raw = rgba.map((frame) => rgbaToPixelFormat(frame, 'bgra'));
  const lz4 = raw.map((frame) => Buffer.concat(encodeLz4BlockRecordSync(frame)));

  beforeAll(async () => {
    ({ stack, redis, data } = await startStackWithRedis('encoder-arriving-', {
      workers: [{ name: 'arriving-node', concurrency: 1, timeoutSeconds: NODE_TIMEOUT_S }],
      env: { UPLOAD_IDLE_TIMEOUT_MS: '60000' },
    }));
  }, 60_000);

  afterAll(() => stopStackWithRedis({ stack, redis, data }));

  /** Opens a POST of an h264 batch whose body the test writes itself, piece by piece. */
  function open(encoding: 'identity' | 'lz4-block', bodyBytes: number) {
    const query = new URLSearchParams({
      codec: 'h264',
      width: String(width),
      height: String(height),
      format: 'bgra',
      frames: String(count),
      quality: '90',
    });
    const request: ClientRequest = httpRequest(new URL(`/v1/jobs?${query}`, stack.apiUrl), {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(bodyBytes),
        ...(encoding === 'identity' ? {} : { 'content-encoding': encoding }),
      },
    });
    const answer = new Promise<{ status: number; body: { id?: string; message?: string } }>(
      (resolve, reject) => {
        request.on('response', (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              body: JSON.parse(Buffer.concat(chunks).toString()) as { id?: string },
            }),
          );
        });
        request.on('error', reject);
      },
    );
    answer.catch(() => undefined);
    request.flushHeaders();
    return { request, answer };
  }

  /** The records of jobs in Redis (job ids are unknown until the 202). */
  async function jobRecords(): Promise<{ id: string; status: string }[]> {
    const keys = (await redis.keys('*:job:{*}')).filter((key) => key.endsWith('}'));
    return Promise.all(
      keys.map(async (key) => ({
        id: /\{(.+)\}$/.exec(key)![1],
        status: (await redis.hget(key, 'status')) ?? '',
      })),
    );
  }

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it.each(['identity', 'lz4-block'] as const)(
    '%s: a batch sent one frame at a time starts encoding before its upload ends and decodes to exactly its frames',
    async (encoding) => {
      const pieces = encoding === 'identity' ? raw : lz4;
      const { request, answer } = open(
        encoding,
        pieces.reduce((sum, piece) => sum + piece.length, 0),
      );
      let activeBeforeEnd = false;
      for (const [index, piece] of pieces.entries()) {
        request.write(piece);
        await pause(250);
        if (index === count - 2) {
          // One frame still to come: the job is queued and its node is on it.
          await waitUntil(
            async () => (await jobRecords()).some((job) => job.status === 'active'),
            NODE_TIMEOUT_S * 1000 - 500,
            'the batch to be taken by its node while frames still arrive',
          );
          activeBeforeEnd = true;
        }
      }
      request.end();
      const { status, body } = await answer;
      expect(status).toBe(202);
      expect(activeBeforeEnd).toBe(true);
      const job: JobView = await stack.client.waitFor(body.id!);
      expect(job.status).toBe('completed');
      const video = (await stack.client.output(job.id, 0)).data;
      const decoded = await decodeVideoToRgb(video);
      expect(decoded.length).toBe(count * width * height * 3);
      expect(psnr(Buffer.concat(rgba.map(rgbaToRgb)), decoded)).toBeGreaterThanOrEqual(30);
      await waitUntil(
        async () => (await redis.keys(`*{${job.id}}:frame:*`)).length === 0,
        5000,
        'input deleted',
      );
      expect(await redis.keys(`*{${job.id}}:landed`)).toEqual([]);
    },
    60_000,
  );

  it("an upload that stalls fails its job after the node's timeout, and the slot takes the next job", async () => {
    const { request, answer } = open('identity', frameBytes * count);
    request.write(Buffer.concat(raw.slice(0, 2)));
    const stalled = await (async () => {
      let found: { id: string; status: string } | undefined;
      await waitUntil(
        async () => {
          found = (await jobRecords()).find((job) => job.status === 'failed');
          return found !== undefined;
        },
        NODE_TIMEOUT_S * 1000 * 5,
        'the stalled batch to fail',
      );
      return found!;
    })();
    const record = await stack.client.job(stalled.id);
    expect(record.error).toMatch(/did not arrive: the upload made no progress for 2000 ms/);
    // The node's only slot is free again while the stalled request is still open.
    const next = bgraBatch('h264', width, height, 2);
    const accepted = await stack.client.submitRaw(next.request, next.body);
    expect(await stack.client.waitFor(accepted.id)).toMatchObject({ status: 'completed' });
    request.destroy();
    await answer.catch(() => undefined);
    await waitUntil(
      async () => (await redis.keys(`*{${stalled.id}}:frame:*`)).length === 0,
      5000,
      'input deleted',
    );
  }, 60_000);
});
