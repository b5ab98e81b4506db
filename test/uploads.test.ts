import { readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { Redis } from 'ioredis';
import { EncoderApiClient } from '#client';
import { ServiceStack } from '#scripts/lib/stack.js';
import { bgraBatch, tempDir, waitUntil } from './support.js';

/**
 * Uploads that hold the service's memory: bodies declared big and sent slowly or not at all, with real
 * processes. Nothing is reserved in Redis ahead of the bytes, bytes in flight are capped per client and
 * in total, a body that stops arriving gets 408 and leaves nothing behind, and an uploaded image is
 * judged from its first bytes instead of once it is whole.
 */

const KEY_A = 'uploads-key-a-0123456789';
const KEY_B = 'uploads-key-b-0123456789';
const KEY_C = 'uploads-key-c-0123456789';

const WIDTH_8K = 7680;
const HEIGHT_8K = 4320;
/** One 8K BGRA frame: what the clients declared. */
const FRAME_8K = WIDTH_8K * HEIGHT_8K * 4;
const MAX_BODY_BYTES = 140_000_000;
const PER_CLIENT = 140_000_000;
const TOTAL = 280_000_000;
const IDLE_MS = 3000;
/** Well under IDLE_MS: what keeps an upload alive that the test wants held. */
const TRICKLE_MS = 400;
const MiB = 1024 * 1024;

type ErrorBody = { statusCode: number; error: string; message: string };
type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: ErrorBody };

/** An upload under the test's control: sends what it is told, when it is told, and keeps the answer. */
interface OpenUpload {
  answer: Promise<Answer>;
  send(bytes: Buffer): Promise<void>;
  /** Sends a byte every TRICKLE_MS until stopped: alive, but hardly any bytes. */
  trickle(): void;
  destroy(): void;
}

const BOUNDARY = 'uploads-boundary';

function multipartHead(filename: string): Buffer {
  return Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="codec"\r\n\r\npng\r\n` +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="frame"; filename="${filename}"\r\n` +
      'Content-Type: image/png\r\n\r\n',
  );
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG's signature and IHDR chunk (CRC not checked by the size reader), declaring width x height RGBA. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(25);
  ihdr.writeUInt32BE(13, 0);
  ihdr.write('IHDR', 4, 'latin1');
  ihdr.writeUInt32BE(width, 8);
  ihdr.writeUInt32BE(height, 12);
  ihdr[16] = 8;
  ihdr[17] = 6;
  return Buffer.concat([PNG_SIGNATURE, ihdr]);
}

function vmHwmBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

describe('uploads that stall or declare more than they send', () => {
  let stack: ServiceStack;
  let redis: Redis;
  const dir = tempDir('encoder-uploads-');
  const small = bgraBatch('png', 32, 24, 1);
  const filler = Buffer.alloc(MiB, 0x41);
  const open: OpenUpload[] = [];

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      env: {
        API_KEYS: `${KEY_A},${KEY_B},${KEY_C}`,
        MAX_BODY_BYTES: String(MAX_BODY_BYTES),
        UPLOAD_BYTES_PER_CLIENT: String(PER_CLIENT),
        UPLOAD_BYTES_IN_FLIGHT: String(TOTAL),
        UPLOAD_IDLE_TIMEOUT_MS: String(IDLE_MS),
        // The least it may be: one 8K image as received (MAX_BODY_BYTES at most) and decoded.
        IMAGE_BYTES_IN_FLIGHT: String(MAX_BODY_BYTES + WIDTH_8K * HEIGHT_8K * 4),
      },
      workers: [{ name: 'uploads-node', concurrency: 1 }],
    });
    redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
  }, 60_000);

  afterEach(() => {
    for (const upload of open.splice(0)) upload.destroy();
  });

  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
    dir.remove();
  });

  function startUpload(
    path: string,
    key: string,
    headers: Record<string, string>,
    first: Buffer = Buffer.alloc(0),
  ): OpenUpload {
    const url = new URL(path, stack.apiUrl);
    const request: ClientRequest = httpRequest(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, ...headers },
    });
    // Once answered, the API may cut the connection under bytes still being sent: that is expected.
    request.on('error', () => undefined);
    let trickler: NodeJS.Timeout | undefined;
    const answer = new Promise<Answer>((resolve, reject) => {
      request.on('response', (response) => {
        clearInterval(trickler);
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: JSON.parse(text) as ErrorBody,
          });
        });
        response.on('error', reject);
      });
      request.on('close', () => reject(new Error('connection closed without an answer')));
    });
    answer.catch(() => undefined);
    request.flushHeaders();
    if (first.length > 0) request.write(first);
    const upload: OpenUpload = {
      answer,
      send: (bytes) =>
        new Promise<void>((resolve) => {
          if (request.destroyed || request.write(bytes)) return resolve();
          const done = () => {
            request.off('drain', done);
            request.off('close', done);
            resolve();
          };
          request.on('drain', done);
          request.on('close', done);
        }),
      trickle: () => {
        trickler = setInterval(() => request.write(Buffer.from([0])), TRICKLE_MS);
      },
      destroy: () => {
        clearInterval(trickler);
        request.destroy();
      },
    };
    open.push(upload);
    return upload;
  }

  const rawPath = (width: number, height: number) =>
    `/v1/jobs?codec=png&width=${width}&height=${height}&format=bgra&frames=1`;
  const raw8k = (key: string, first?: Buffer) =>
    startUpload(
      rawPath(WIDTH_8K, HEIGHT_8K),
      key,
      { 'content-type': 'application/octet-stream', 'content-length': String(FRAME_8K) },
      first,
    );
  const imageUpload = (key: string, first: Buffer, contentLength?: number) =>
    startUpload(
      '/v1/jobs',
      key,
      {
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        ...(contentLength ? { 'content-length': String(contentLength) } : {}),
      },
      first,
    );

  async function frameKeys(): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', '*:frame:*', 'COUNT', 1000);
      found.push(...keys);
      cursor = next;
    } while (cursor !== '0');
    return found;
  }

  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);

  it('reserves nothing in Redis for a frame that was declared but not sent', async () => {
    const before = await usedMemory();
    const uploads = [KEY_A, KEY_B].map((key) => raw8k(key, Buffer.alloc(1)));
    for (const upload of uploads) upload.trickle();
    await waitUntil(async () => (await frameKeys()).length === 2, 20_000, 'both frames to be started');
    // Two declared 8K frames (2 x 132 MB) and a few bytes sent: Redis holds the bytes, not the frames.
    expect((await usedMemory()) - before).toBeLessThan(16 * MiB);
    for (const key of await frameKeys()) expect(await redis.strlen(key)).toBeLessThan(1024);
  }, 60_000);

  it('answers a body that stops arriving with 408 and removes what it stored; nothing is queued', async () => {
    await waitUntil(async () => (await frameKeys()).length === 0, 20_000, 'earlier uploads to be gone');
    const upload = raw8k(KEY_A, filler);
    await waitUntil(async () => (await frameKeys()).length === 1, 20_000, 'the frame to be started');
    const [frameKey] = await frameKeys();
    const jobKey = frameKey.replace(/:frame:0$/, '');
    const answer = await upload.answer;
    expect(answer.status).toBe(408);
    expect(answer.body).toMatchObject({ statusCode: 408, error: 'Request Timeout' });
    expect(answer.body.message).toMatch(new RegExp(`nothing was received for ${IDLE_MS} ms`));
    expect(answer.headers.connection).toBe('close');
    expect(await redis.exists(frameKey)).toBe(0);
    expect(await redis.keys(`${jobKey}*`)).toEqual([]);
  }, 60_000);

  it('answers an image upload that stops arriving mid-image with 408 as well', async () => {
    const upload = imageUpload(KEY_A, Buffer.concat([multipartHead('half.png'), pngHeader(64, 64)]), 10_000);
    const answer = await upload.answer;
    expect(answer.status).toBe(408);
    expect(answer.body.message).toMatch(/the body stopped arriving/);
  }, 60_000);

  it('caps bytes in flight per client (429) and in total (503), before reading; other clients go on', async () => {
    const held = raw8k(KEY_A, Buffer.alloc(1));
    held.trickle();
    await waitUntil(async () => (await frameKeys()).length === 1, 20_000, "A's first upload to start");

    const second = raw8k(KEY_A);
    const tooMany = await second.answer;
    expect(tooMany.status).toBe(429);
    expect(Number(tooMany.headers['retry-after'])).toBeGreaterThan(0);
    expect(tooMany.body.message).toMatch(/limit per client is 140000000/);

    // Another client still gets its work done.
    const other = new EncoderApiClient(stack.apiUrl, KEY_B);
    const job = await other.submitRaw(small.request, small.body);
    expect((await other.waitFor(job.id)).status).toBe('completed');

    const heldByB = raw8k(KEY_B, Buffer.alloc(1));
    heldByB.trickle();
    await waitUntil(async () => (await frameKeys()).length === 2, 20_000, "B's upload to start");
    const third = raw8k(KEY_C);
    const saturated = await third.answer;
    expect(saturated.status).toBe(503);
    expect(Number(saturated.headers['retry-after'])).toBeGreaterThan(0);
    expect(saturated.body.message).toMatch(/receiving \d+ bytes of uploads, the limit is 280000000/);

    // Once A's upload is gone, A may send again.
    held.destroy();
    await waitUntil(
      async () => {
        const retry = await new EncoderApiClient(stack.apiUrl, KEY_A)
          .submitRaw(small.request, small.body)
          .then(
            () => true,
            () => false,
          );
        return retry;
      },
      20_000,
      "A's reservation to be given back",
    );
  }, 90_000);

  it('refuses an image part from its first bytes: not an image (400), too many pixels (413), more bytes than its size can take (413)', async () => {
    // Each declares a 100 MB body, sends its first bytes and then nothing: the answer must come from those.
    const declared = 100_000_000;
    const cases: { first: Buffer; status: number; message: RegExp }[] = [
      {
        first: Buffer.concat([multipartHead('filler.png'), PNG_SIGNATURE, filler.subarray(0, 64)]),
        status: 400,
        message: /frame 1 \(filler\.png\): the png image is corrupt: it does not start with an IHDR chunk/,
      },
      {
        first: Buffer.concat([multipartHead('huge.png'), pngHeader(20_000, 20_000)]),
        status: 413,
        message:
          /frame 1 \(huge\.png\): the image is 20000x20000 \(400000000 pixels\); at most 33177600 pixels are accepted/,
      },
      {
        first: Buffer.concat([multipartHead('padded.png'), pngHeader(64, 64), filler, filler]),
        status: 413,
        message: /frame 1 \(padded\.png\) is larger than \d+ bytes, more than a 64x64 image can take/,
      },
    ];
    for (const { first, status, message } of cases) {
      const answer = await imageUpload(KEY_A, first, declared).answer;
      expect({ status: answer.status, message: answer.body.message }).toEqual({
        status,
        message: expect.stringMatching(message),
      });
    }
  }, 60_000);

  it('bounds the memory that images take in all requests together (503 when full)', async () => {
    // Each 8K header reserves the pixels it will decode to (132 MB): two fit, a third does not.
    const head8k = Buffer.concat([multipartHead('8k.png'), pngHeader(WIDTH_8K, HEIGHT_8K)]);
    const uploads = [KEY_A, KEY_B, KEY_C].map((key) => imageUpload(key, head8k));
    for (const upload of uploads) upload.trickle();
    const first = await Promise.race(uploads.map((upload) => upload.answer));
    expect(first.status).toBe(503);
    expect(Number(first.headers['retry-after'])).toBeGreaterThan(0);
    expect(first.body.message).toMatch(/decoding \d+ bytes of uploaded images, the limit is 272710400/);
  }, 60_000);

  it('keeps the API small while three big image parts arrive at once (a PNG signature and filler)', async () => {
    const pid = stack.apiPid!;
    const before = vmHwmBytes(pid);
    const partBytes = 100 * MiB;
    const send = async () => {
      const upload = imageUpload(KEY_C, Buffer.concat([multipartHead('filler.png'), PNG_SIGNATURE]));
      let answered = false;
      void upload.answer.finally(() => (answered = true)).catch(() => undefined);
      for (let sent = 0; sent < partBytes && !answered; sent += filler.length) await upload.send(filler);
      if (!answered) await upload.send(Buffer.from(`\r\n--${BOUNDARY}--\r\n`));
      return upload.answer;
    };
    // Each is answered 400 after its first bytes; a client that keeps sending regardless may lose that
    // answer to the reset when the API stops reading off its body (16 MiB later).
    const outcomes = await Promise.all(
      [send(), send(), send()].map((answer) =>
        answer.then(
          ({ status }) => status,
          () => 'reset',
        ),
      ),
    );
    for (const outcome of outcomes) expect([400, 'reset']).toContain(outcome);
    // Buffered whole, the three parts would be 300 MiB (measured before: 197 MiB more at the peak; now 9).
    expect(vmHwmBytes(pid) - before).toBeLessThan(64 * MiB);
  }, 120_000);
});
