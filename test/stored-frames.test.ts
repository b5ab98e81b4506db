import { randomBytes } from 'node:crypto';
import { uncompressSync } from 'lz4-napi';
import { decodeImage, decodeVideoToRgb, psnr } from '#codecs/testing/media-check.js';
import { rgbaToRgb } from '#codecs/testing/synthetic-frames.js';
import { lz4LiteralBlockHeader, rgbaToPixelFormat, syntheticRgba } from '#codecs';
import type { AcceptedJob } from '#client';
import { KeySpace } from '#cluster';
import type { ServiceStack } from '#scripts/lib/stack.js';
import type { Redis } from 'ioredis';
import { bgraBatch, startStackWithRedis, stopStackWithRedis, tempDir } from './support.js';

/**
 * How the API stores raw frames sent uncompressed, read back from the real Redis while the jobs wait
 * for a node (none runs yet; POOL_CODECS lets them queue): a frame up to STORE_LZ4_MAX_FRAME_BYTES as
 * an LZ4 block that decompresses to exactly the bytes sent (single frames and a video batch queued
 * as its frames arrive), noise that LZ4 cannot shrink as a literal block (a header, then the frame as
 * sent), a bigger frame as sent. Then a node starts and every job's output decodes to the frames sent.
 */
const SMALL = { width: 96, height: 64 };
const LARGE = { width: 128, height: 96 };
const LIMIT = 40_000;
// Built before any connection is pooled (PITFALLS.md, "Sockets and tests").
const SMALL_JPEG = bgraBatch('jpeg', SMALL.width, SMALL.height, 1, { quality: 90 });
const SMALL_H264 = bgraBatch('h264', SMALL.width, SMALL.height, 6, { quality: 90 });
const LARGE_JPEG = bgraBatch('jpeg', LARGE.width, LARGE.height, 1, { quality: 90 });
// Noise LZ4 cannot shrink: stored behind a literal-block header, uncompressed.
const NOISE = randomBytes(SMALL.width * SMALL.height * 4);
const NOISE_PNG = {
  request: {
    codec: 'png' as const,
    width: SMALL.width,
    height: SMALL.height,
    format: 'bgra' as const,
    frames: 1,
  },
  body: NOISE,
};
const scene = (size: { width: number; height: number }, index: number) =>
  rgbaToRgb(syntheticRgba(size.width, size.height, index, false));

describe('raw frames as the API stores them', () => {
  let stack: ServiceStack;
  let redis: Redis;
  let data: ReturnType<typeof tempDir>;
  const keys = new KeySpace('encoder');

  beforeAll(async () => {
    expect(SMALL.width * SMALL.height * 4).toBeLessThanOrEqual(LIMIT);
    expect(LARGE.width * LARGE.height * 4).toBeGreaterThan(LIMIT);
    ({ stack, redis, data } = await startStackWithRedis('encoder-stored-', {
      workers: [],
      env: { POOL_CODECS: 'cpu:jpeg,png,h264', STORE_LZ4_MAX_FRAME_BYTES: String(LIMIT) },
    }));
  }, 60_000);

  afterAll(() => stopStackWithRedis({ stack, redis, data }));

  async function storedFrames(jobId: string, frames: number): Promise<Buffer[]> {
    return Promise.all(
      Array.from({ length: frames }, async (_, index) => {
        const value = await redis.getBuffer(keys.frame(jobId, index));
        if (!value) throw new Error(`frame ${index} of job ${jobId} is not stored`);
        return value;
      }),
    );
  }

  const frameOf = (batch: { body: Buffer }, frameBytes: number, index: number) =>
    batch.body.subarray(index * frameBytes, (index + 1) * frameBytes);

  it('stores frames up to the limit as LZ4 blocks of exactly the bytes sent, noise as literal blocks, bigger ones as sent; a node encodes all', async () => {
    const submit = (batch: typeof SMALL_JPEG) =>
      stack.client.submitRaw(batch.request, batch.body, {}, { compression: 'none' });
    const smallJpeg = await submit(SMALL_JPEG);
    const smallH264 = await submit(SMALL_H264);
    const largeJpeg = await submit(LARGE_JPEG);
    for (const accepted of [smallJpeg, smallH264, largeJpeg] as AcceptedJob[])
      expect(accepted).toMatchObject({ status: 'queued', pool: 'cpu' });

    const smallBytes = SMALL.width * SMALL.height * 4;
    for (const [accepted, batch] of [
      [smallJpeg, SMALL_JPEG],
      [smallH264, SMALL_H264],
    ] as const) {
      const values = await storedFrames(accepted.id, batch.request.frames);
      values.forEach((value, index) => {
        // lz4-block's stored value: u32 LE raw size, then the block.
        expect(value.readUInt32LE(0)).toBe(smallBytes);
        expect(value.length).toBeLessThan(smallBytes / 2);
        expect(uncompressSync(value).equals(frameOf(batch, smallBytes, index))).toBe(true);
      });
    }
    const [large] = await storedFrames(largeJpeg.id, 1);
    expect(large.equals(LARGE_JPEG.body)).toBe(true);
    const noisePng = await stack.client.submitRaw(
      NOISE_PNG.request,
      NOISE_PNG.body,
      {},
      { compression: 'none' },
    );
    const [noise] = await storedFrames(noisePng.id, 1);
    const header = lz4LiteralBlockHeader(smallBytes);
    expect(noise.subarray(0, header.length).equals(header)).toBe(true);
    expect(noise.subarray(header.length).equals(NOISE)).toBe(true);
    expect(uncompressSync(noise).equals(NOISE)).toBe(true);

    await stack.startWorker({ name: 'stored-node', concurrency: 2 });
    const outputOf = async (accepted: AcceptedJob) => {
      const job = await stack.client.waitFor(accepted.id);
      expect(job).toMatchObject({ status: 'completed' });
      return (await stack.client.output(job.id, 0)).data;
    };
    const jpegPixels = (await decodeImage(await outputOf(smallJpeg), 3)).data;
    expect(psnr(scene(SMALL, 0), jpegPixels)).toBeGreaterThanOrEqual(30);
    const largePixels = (await decodeImage(await outputOf(largeJpeg), 3)).data;
    expect(psnr(scene(LARGE, 0), largePixels)).toBeGreaterThanOrEqual(30);
    // PNG is lossless: the noise comes back exactly (BGRA in; its colour channels compared).
    const noiseOut = await decodeImage(await outputOf(noisePng), 3);
    expect(noiseOut.data.equals(rgbaToRgb(rgbaToPixelFormat(NOISE, 'bgra')))).toBe(true);
    const video = await decodeVideoToRgb(await outputOf(smallH264));
    const expected = Buffer.concat(Array.from({ length: 6 }, (_, index) => scene(SMALL, index)));
    expect(video.length).toBe(expected.length);
    expect(psnr(expected, video)).toBeGreaterThanOrEqual(28);
  }, 120_000);
});
