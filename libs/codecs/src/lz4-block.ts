import { compress, compressSync, uncompress } from 'lz4-napi';
import { UnsupportedInputError } from './errors.js';
import { Lz4DecodeThreads } from './lz4-decode-threads.js';
import {
  blockOf,
  checkDeclaredSize,
  decodedSizeError,
  decompressionError,
  SIZE_PREFIX_BYTES,
} from './lz4-block-checks.js';

/**
 * `Content-Encoding: lz4-block`: raw frames as one LZ4 block each, so that a node decompresses a frame
 * in one native call (lz4-napi, on libuv's thread pool) whose output is the very buffer the encoder
 * reads, and so that the API can check every frame's declared size before anything is queued.
 *
 * The body is one record per frame, in order:
 *   u32 LE  N, the length of what follows
 *   N bytes: u32 LE raw size (must be the frame's size), then one LZ4 block
 * The N bytes are Xpra's form (a live session's lz4 frames) and what lz4-napi's `compress` returns;
 * the API stores them as they are, one Redis value per frame, and a node hands the value to
 * `uncompress` unchanged.
 */

export const LZ4_BLOCK_ENCODING = 'lz4-block';
const RECORD_HEADER_BYTES = 4;

/** The most bytes LZ4 can turn `rawBytes` into (LZ4_compressBound). */
export function lz4BlockBound(rawBytes: number): number {
  return rawBytes + Math.floor(rawBytes / 255) + 16;
}

/** The longest record (size prefix and block) a frame of `frameBytes` may have. */
export function maxLz4BlockValue(frameBytes: number): number {
  return SIZE_PREFIX_BYTES + lz4BlockBound(frameBytes);
}

/**
 * The `lz4-block` body of `frames` (frame after frame, `frameBytes` each), compressed on libuv's
 * thread pool; as a list of buffers to send one after the other (record header, value, ...).
 */
export async function encodeLz4BlockBody(frames: Buffer, frameBytes: number): Promise<Buffer[]> {
  if (frameBytes < 1 || frames.length % frameBytes !== 0) {
    throw new RangeError(`${frames.length} bytes are not a whole number of ${frameBytes}-byte frames`);
  }
  const values = await Promise.all(
    Array.from({ length: frames.length / frameBytes }, (_, index) =>
      compress(frames.subarray(index * frameBytes, (index + 1) * frameBytes)),
    ),
  );
  return values.flatMap(recordOf);
}

/**
 * One frame as a stored `lz4-block` value (size prefix and block), compressed on libuv's thread pool:
 * what the API makes of a raw upload's frames, so that Redis and the node carry the block, not the frame.
 */
export function encodeLz4BlockValue(frame: Buffer): Promise<Buffer> {
  return compress(frame);
}

/**
 * What goes in front of `frameBytes` raw bytes to make them a stored `lz4-block` value without
 * compressing: the size prefix and the start of an LZ4 block that is one run of literals (its token,
 * then the run's length in 255s and a last byte). Header and frame together decompress to the frame with
 * one copy; the API stores frames that LZ4 cannot shrink this way, rather than paying for compression
 * that saves nothing (1080p noise: 33-36 ms a frame, and 0.4% bigger).
 */
export function lz4LiteralBlockHeader(frameBytes: number): Buffer {
  if (frameBytes < 15) {
    const short = Buffer.alloc(SIZE_PREFIX_BYTES + 1);
    short.writeUInt32LE(frameBytes, 0);
    short[SIZE_PREFIX_BYTES] = frameBytes << 4;
    return short;
  }
  const rest = frameBytes - 15;
  const header = Buffer.alloc(SIZE_PREFIX_BYTES + 1 + Math.floor(rest / 255) + 1, 255);
  header.writeUInt32LE(frameBytes, 0);
  header[SIZE_PREFIX_BYTES] = 0xf0;
  header[header.length - 1] = rest % 255;
  return header;
}

/** One frame's record of an `lz4-block` body (header, value), compressed on the calling thread. */
export function encodeLz4BlockRecordSync(frame: Buffer): Buffer[] {
  return recordOf(compressSync(frame));
}

function recordOf(value: Buffer): Buffer[] {
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  header.writeUInt32LE(value.length, 0);
  return [header, value];
}

/** A piece of one stored value: `data` goes at `offset` of value `index`, which is `valueBytes` long. */
export interface ValuePiece {
  index: number;
  valueBytes: number;
  offset: number;
  data: Buffer;
}

/**
 * Splits an `lz4-block` body into the pieces of its per-frame values as the chunks arrive (views of
 * the chunks, no copy but of the 8 header bytes), checking each record before a byte of its block is
 * passed on: its raw size must be `frameBytes` and its block no longer than LZ4 can make a frame
 * (UnsupportedInputError, a 400, otherwise); exactly `frames` records, the last one whole.
 */
export async function* lz4BlockPieces(
  body: AsyncIterable<Buffer>,
  frameBytes: number,
  frames: number,
): AsyncGenerator<ValuePiece> {
  const header = Buffer.alloc(RECORD_HEADER_BYTES + SIZE_PREFIX_BYTES);
  const maxValue = maxLz4BlockValue(frameBytes);
  let headerFilled = 0;
  let index = 0;
  let valueBytes = 0;
  let offset = 0;
  let inValue = false;
  for await (const chunk of body) {
    let at = 0;
    while (at < chunk.length) {
      if (!inValue) {
        if (index >= frames) {
          throw new UnsupportedInputError(
            `the lz4-block body holds more than the ${frames} frames the parameters declare`,
          );
        }
        const take = Math.min(header.length - headerFilled, chunk.length - at);
        chunk.copy(header, headerFilled, at, at + take);
        headerFilled += take;
        at += take;
        if (headerFilled < header.length) continue;
        valueBytes = header.readUInt32LE(0);
        const declared = header.readUInt32LE(RECORD_HEADER_BYTES);
        if (declared !== frameBytes) {
          throw new UnsupportedInputError(
            `frame ${index} of the lz4-block body declares ${declared} bytes, but the parameters make a frame ${frameBytes} bytes (width * height * bytes per pixel)`,
          );
        }
        if (valueBytes <= SIZE_PREFIX_BYTES || valueBytes > maxValue) {
          throw new UnsupportedInputError(
            `frame ${index} of the lz4-block body is a ${valueBytes}-byte record; a ${frameBytes}-byte frame's record (size prefix and LZ4 block) is 5 to ${maxValue} bytes`,
          );
        }
        yield { index, valueBytes, offset: 0, data: Buffer.from(header.subarray(RECORD_HEADER_BYTES)) };
        offset = SIZE_PREFIX_BYTES;
        headerFilled = 0;
        inValue = true;
        continue;
      }
      const take = Math.min(valueBytes - offset, chunk.length - at);
      yield { index, valueBytes, offset, data: chunk.subarray(at, at + take) };
      offset += take;
      at += take;
      if (offset === valueBytes) {
        inValue = false;
        index++;
      }
    }
  }
  if (inValue || headerFilled > 0) {
    throw new UnsupportedInputError(
      `the lz4-block body is truncated: it ends inside frame ${index} (${frames} declared)`,
    );
  }
  if (index < frames) {
    throw new UnsupportedInputError(
      `the lz4-block body holds ${index} frames; the parameters declare ${frames}`,
    );
  }
}

/**
 * Decompresses one stored value (size prefix and block) off the event loop into a fresh buffer of
 * exactly `frameBytes`, the frame the encoder reads. A block that would decompress to more than it
 * declares fails with InputTooLargeError before anything past the declared size is written; one
 * that decompresses to less, or is corrupt, with UnsupportedInputError.
 */
export async function decodeLz4BlockValue(value: Buffer, frameBytes: number, index: number): Promise<Buffer> {
  const what = blockOf(index);
  checkDeclaredSize(value, frameBytes, what);
  let frame: Buffer;
  try {
    frame = await uncompress(value);
  } catch (error) {
    throw decompressionError((error as Error).message, frameBytes, what, error);
  }
  if (frame.length !== frameBytes) throw decodedSizeError(frame.length, frameBytes, what);
  return frame;
}

/** Frame buffers to decompress into, each reused once the consumer has moved on (the node's pool). */
export interface FrameBuffers {
  acquire(size: number): Buffer;
  release(buffer: Buffer): void;
}

let decodeThreads: Lz4DecodeThreads | undefined;

/** The process's LZ4 decoding threads, started at their first use. */
function sharedDecodeThreads(): Lz4DecodeThreads {
  decodeThreads ??= new Lz4DecodeThreads(2);
  return decodeThreads;
}

/** Stops the process's LZ4 decoding threads (a node that shuts down; a test file that used them). */
export async function stopLz4DecodeThreads(): Promise<void> {
  const threads = decodeThreads;
  decodeThreads = undefined;
  await threads?.close();
}

/**
 * The frames of stored `lz4-block` values, in order: each value is decompressed while the consumer
 * still works on the frame before it. With `shared` buffers (SharedArrayBuffer-backed, from the
 * node's pool), on the process's LZ4 threads into a pooled buffer that goes back to the pool when the
 * consumer asks for the next frame (so the consumer must be done with it by then, as with
 * FrameStore.readFrames); without, into a fresh buffer per frame on libuv's pool.
 */
export async function* decodeLz4BlockFrames(
  values: AsyncIterable<Buffer>,
  frameBytes: number,
  shared?: FrameBuffers,
): AsyncGenerator<Buffer> {
  const decode = (value: Buffer, index: number): Promise<Buffer> => {
    if (!shared) return decodeLz4BlockValue(value, frameBytes, index);
    const target = shared.acquire(frameBytes);
    return sharedDecodeThreads()
      .decodeInto(value, target, index)
      .then(
        () => target,
        (error: unknown) => {
          shared.release(target);
          throw error;
        },
      );
  };
  const release = (frame: Buffer) => shared?.release(frame);
  let index = 0;
  let pending: Promise<Buffer> | undefined;
  let current: Buffer | undefined;
  try {
    for await (const value of values) {
      const next = decode(value, index++);
      next.catch(() => undefined);
      if (pending) {
        current = await pending;
        yield current;
        release(current);
        current = undefined;
      }
      pending = next;
    }
    if (pending) {
      const last = pending;
      pending = undefined;
      current = await last;
      yield current;
      release(current);
      current = undefined;
    }
  } finally {
    if (current) release(current);
    await pending?.then(release, () => undefined);
  }
}
