import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { InputEncoding } from '#contracts';
import { InputTooLargeError, UnsupportedInputError } from './errors.js';
import { decompressLz4Frames } from './lz4.js';

/**
 * Decompression of raw-frame uploads (HTTP Content-Encoding lz4, gzip or deflate) with the declared
 * size as a hard limit: output past it fails with InputTooLargeError before it is allocated (lz4:
 * blocks are sized by the bytes still allowed; zlib: at most one 64 KiB chunk is inflated past the
 * limit and dropped), and output that ends short fails with UnsupportedInputError.
 */

export const INPUT_ENCODINGS: readonly InputEncoding[] = ['identity', 'lz4', 'lz4-block', 'gzip', 'deflate'];

/** Maps an HTTP Content-Encoding value to an input encoding, or null when it is not supported. */
export function parseContentEncoding(header: string | undefined | null): InputEncoding | null {
  const value = (header ?? '').trim().toLowerCase();
  if (value === '' || value === 'identity') return 'identity';
  if (value === 'lz4' || value === 'x-lz4') return 'lz4';
  if (value === 'lz4-block' || value === 'x-lz4-block') return 'lz4-block';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  if (value === 'deflate') return 'deflate';
  return null;
}

const ZLIB_CHUNK_SIZE = 64 * 1024;

async function* inflate(source: AsyncIterable<Buffer>, encoding: 'gzip' | 'deflate'): AsyncGenerator<Buffer> {
  const options = { chunkSize: ZLIB_CHUNK_SIZE };
  const inflater = encoding === 'gzip' ? zlib.createGunzip(options) : zlib.createInflate(options);
  const input = Readable.from(source, { objectMode: true, highWaterMark: 1 });
  input.on('error', (error) => inflater.destroy(error));
  input.pipe(inflater);
  try {
    // Inflating only as fast as this loop reads bounds memory: zlib pauses when its output is unread.
    for await (const chunk of inflater as AsyncIterable<Buffer>) yield chunk;
  } catch (error) {
    if (error instanceof UnsupportedInputError || error instanceof InputTooLargeError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const message = (error as Error).message;
    throw new UnsupportedInputError(
      code === 'Z_BUF_ERROR' || /unexpected end/i.test(message)
        ? `${encoding} input is truncated`
        : `invalid ${encoding} data: ${message}`,
      { cause: error },
    );
  } finally {
    input.destroy();
    inflater.destroy();
  }
}

function decoded(
  source: AsyncIterable<Buffer>,
  encoding: InputEncoding,
  limit: number,
): AsyncIterable<Buffer> {
  switch (encoding) {
    case 'identity':
      return source;
    case 'lz4':
      return decompressLz4Frames(source, limit);
    case 'gzip':
    case 'deflate':
      return inflate(source, encoding);
    case 'lz4-block':
      throw new UnsupportedInputError(
        'lz4-block input is stored frame by frame: decode it with decodeLz4BlockFrames',
      );
    default:
      throw new UnsupportedInputError(`unsupported content encoding '${String(encoding)}'`);
  }
}

/**
 * Decompresses `source` and yields the output in chunks, failing as soon as it would exceed
 * `expectedBytes` and at the end if it is short. Yielded chunks are never reused.
 */
export async function* decompressChunks(
  source: AsyncIterable<Buffer>,
  encoding: InputEncoding,
  expectedBytes: number,
): AsyncGenerator<Buffer> {
  let produced = 0;
  for await (const chunk of decoded(source, encoding, expectedBytes)) {
    if (chunk.length > expectedBytes - produced) {
      throw new InputTooLargeError(
        `${encoding === 'identity' ? 'input' : `${encoding} input decompresses to`} more than the ${expectedBytes} bytes expected`,
        expectedBytes,
      );
    }
    produced += chunk.length;
    if (chunk.length > 0) yield chunk;
  }
  if (produced !== expectedBytes) {
    throw new UnsupportedInputError(
      `${encoding === 'identity' ? 'input' : `${encoding} input decompresses to`} ${produced} bytes, ${expectedBytes} expected`,
    );
  }
}

/**
 * Regroups a byte stream into frames of exactly `frameSize` bytes. A chunk that holds a whole frame
 * at a frame boundary is passed on without a copy; otherwise each frame is assembled once.
 */
export async function* splitFrames(source: AsyncIterable<Buffer>, frameSize: number): AsyncGenerator<Buffer> {
  if (!Number.isInteger(frameSize) || frameSize < 1) throw new RangeError(`invalid frame size ${frameSize}`);
  let pending: Buffer | null = null;
  let filled = 0;
  for await (let chunk of source) {
    while (chunk.length > 0) {
      if (pending === null && chunk.length >= frameSize) {
        yield chunk.subarray(0, frameSize);
        chunk = chunk.subarray(frameSize);
        continue;
      }
      pending ??= Buffer.allocUnsafe(frameSize);
      const take = Math.min(frameSize - filled, chunk.length);
      chunk.copy(pending, filled, 0, take);
      filled += take;
      chunk = chunk.subarray(take);
      if (filled === frameSize) {
        yield pending;
        pending = null;
        filled = 0;
      }
    }
  }
  if (pending !== null) {
    throw new UnsupportedInputError(`input ends inside a frame (${filled} of ${frameSize} bytes)`);
  }
}

/**
 * Exactly `frameCount` raw frames of `frameSize` bytes out of a compressed upload, produced while
 * decompressing, so an encoder can start on the first frame before the last is inflated.
 */
export function decompressFrames(
  source: AsyncIterable<Buffer>,
  encoding: InputEncoding,
  frameSize: number,
  frameCount: number,
): AsyncGenerator<Buffer> {
  return splitFrames(decompressChunks(source, encoding, frameSize * frameCount), frameSize);
}

/** Decompresses into one buffer of exactly `expectedBytes`, allocated once up front. */
export async function decompressToBuffer(
  input: Buffer | AsyncIterable<Buffer>,
  encoding: InputEncoding,
  expectedBytes: number,
): Promise<Buffer> {
  const source = Buffer.isBuffer(input) ? singleChunk(input) : input;
  if (encoding === 'identity' && Buffer.isBuffer(input)) {
    if (input.length > expectedBytes) {
      throw new InputTooLargeError(`input is more than the ${expectedBytes} bytes expected`, expectedBytes);
    }
    if (input.length < expectedBytes) {
      throw new UnsupportedInputError(`input is ${input.length} bytes, ${expectedBytes} expected`);
    }
    return input;
  }
  const output = Buffer.allocUnsafe(expectedBytes);
  let offset = 0;
  for await (const chunk of decompressChunks(source, encoding, expectedBytes)) {
    chunk.copy(output, offset);
    offset += chunk.length;
  }
  return output;
}

async function* singleChunk(buffer: Buffer): AsyncGenerator<Buffer> {
  yield buffer;
}
