import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { gzipSync, deflateSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import sharp from 'sharp';
import { compressLz4Frame, rgbaToPixelFormat, syntheticRgba } from '#codecs';
import { decodeImage, decodeVideoToRgb, probeVideo, psnr } from '#codecs/testing/media-check.js';
import { mulberry32, rgbaToRgb } from '#codecs/testing/synthetic-frames.js';
import type { JobView } from '#contracts';
import type { AcceptedJob } from '#client';
import type { ServiceStack } from '#scripts/lib/stack.js';
import { startStackWithRedis, stopStackWithRedis, tempDir, waitUntil } from './support.js';

/**
 * The input side of `POST /v1/jobs` with real processes: raw frames compressed with lz4, gzip or
 * deflate (stored compressed, decompressed on the node), encoded PNG/JPEG/WebP frames in multipart
 * form data (decoded on the API), codec negotiation against a restricted node, and the error answers.
 */

type ErrorBody = { statusCode: number; error: string; message: string; [key: string]: unknown };

const MAX_BODY_BYTES = 8 * 1024 * 1024;

// Built before any connection is pooled (PITFALLS.md, "Sockets and tests"): seconds of synchronous work
// on a loaded machine. Noise (opaque) hardly compresses: 3 MiB of frames become ~2.6 MiB, 3 stored chunks.
const GZIP_NOISE = (() => {
  const next = mulberry32(7);
  const frames = Array.from({ length: 3 }, () => {
    const rgba = Buffer.alloc(512 * 512 * 4);
    for (let i = 0; i < rgba.length; i++) rgba[i] = i % 4 === 3 ? 255 : Math.floor(next() * 256);
    return rgba;
  });
  return { frames, compressed: gzipSync(Buffer.concat(frames)) };
})();
const MAX_FRAMES = 16;

describe('job inputs end to end', () => {
  let stack: ServiceStack;
  let redis: Redis;
  let data: ReturnType<typeof tempDir>;
  const width = 160;
  const height = 120;
  const scene = (index: number, overlay = false) => syntheticRgba(width, height, index, overlay);

  beforeAll(async () => {
    // First a node restricted to jpeg and png, for the negotiation tests; a full node replaces it below.
    ({ stack, redis, data } = await startStackWithRedis('encoder-inputs-', {
      workers: [{ name: 'inputs-jpeg-png', concurrency: 1, args: ['--codecs', 'jpeg,png'] }],
      env: {
        MAX_BODY_BYTES: String(MAX_BODY_BYTES),
        MAX_FRAMES_PER_JOB: String(MAX_FRAMES),
        NODE_CACHE_MS: '0',
      },
    }));
  }, 60_000);

  afterAll(() => stopStackWithRedis({ stack, redis, data }));

  /**
   * POSTs with node:http, in pieces, stopping as soon as an answer comes: a 413 sent before the body
   * is through is read, as a careful client would, instead of being lost to EPIPE.
   */
  function post(
    query: string,
    body: Buffer,
    headers: Record<string, string>,
    options: { chunked?: boolean } = {},
  ): Promise<{ status: number; body: ErrorBody & Partial<AcceptedJob> }> {
    return new Promise((resolve, reject) => {
      const url = new URL(`/v1/jobs?${query}`, stack.apiUrl);
      // Without Content-Length, node:http sends Transfer-Encoding: chunked.
      // A connection of its own, never one from the shared pool that the API may have closed while the
      // test was busy ("socket hang up", PITFALLS: "Sockets and tests"); still keep-alive: sent with
      // `Connection: close`, an early 413 was now and then lost to the connection's reset under load.
      const request = httpRequest(url, {
        method: 'POST',
        agent: new HttpAgent({ keepAlive: true }),
        headers: options.chunked ? headers : { ...headers, 'content-length': String(body.length) },
      });
      let answered = false;
      let failed = false;
      request.on('response', (response) => {
        answered = true;
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) });
          request.destroy();
        });
        response.on('error', reject);
      });
      request.on('error', (error) => {
        failed = true;
        if (!answered) setTimeout(() => (answered ? undefined : reject(error)), 500);
      });
      request.flushHeaders();
      void (async () => {
        const piece = 256 * 1024;
        for (let offset = 0; offset < body.length; offset += piece) {
          // Let the answer in between pieces.
          await new Promise((resolveTurn) => setTimeout(resolveTurn, offset === 0 ? 20 : 0));
          if (answered || failed) return;
          if (!request.write(body.subarray(offset, offset + piece))) {
            await new Promise((resolveDrain) => {
              request.once('drain', resolveDrain);
              request.once('close', resolveDrain);
            });
          }
        }
        if (!answered && !failed) request.end();
      })();
    });
  }

  const rawQuery = (params: Record<string, string | number>) =>
    new URLSearchParams(
      Object.entries(params).map(([key, value]): [string, string] => [key, String(value)]),
    ).toString();

  async function submitCompressed(
    params: Record<string, string | number>,
    body: Buffer,
    encoding: string,
    options: { chunked?: boolean } = {},
  ): Promise<{ accepted: AcceptedJob; job: JobView }> {
    const response = await post(
      rawQuery(params),
      body,
      { 'content-type': 'application/octet-stream', 'content-encoding': encoding },
      options,
    );
    expect(response).toMatchObject({ status: 202 });
    const accepted = response.body as unknown as AcceptedJob;
    return { accepted, job: await stack.client.waitFor(accepted.id) };
  }

  async function postForm(form: FormData, query = '', headers: Record<string, string> = {}) {
    const response = await fetch(`${stack.apiUrl}/v1/jobs${query ? `?${query}` : ''}`, {
      method: 'POST',
      body: form,
      headers,
    });
    return { status: response.status, body: (await response.json()) as ErrorBody & Partial<AcceptedJob> };
  }

  function formWith(files: { data: Buffer; name?: string; type?: string; filename?: string }[], fields = {}) {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
    files.forEach((file, index) =>
      form.append(
        file.name ?? 'frame',
        new Blob([new Uint8Array(file.data)], { type: file.type ?? 'application/octet-stream' }),
        file.filename ?? `frame-${index}`,
      ),
    );
    return form;
  }

  const png = (rgba: Buffer, w = width, h = height) =>
    sharp(rgba, { raw: { width: w, height: h, channels: 4 } })
      .png()
      .toBuffer();
  const jpeg = (rgba: Buffer) =>
    sharp(rgba, { raw: { width, height, channels: 4 } })
      .removeAlpha()
      .jpeg({ quality: 95 })
      .toBuffer();
  const webpLossless = (rgba: Buffer) =>
    sharp(rgba, { raw: { width, height, channels: 4 } })
      .webp({ lossless: true, exact: true })
      .toBuffer();

  /** A finished job's input is deleted right after its final event: give that a moment. */
  async function expectNoInputKeys(jobId: string): Promise<void> {
    await waitUntil(
      async () => (await inputKeysOf(jobId)).length === 0,
      5000,
      `job ${jobId}'s input to be deleted`,
    );
  }

  /** The input keys (raw frames, compressed chunks) a job has left in Redis. */
  async function inputKeysOf(jobId: string): Promise<string[]> {
    const found: string[] = [];
    for (const pattern of [`*{${jobId}}:frame:*`, `*{${jobId}}:in:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        found.push(...keys);
      } while (cursor !== '0');
    }
    return found;
  }

  describe('negotiation with a node restricted to jpeg and png', () => {
    it('GET /v1/codecs lists what the live nodes offer, per pool', async () => {
      const response = await fetch(`${stack.apiUrl}/v1/codecs`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ pools: { cpu: ['jpeg', 'png'], gpu: [] } });
    });

    it('accept with codecs no live node offers gets 422 listing what is available', async () => {
      const response = await post(
        rawQuery({ accept: 'webp,h264', width: 8, height: 8, format: 'rgba' }),
        Buffer.alloc(8 * 8 * 4),
        { 'content-type': 'application/octet-stream' },
      );
      expect(response.status).toBe(422);
      expect(response.body).toMatchObject({ statusCode: 422, available: ['jpeg', 'png'] });
      expect(response.body.message).toMatch(
        /no live node can encode webp, h264; the cluster offers: jpeg, png/,
      );
    });

    it('accept picks the first codec a live node offers, and the 202 says which', async () => {
      const rgba = scene(1, true);
      const accepted = await stack.client.submitRaw(
        { accept: ['webp', 'png', 'jpeg'], width, height, format: 'rgba', frames: 1 },
        rgba,
      );
      expect(accepted).toMatchObject({ status: 'queued', codec: 'png', pool: 'cpu', frames: 1 });
      const job = await stack.client.waitFor(accepted.id);
      expect(job.status).toBe('completed');
      expect((await decodeImage((await stack.client.output(job.id, 0)).data, 4)).data.equals(rgba)).toBe(
        true,
      );
    });

    it('multipart form fields negotiate the same way (422 when nothing fits)', async () => {
      const response = await postForm(formWith([{ data: await png(scene(0)) }], { accept: 'avif,vp9' }));
      expect(response.status).toBe(422);
      expect(response.body.available).toEqual(['jpeg', 'png']);
    });

    it('then a full node joins and GET /v1/codecs shows its codecs', async () => {
      await stack.signalWorker('inputs-jpeg-png', 'SIGTERM');
      await stack.startWorker({ name: 'inputs-cpu', concurrency: 2 });
      const body = (await (await fetch(`${stack.apiUrl}/v1/codecs`)).json()) as { pools: { cpu: string[] } };
      expect(body.pools.cpu).toEqual(expect.arrayContaining(['jpeg', 'png', 'webp', 'h264']));
    }, 40_000);
  });

  describe('compressed raw frames (Content-Encoding), decompressed on the node', () => {
    it('lz4: PNG output bit-exact, alpha included', async () => {
      const frames = [scene(0, true), scene(1, true)];
      const raw = Buffer.concat(frames);
      const compressed = compressLz4Frame(raw);
      expect(compressed.length).toBeLessThan(raw.length / 2);
      const { accepted, job } = await submitCompressed(
        { codec: 'png', width, height, format: 'rgba', frames: 2 },
        compressed,
        'lz4',
      );
      expect(accepted).toMatchObject({ codec: 'png', frames: 2 });
      expect(job).toMatchObject({ status: 'completed', attempts: 1, error: null });
      for (const [index, rgba] of frames.entries()) {
        const decoded = await decodeImage((await stack.client.output(job.id, index)).data, 4);
        expect(decoded.data.equals(rgba)).toBe(true);
      }
      await expectNoInputKeys(job.id);
    });

    it('gzip without Content-Length, several 1 MiB chunks: PNG output bit-exact', async () => {
      const { frames, compressed } = GZIP_NOISE;
      expect(compressed.length).toBeGreaterThan(2 * 1024 * 1024);
      const { job } = await submitCompressed(
        { codec: 'png', width: 512, height: 512, format: 'rgba', frames: 3 },
        compressed,
        'gzip',
        { chunked: true },
      );
      expect(job.status).toBe('completed');
      for (const [index, rgba] of frames.entries()) {
        const decoded = await decodeImage((await stack.client.output(job.id, index)).data, 4);
        expect(decoded.data.equals(rgba)).toBe(true);
      }
      await expectNoInputKeys(job.id);
    }, 30_000);

    it('deflate, bgra: JPEG output at quality 90 decodes close to the input (PSNR >= 30 dB)', async () => {
      const frames = [scene(2), scene(3), scene(4)];
      const body = deflateSync(Buffer.concat(frames.map((rgba) => rgbaToPixelFormat(rgba, 'bgra'))));
      const { job } = await submitCompressed(
        { codec: 'jpeg', width, height, format: 'bgra', frames: 3, quality: 90 },
        body,
        'deflate',
      );
      expect(job.status).toBe('completed');
      expect(job.outputs).toHaveLength(3);
      for (const [index, rgba] of frames.entries()) {
        const output = await stack.client.output(job.id, index);
        expect(output.contentType).toBe('image/jpeg');
        expect(psnr(rgbaToRgb(rgba), (await decodeImage(output.data, 3)).data)).toBeGreaterThanOrEqual(30);
      }
    });

    it('lz4 into a video codec: an H.264 segment with exactly the frames sent', async () => {
      const frames = Array.from({ length: 12 }, (_, index) => scene(index));
      const body = compressLz4Frame(Buffer.concat(frames.map((rgba) => rgbaToPixelFormat(rgba, 'bgra'))));
      const { job } = await submitCompressed(
        { codec: 'h264', width, height, format: 'bgra', frames: frames.length, quality: 90 },
        body,
        'lz4',
      );
      expect(job.status).toBe('completed');
      const { data: video } = await stack.client.output(job.id, 0);
      expect(await probeVideo(video)).toMatchObject({ codecName: 'h264', width, height, frames: 12 });
      expect(
        psnr(Buffer.concat(frames.map(rgbaToRgb)), await decodeVideoToRgb(video)),
      ).toBeGreaterThanOrEqual(28);
    }, 30_000);

    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });

    /** The event types a job's SSE log holds (the session ends after the final event). */
    async function eventTypesOf(jobId: string): Promise<string[]> {
      const response = await fetch(`${stack.apiUrl}/v1/jobs/${jobId}/events`);
      return [...(await response.text()).matchAll(/^event: (\w+)$/gm)].map((match) => match[1]);
    }

    it.each([
      ['png', 8, 8, 256],
      ['h264', 16, 16, 1024],
      // 64 KiB frames: the first two inflate (and are encoded) before the bomb is noticed.
      ['png', 128, 128, 65536],
    ] as const)(
      'a zip bomb (64 MiB of zeros in a 64 KiB gzip body) for %s %dx%d fails the job once, with a clear reason and no output',
      async (codec, w, h, declared) => {
        expect(bomb.length).toBeLessThan(128 * 1024);
        const { job } = await submitCompressed(
          { codec, width: w, height: h, format: 'rgba', frames: 2 },
          bomb,
          'gzip',
        );
        expect(job).toMatchObject({ status: 'failed', attempts: 1, outputs: [] });
        expect(job.error).toMatch(`gzip input decompresses to more than the ${declared * 2} bytes expected`);
        // A failed job exposes no partial work: nothing listed, served or announced.
        const output = await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/outputs/0`);
        expect(output.status).toBe(404);
        expect(((await output.json()) as ErrorBody).message).toMatch(/failed .*a failed job has no outputs/);
        expect(await eventTypesOf(job.id)).not.toContain('output');
        expect((await eventTypesOf(job.id)).at(-1)).toBe('failed');
        await waitUntil(
          async () =>
            (await redis.exists(`encoder:job:{${job.id}}:out:0`, `encoder:job:{${job.id}}:out:1`)) === 0,
          5000,
          `job ${job.id}'s stored outputs to be deleted`,
        );
        await expectNoInputKeys(job.id);
      },
    );

    it('a body that decompresses to less than declared fails the job, not retried', async () => {
      const short = compressLz4Frame(Buffer.alloc(8 * 8 * 4 * 2 - 10, 7));
      const { job } = await submitCompressed(
        { codec: 'png', width: 8, height: 8, format: 'rgba', frames: 2 },
        short,
        'lz4',
      );
      expect(job).toMatchObject({ status: 'failed', attempts: 1 });
      expect(job.error).toMatch(/lz4 input decompresses to 502 bytes, 512 expected/);
    });

    it('a body that is not what Content-Encoding says fails the job as corrupt', async () => {
      const { job } = await submitCompressed(
        { codec: 'png', width: 8, height: 8, format: 'rgba' },
        Buffer.alloc(256, 1),
        'deflate',
      );
      expect(job).toMatchObject({ status: 'failed', attempts: 1 });
      expect(job.error).toMatch(/invalid deflate data/);
    });

    it('an unsupported Content-Encoding gets 415 listing the supported ones', async () => {
      const response = await post(
        rawQuery({ codec: 'png', width: 8, height: 8, format: 'rgba' }),
        Buffer.alloc(256),
        {
          'content-type': 'application/octet-stream',
          'content-encoding': 'br',
        },
      );
      expect(response.status).toBe(415);
      expect(response.body.message).toMatch(
        /Content-Encoding br is not supported; .*identity, lz4, lz4-block, gzip, deflate/,
      );
      expect(response.body.supported).toEqual(['identity', 'lz4', 'lz4-block', 'gzip', 'deflate']);
    });

    it('a compressed body over MAX_BODY_BYTES gets 413, with or without Content-Length', async () => {
      const params = { codec: 'png', width: 1024, height: 1024, format: 'rgba', frames: 2 };
      const tooLong = Buffer.alloc(MAX_BODY_BYTES + 1024 * 1024, 1);
      const headers = { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' };
      const declared = await post(rawQuery(params), tooLong, headers);
      expect(declared.status).toBe(413);
      expect(declared.body.message).toMatch(/the gzip body is \d+ bytes; the limit is 8388608/);
      const streamed = await post(rawQuery(params), tooLong, headers, { chunked: true });
      expect(streamed.status).toBe(413);
      expect(streamed.body.message).toMatch(/the gzip body is larger than the limit of 8388608 bytes/);
    });

    it('declared frames over the limits get 413 before the body is read, compressed or not', async () => {
      const response = await post(
        rawQuery({ codec: 'png', width: 4096, height: 4096, format: 'rgba' }),
        gzipSync(Buffer.alloc(16)),
        { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' },
      );
      expect(response.status).toBe(413);
      expect(response.body.message).toMatch(/the batch is 67108864 bytes; the limit is 8388608/);
    });
  });

  describe('encoded frames (multipart/form-data), decoded on the API', () => {
    it('PNG frames: PNG output bit-exact, alpha included', async () => {
      const frames = [scene(5, true), scene(6, true)];
      const response = await postForm(
        formWith(
          await Promise.all(frames.map(async (rgba) => ({ data: await png(rgba), type: 'image/png' }))),
          {
            codec: 'png',
          },
        ),
      );
      expect(response.status).toBe(202);
      expect(response.body).toMatchObject({ status: 'queued', codec: 'png', frames: 2 });
      const job = await stack.client.waitFor(response.body.id!);
      expect(job).toMatchObject({ status: 'completed', width, height, format: 'rgba' });
      for (const [index, rgba] of frames.entries()) {
        const decoded = await decodeImage((await stack.client.output(job.id, index)).data, 4);
        expect(decoded.data.equals(rgba)).toBe(true);
      }
      await expectNoInputKeys(job.id);
    });

    it('JPEG frames: JPEG output at quality 90, PSNR >= 30 dB against the uploaded images', async () => {
      const frames = [scene(7), scene(8)];
      const images = await Promise.all(frames.map(jpeg));
      const response = await postForm(
        formWith(
          images.map((data) => ({ data, type: 'image/jpeg' })),
          { codec: 'jpeg', quality: 90 },
        ),
      );
      expect(response.status).toBe(202);
      const job = await stack.client.waitFor(response.body.id!);
      expect(job.status).toBe('completed');
      for (const [index, image] of images.entries()) {
        const output = await decodeImage((await stack.client.output(job.id, index)).data, 3);
        expect(psnr((await decodeImage(image, 3)).data, output.data)).toBeGreaterThanOrEqual(30);
        expect(psnr(rgbaToRgb(frames[index]), output.data)).toBeGreaterThanOrEqual(30);
      }
    });

    it('lossless WebP, PNG and JPEG mixed, fields after the files: one output per frame', async () => {
      const frames = [scene(9, true), scene(10, true), scene(11)];
      const jpegFrame = await jpeg(frames[2]);
      const form = formWith([
        { data: await webpLossless(frames[0]), type: 'image/webp' },
        { data: await png(frames[1]), type: 'image/png' },
        { data: jpegFrame, type: 'image/jpeg' },
      ]);
      form.append('codec', 'png');
      form.append('priority', '5');
      const response = await postForm(form);
      expect(response.status).toBe(202);
      const job = await stack.client.waitFor(response.body.id!);
      expect(job.status).toBe('completed');
      expect(job.outputs).toHaveLength(3);
      const expected = [frames[0], frames[1], (await decodeImage(jpegFrame, 4)).data];
      for (const [index, rgba] of expected.entries()) {
        const decoded = await decodeImage((await stack.client.output(job.id, index)).data, 4);
        expect(decoded.data.equals(rgba)).toBe(true);
      }
    });

    it('parameters may also come in the query string', async () => {
      const response = await postForm(formWith([{ data: await png(scene(12)) }]), 'codec=png&speed=100');
      expect(response.status).toBe(202);
      expect((await stack.client.waitFor(response.body.id!)).status).toBe('completed');
    });

    it('a decompression bomb (a 20000x20000 PNG of ~1 MB) gets 413 before it is decoded', async () => {
      const bomb = await sharp({
        create: { width: 20000, height: 20000, channels: 3, background: 'white' },
        limitInputPixels: false,
      })
        .png({ compressionLevel: 9 })
        .toBuffer();
      expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
      const response = await postForm(
        formWith([{ data: await png(scene(0)) }, { data: bomb, filename: 'bomb.png' }], { codec: 'png' }),
      );
      expect(response.status).toBe(413);
      expect(response.body.message).toMatch(
        /frame 2 \(bomb\.png\): the image is 20000x20000 \(400000000 pixels\); at most 33177600 pixels are accepted/,
      );
    }, 30_000);

    const tiny = (color: number) => Buffer.alloc(8 * 8 * 4, color);

    it.each([
      [
        'a part that is not an image',
        async () =>
          formWith([{ data: Buffer.from('hello, not an image'), filename: 'notes.txt' }], { codec: 'png' }),
        400,
        /frame 1 \(notes\.txt\): the upload is not a PNG, JPEG or WebP image/,
      ],
      [
        'a GIF',
        async () =>
          formWith(
            [
              {
                data: await sharp(tiny(9), { raw: { width: 8, height: 8, channels: 4 } })
                  .gif()
                  .toBuffer(),
              },
            ],
            { codec: 'png' },
          ),
        400,
        /images must be PNG, JPEG or WebP, got gif/,
      ],
      [
        'a truncated PNG',
        async () => formWith([{ data: (await png(scene(0))).subarray(0, 400) }], { codec: 'png' }),
        400,
        /frame 1 .*corrupt or truncated/,
      ],
      [
        'frames of different sizes',
        async () =>
          formWith(
            [{ data: await png(scene(0)) }, { data: await png(tiny(5), 8, 8), filename: 'small.png' }],
            {
              codec: 'png',
            },
          ),
        400,
        /frame 2 \(small\.png\) is 8x8 but frame 1 is 160x120; all frames must have the same size/,
      ],
      ['no frame parts', async () => formWith([], { codec: 'png' }), 400, /no frames: send one or more/],
      [
        'a file part with another name',
        async () => formWith([{ data: await png(tiny(1), 8, 8), name: 'image' }], { codec: 'png' }),
        400,
        /unexpected file part "image"/,
      ],
      [
        'a frame sent as a text field',
        async () => formWith([], { codec: 'png', frame: 'abc' }),
        400,
        /frame must be a file part/,
      ],
      [
        'an invalid parameter (same rule and message as the query)',
        async () => formWith([{ data: await png(tiny(1), 8, 8) }], { codec: 'png', quality: 101 }),
        400,
        /quality must be an integer from 0 to 100/,
      ],
      [
        'an unknown codec',
        async () => formWith([{ data: await png(tiny(1), 8, 8) }], { codec: 'gif' }),
        400,
        /codec must be one of jpeg, webp/,
      ],
      [
        'width, which comes from the images',
        async () => formWith([{ data: await png(tiny(1), 8, 8) }], { codec: 'png', width: 8 }),
        400,
        /property width should not exist/,
      ],
      [
        'a missing codec',
        async () => formWith([{ data: await png(tiny(1), 8, 8) }]),
        400,
        /codec is required/,
      ],
      [
        'more frames than MAX_FRAMES_PER_JOB',
        async () => {
          const image = await png(tiny(1), 8, 8);
          return formWith(
            Array.from({ length: MAX_FRAMES + 1 }, () => ({ data: image })),
            { codec: 'png' },
          );
        },
        413,
        /more than 16 frame parts/,
      ],
    ])('%s gets %i', async (_name, build, status, message) => {
      const response = await postForm(await build());
      expect(response.status).toBe(status);
      expect(response.body).toMatchObject({ statusCode: status });
      expect(response.body.message).toMatch(message);
    });

    it('a compressed multipart body gets 415', async () => {
      const response = await postForm(formWith([{ data: await png(scene(0)) }], { codec: 'png' }), '', {
        'content-encoding': 'gzip',
      });
      expect(response.status).toBe(415);
      expect(response.body.message).toMatch(/not supported for multipart\/form-data/);
    });

    it('a malformed multipart body gets 400', async () => {
      const response = await post(
        '',
        Buffer.from('--x\r\nContent-Disposition: form-data; name="codec"\r\n\r\npng'),
        {
          'content-type': 'multipart/form-data; boundary=x',
        },
      );
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/malformed multipart\/form-data body|no frames/);
    });

    it('a content type that is neither gets 415 naming both', async () => {
      const response = await post('codec=png', Buffer.from('{}'), { 'content-type': 'application/json' });
      expect(response.status).toBe(415);
      expect(response.body.message).toMatch(/application\/octet-stream .* or multipart\/form-data/);
    });
  });

  describe('afterwards', () => {
    it('leaves no input keys behind, and the service still works afterwards', async () => {
      const leftovers: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', '*:job:*', 'COUNT', 1000);
        cursor = next;
        leftovers.push(...keys.filter((key) => /:(frame|in):\d+$/.test(key)));
      } while (cursor !== '0');
      expect(leftovers).toEqual([]);

      expect(await stack.client.ready()).toBe(true);
      const rgba = scene(13, true);
      const { job } = await submitCompressed(
        { codec: 'png', width, height, format: 'rgba' },
        compressLz4Frame(rgba),
        'lz4',
      );
      expect(job.status).toBe('completed');
      expect((await decodeImage((await stack.client.output(job.id, 0)).data, 4)).data.equals(rgba)).toBe(
        true,
      );
      const response = await postForm(formWith([{ data: await png(rgba) }], { codec: 'png' }));
      expect(response.status).toBe(202);
      expect((await stack.client.waitFor(response.body.id!)).status).toBe('completed');
    });
  });
});
