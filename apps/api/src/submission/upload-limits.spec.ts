import { PassThrough } from 'node:stream';
import { HttpException } from '@nestjs/common';
import { loadApiConfig } from '../config/api-config.js';
import { BodyStalledException, UploadLimits, type UploadRequest } from './upload-limits.js';

const MiB = 1024 * 1024;

function request(contentLength?: number): UploadRequest & PassThrough {
  const socket = { bytesRead: 0 };
  return Object.assign(new PassThrough(), {
    headers: contentLength === undefined ? {} : { 'content-length': String(contentLength) },
    socket,
    complete: false,
  }) as unknown as UploadRequest & PassThrough;
}

function statusOf(action: () => unknown): number | null {
  try {
    action();
    return null;
  } catch (error) {
    return (error as HttpException).getStatus();
  }
}

describe('UploadLimits', () => {
  const config = loadApiConfig({
    MAX_BODY_BYTES: String(4 * MiB),
    UPLOAD_BYTES_PER_CLIENT: String(6 * MiB),
    UPLOAD_BYTES_IN_FLIGHT: String(10 * MiB),
    UPLOAD_IDLE_TIMEOUT_MS: '100',
    MAX_FRAME_PIXELS: '1000',
  });

  it('answers 413, not a retry, for a declared length no upload may have', () => {
    const limits = new UploadLimits(config);
    expect(statusOf(() => limits.open(request(4 * MiB + 1), 'a'))).toBe(413);
    expect(statusOf(() => limits.open(request(4 * MiB), 'a'))).toBeNull();
  });

  it('reserves declared lengths per client (429) and in total (503), and gives them back once', () => {
    const limits = new UploadLimits(config);
    const a = limits.open(request(4 * MiB), 'a');
    expect(statusOf(() => limits.open(request(4 * MiB), 'a'))).toBe(429);
    const b = limits.open(request(4 * MiB), 'b');
    expect(statusOf(() => limits.open(request(4 * MiB), 'c'))).toBe(503);
    a.close();
    a.close();
    limits.open(request(4 * MiB), 'c').close();
    b.close();
  });

  it('counts a body without Content-Length as it arrives, refusing it past the cap', () => {
    const limits = new UploadLimits(config);
    const held = limits.open(request(4 * MiB), 'a');
    const growing = limits.open(request(), 'a');
    growing.count(MiB);
    growing.count(MiB);
    expect(statusOf(() => growing.count(1))).toBe(429);
    held.close();
    growing.close();
  });

  it('fails a body that sends nothing with 408, and not one the API is slow to read', async () => {
    const limits = new UploadLimits(config);
    const silent = request(10);
    const upload = limits.open(silent, 'a');
    const chunks = upload.chunks();
    await expect(chunks.next()).rejects.toBeInstanceOf(BodyStalledException);
    upload.close();

    // Bytes waiting unread in the request are the API's delay, not the client's.
    const unread = request(10);
    unread.write(Buffer.alloc(5));
    const reading = limits.open(unread, 'a');
    await new Promise((resolve) => setTimeout(resolve, 400));
    const first = await reading.chunks().next();
    expect(first.value).toHaveLength(5);
    reading.close();
  });
});
