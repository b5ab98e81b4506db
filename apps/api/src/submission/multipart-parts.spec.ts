import { PassThrough } from 'node:stream';
import { HttpException } from '@nestjs/common';
import { multipartParts, type MultipartLimits, type MultipartPart } from './multipart-parts.js';

const BOUNDARY = 'test-boundary';
const limits: MultipartLimits = {
  maxBodyBytes: 1 << 20,
  maxFileBytes: 1000,
  maxFiles: 3,
  maxFields: 4,
  maxFieldBytes: 16,
};

type Part = { name: string; value: string } | { name: string; filename: string; data: Buffer };

function body(parts: Part[], end = true): Buffer {
  const pieces: Buffer[] = [];
  for (const part of parts) {
    const disposition =
      'filename' in part
        ? `form-data; name="${part.name}"; filename="${part.filename}"\r\nContent-Type: image/png`
        : `form-data; name="${part.name}"`;
    pieces.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n\r\n`));
    pieces.push('filename' in part ? part.data : Buffer.from(part.value), Buffer.from('\r\n'));
  }
  if (end) pieces.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(pieces);
}

function request(data: Buffer, pieceBytes = 64) {
  const stream = Object.assign(new PassThrough(), {
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
  });
  void (async () => {
    for (let offset = 0; offset < data.length; offset += pieceBytes) {
      if (!stream.write(data.subarray(offset, offset + pieceBytes))) {
        await new Promise((resolve) => stream.once('drain', resolve));
      }
    }
    stream.end();
  })();
  return stream;
}

async function collect(data: Buffer, custom: Partial<MultipartLimits> = {}): Promise<MultipartPart[]> {
  const parts: MultipartPart[] = [];
  for await (const part of multipartParts(request(data), { ...limits, ...custom })) parts.push(part);
  return parts;
}

async function refusal(promise: Promise<unknown>): Promise<{ status: number; message: string }> {
  const error = await promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(HttpException);
  const exception = error as HttpException;
  return { status: exception.getStatus(), message: exception.message };
}

describe('multipartParts', () => {
  const image = Buffer.alloc(600, 7);

  it('yields fields and whole files in the order they were sent', async () => {
    const parts = await collect(
      body([
        { name: 'codec', value: 'png' },
        { name: 'frame', filename: 'a.png', data: image },
        { name: 'quality', value: '90' },
        { name: 'frame', filename: 'b.png', data: Buffer.from('second') },
      ]),
    );
    expect(parts).toEqual([
      { kind: 'field', name: 'codec', value: 'png' },
      { kind: 'file', name: 'frame', filename: 'a.png', mimeType: 'image/png', data: image },
      { kind: 'field', name: 'quality', value: '90' },
      { kind: 'file', name: 'frame', filename: 'b.png', mimeType: 'image/png', data: Buffer.from('second') },
    ]);
  });

  it('a file over maxFileBytes gets 413', async () => {
    const oversized = body([{ name: 'frame', filename: 'big.png', data: Buffer.alloc(1001) }]);
    expect(await refusal(collect(oversized))).toEqual({
      status: 413,
      message: 'file part frame is larger than the limit of 1000 bytes',
    });
  });

  it('more files than maxFiles gets 413', async () => {
    const files = Array.from({ length: 4 }, (_, index) => ({
      name: 'frame',
      filename: `${index}.png`,
      data: Buffer.from('x'),
    }));
    const { status, message } = await refusal(collect(body(files)));
    expect(status).toBe(413);
    expect(message).toMatch(/more than 3 frame parts/);
  });

  it('a field value over maxFieldBytes gets 413', async () => {
    const { status, message } = await refusal(collect(body([{ name: 'accept', value: 'x'.repeat(17) }])));
    expect(status).toBe(413);
    expect(message).toMatch(/form field accept is longer than 16 bytes/);
  });

  it('a body over maxBodyBytes gets 413, even while a file is being read', async () => {
    const data = body([{ name: 'frame', filename: 'a.png', data: Buffer.alloc(900) }]);
    const { status, message } = await refusal(collect(data, { maxBodyBytes: 500 }));
    expect(status).toBe(413);
    expect(message).toMatch(/the body is larger than the limit of 500 bytes/);
  });

  it('a body that ends inside a part gets 400', async () => {
    const data = body([{ name: 'frame', filename: 'a.png', data: image }], false).subarray(0, 200);
    const { status, message } = await refusal(collect(data));
    expect(status).toBe(400);
    expect(message).toMatch(/malformed multipart\/form-data body/);
  });

  it('a content type without a boundary gets 400', async () => {
    const stream = Object.assign(new PassThrough(), { headers: { 'content-type': 'multipart/form-data' } });
    const { status, message } = await refusal(multipartParts(stream, limits).next());
    expect(status).toBe(400);
    expect(message).toMatch(/malformed multipart\/form-data body/);
  });

  it('lets inspectFile refuse a part from its first bytes, while the rest has not come', async () => {
    const head = body([{ name: 'frame', filename: 'a.png', data: Buffer.from('first bytes') }], false);
    const stream = Object.assign(new PassThrough(), {
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    });
    // The part's first bytes, and then nothing: the body never ends.
    stream.write(head.subarray(0, head.length - 2));
    const seen: string[] = [];
    const inspectFile = (name: string) => (piece: Buffer) => {
      seen.push(`${name}: ${piece.toString()}`);
      throw new HttpException('not an image', 400);
    };
    const { status, message } = await refusal(multipartParts(stream, { ...limits, inspectFile }).next());
    expect({ status, message, seen }).toEqual({
      status: 400,
      message: 'not an image',
      seen: ['frame: first bytes'],
    });
  });

  it('fails with the watch: its count may refuse, and a stall ends the upload', async () => {
    const data = body([{ name: 'frame', filename: 'a.png', data: image }]);
    const tooMuch = {
      count: () => {
        throw new HttpException('over the cap', 429);
      },
      onStall: () => () => undefined,
    };
    expect(await refusal(multipartParts(request(data), limits, tooMuch).next())).toEqual({
      status: 429,
      message: 'over the cap',
    });
    const stalled = {
      count: () => undefined,
      onStall: (listener: (error: HttpException) => void) => {
        setTimeout(() => listener(new HttpException('stalled', 408)), 10);
        return () => undefined;
      },
    };
    const silent = Object.assign(new PassThrough(), {
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    });
    expect(await refusal(multipartParts(silent, limits, stalled).next())).toEqual({
      status: 408,
      message: 'stalled',
    });
  });

  it('stops reading the request when the consumer stops early', async () => {
    const data = body([
      { name: 'frame', filename: 'a.png', data: image },
      { name: 'frame', filename: 'b.png', data: image },
    ]);
    const stream = request(data, 16);
    for await (const part of multipartParts(stream, limits)) {
      expect(part.kind).toBe('file');
      break;
    }
    expect(stream.listenerCount('data')).toBe(0);
  });
});
