import { request as httpRequest } from 'node:http';
import type { Redis } from 'ioredis';
import { compressSync } from 'lz4-napi';
import { encodeLz4BlockRecordSync, rgbaToPixelFormat, syntheticRgba } from '#codecs';
import { decodeImage, decodeVideoToRgb, psnr } from '#codecs/testing/media-check.js';
import { rgbaToRgb } from '#codecs/testing/synthetic-frames.js';
import { EncoderApiClient, nodeHttpTransport, type HttpTransport, type UploadCompression } from '#client';
import type { Codec, JobView } from '#contracts';
import type { ServiceStack } from '#scripts/lib/stack.js';
import { startStackWithRedis, stopStackWithRedis, tempDir, waitUntil } from './support.js';

/**
 * LZ4 uploads as the SDK sends them by default (`Content-Encoding: lz4-block`, one block per frame)
 * against real processes: every codec decodes to the same pixels as the same frames sent
 * uncompressed, and bodies that lie about their frames (bombs, truncation) get a 4xx before anything
 * is queued, or fail their job with a reason when only decompressing can tell.
 */

type ErrorBody = { statusCode: number; error: string; message: string };

const CODECS: Codec[] = ['jpeg', 'webp', 'png', 'avif', 'h264', 'hevc', 'vp8', 'vp9', 'av1'];
const VIDEO: ReadonlySet<Codec> = new Set(['h264', 'hevc', 'vp8', 'vp9', 'av1']);

describe('LZ4 uploads (lz4-block) end to end', () => {
  let stack: ServiceStack;
  let redis: Redis;
  let data: ReturnType<typeof tempDir>;
  const width = 96;
  const height = 64;
  const frameBytes = width * height * 4;
  // Built before any connection is pooled (PITFALLS.md, "Sockets and tests").
  const rgba = Array.from({ length: 4 }, (_, index) => syntheticRgba(width, height, index, false));
  const body = Buffer.concat(rgba.map((frame) => rgbaToPixelFormat(frame, 'bgra')));
  const sent: { encoding: string; bytes: number }[] = [];
  const recording: HttpTransport = (request) => {
    if (request.method === 'POST') {
      sent.push({
        encoding: request.headers?.['content-encoding'] ?? 'identity',
        bytes: request.body?.byteLength ?? 0,
      });
    }
    return nodeHttpTransport(request);
  };

  beforeAll(async () => {
    ({ stack, redis, data } = await startStackWithRedis('encoder-lz4-', {
      workers: [{ name: 'lz4-node', concurrency: 2 }],
    }));
  }, 60_000);

  afterAll(() => stopStackWithRedis({ stack, redis, data }));

  async function encodeWith(codec: Codec, compression?: UploadCompression): Promise<Buffer[]> {
    const client = new EncoderApiClient(stack.apiUrl, undefined, { transport: recording });
    const frames = VIDEO.has(codec) ? rgba.length : 1;
    const accepted = await client.submitRaw(
      { codec, width, height, format: 'bgra', frames, quality: 90 },
      body.subarray(0, frames * frameBytes),
      {},
      compression ? { compression } : {},
    );
    const job = await client.waitFor(accepted.id);
    expect(job).toMatchObject({ status: 'completed' });
    return Promise.all(job.outputs.map(async (output) => (await client.output(job.id, output.index)).data));
  }

  async function pixelsOf(codec: Codec, outputs: Buffer[]): Promise<Buffer> {
    if (VIDEO.has(codec)) return decodeVideoToRgb(outputs[0]);
    return (await decodeImage(outputs[0], 3)).data;
  }

  it.each(CODECS)(
    '%s: the SDK sends LZ4 by default and the output decodes to the same pixels as uncompressed',
    async (codec) => {
      sent.length = 0;
      const lz4 = await encodeWith(codec);
      const plain = await encodeWith(codec, 'none');
      expect(sent.map((request) => request.encoding)).toEqual(['lz4-block', 'identity']);
      expect(sent[0].bytes).toBeLessThan(sent[1].bytes / 2);
      const [lz4Pixels, plainPixels] = await Promise.all([pixelsOf(codec, lz4), pixelsOf(codec, plain)]);
      const frames = VIDEO.has(codec) ? rgba.length : 1;
      const expected = Buffer.concat(rgba.slice(0, frames).map(rgbaToRgb));
      expect(lz4Pixels.length).toBe(expected.length);
      // Same input pixels, same encoder: the same picture (identical for deterministic encoders).
      expect(psnr(plainPixels, lz4Pixels)).toBeGreaterThanOrEqual(45);
      expect(psnr(expected, lz4Pixels)).toBeGreaterThanOrEqual(Math.min(30, psnr(expected, plainPixels)));
    },
    120_000,
  );

  /** POSTs an lz4-block body as it is, with node:http. */
  function post(
    query: Record<string, string | number>,
    payload: Buffer,
  ): Promise<{ status: number; body: ErrorBody & { id?: string } }> {
    return new Promise((resolve, reject) => {
      const search = new URLSearchParams(
        Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
      );
      const request = httpRequest(new URL(`/v1/jobs?${search}`, stack.apiUrl), {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'content-encoding': 'lz4-block',
          'content-length': String(payload.length),
        },
      });
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }),
        );
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end(payload);
    });
  }

  const query = (frames: number) => ({ codec: 'png', width, height, format: 'bgra', frames });
  const record = (value: Buffer) => {
    const header = Buffer.alloc(4);
    header.writeUInt32LE(value.length, 0);
    return Buffer.concat([header, value]);
  };
  const good = Buffer.concat(encodeLz4BlockRecordSync(rgbaToPixelFormat(rgba[0], 'bgra')));

  async function frameKeys(): Promise<string[]> {
    return redis.keys('*:frame:*');
  }

  it.each([
    [
      'a block that declares more bytes than a frame has (a bomb)',
      () => record(compressSync(Buffer.alloc(frameBytes * 64))),
      /declares 1572864 bytes, but the parameters make a frame 24576 bytes/,
    ],
    [
      'a record longer than any LZ4 block of the frame',
      () => {
        const value = Buffer.alloc(frameBytes * 2);
        value.writeUInt32LE(frameBytes, 0);
        return record(value);
      },
      /record .* is 5 to \d+ bytes/,
    ],
    [
      'a body cut inside a block',
      () => good.subarray(0, good.length - 10),
      /truncated: it ends inside frame 0/,
    ],
    ['a body cut inside a record header', () => Buffer.concat([good, good.subarray(0, 6)]), /truncated/],
    ['fewer frames than declared', () => good, /holds 1 frames; the parameters declare 2/],
  ])('%s gets 400 and leaves nothing stored', async (_name, payload, message) => {
    const frames = _name.startsWith('fewer') || _name.includes('record header') ? 2 : 1;
    const answer = await post(query(frames), payload());
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(answer.body.message).toMatch(message);
    expect(await frameKeys()).toEqual([]);
  });

  it.each([
    [
      'decompresses to more than it declares',
      frameBytes * 2,
      /decompresses to more than the 24576 bytes it declares/,
    ],
    [
      'decompresses to less than it declares',
      frameBytes / 2,
      /decompresses to 12288 bytes; it declares 24576/,
    ],
  ])('a block that %s fails its job with the reason', async (_name, actualBytes, reason) => {
    const value = compressSync(Buffer.alloc(actualBytes, 7));
    value.writeUInt32LE(frameBytes, 0);
    const answer = await post(query(1), record(value));
    expect(answer.status).toBe(202);
    const job: JobView = await stack.client.waitFor(answer.body.id!);
    expect(job.status).toBe('failed');
    expect(job.error).toMatch(reason);
    await waitUntil(async () => (await frameKeys()).length === 0, 5000, 'the input to be deleted');
  });
});
