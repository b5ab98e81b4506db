import { Xxh32, xxh32 } from '@node-rs/xxhash';
import { compressFrameSync, uncompress } from 'lz4-napi';
import { InputTooLargeError, UnsupportedInputError } from './errors.js';

/**
 * LZ4 frame format (lz4_Frame_format.md of the lz4 project) over the native block decoder of
 * `lz4-napi`. This file reads only the frame layer (headers, block sizes, checksums); each block is
 * decompressed on libuv's thread pool into a buffer of at most min(block maximum, bytes still
 * allowed), so a bomb fails the moment a block would pass the caller's limit, with nothing beyond it
 * allocated. `lz4-napi`'s own frame decoder is not used: it cannot bound its output, reads only the
 * first frame and accepts a frame without its end mark.
 */

const FRAME_MAGIC = 0x184d2204;
const LEGACY_MAGIC = 0x184c2102;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const WINDOW_SIZE = 64 * 1024;
const BLOCK_MAX_SIZES: Record<number, number> = {
  4: 64 * 1024,
  5: 256 * 1024,
  6: 1024 * 1024,
  7: 4 * 1024 * 1024,
};

function corrupt(detail: string): UnsupportedInputError {
  return new UnsupportedInputError(`corrupt lz4 data: ${detail}`);
}

function tooLarge(limit: number): InputTooLargeError {
  return new InputTooLargeError(`lz4 data decompresses to more than the ${limit} bytes expected`, limit);
}

/** Reads exactly-sized pieces out of an AsyncIterable of arbitrarily sized chunks. */
class ChunkReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  private available = 0;
  private exhausted = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private async fill(bytes: number): Promise<boolean> {
    while (this.available < bytes && !this.exhausted) {
      const next = await this.iterator.next();
      if (next.done) this.exhausted = true;
      else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.available += next.value.length;
      }
    }
    return this.available >= bytes;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /** The next `bytes` bytes, written into `into` at `at` (default: a view, or one fresh buffer). */
  async read(bytes: number, what: string, into?: Buffer, at = 0): Promise<Buffer> {
    if (!(await this.fill(bytes))) {
      throw new UnsupportedInputError(`lz4 input is truncated: it ends inside ${what}`);
    }
    const first = this.chunks[0];
    let piece: Buffer;
    if (into === undefined && first.length >= bytes) {
      piece = first.subarray(0, bytes);
      if (first.length === bytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(bytes);
    } else {
      piece = into ?? Buffer.allocUnsafe(bytes);
      let filled = 0;
      while (filled < bytes) {
        const chunk = this.chunks[0];
        const take = Math.min(chunk.length, bytes - filled);
        chunk.copy(piece, at + filled, 0, take);
        filled += take;
        if (take === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(take);
      }
    }
    this.available -= bytes;
    return piece;
  }

  async skip(bytes: number, what: string): Promise<void> {
    let left = bytes;
    while (left > 0) {
      const step = Math.min(left, WINDOW_SIZE);
      await this.read(step, what);
      left -= step;
    }
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

interface FrameDescriptor {
  independentBlocks: boolean;
  blockChecksum: boolean;
  contentChecksum: boolean;
  contentSize: number | null;
  blockMaxSize: number;
}

async function readFrameDescriptor(reader: ChunkReader): Promise<FrameDescriptor> {
  const head = await reader.read(2, 'a frame descriptor');
  const flags = head[0];
  const blockDescriptor = head[1];
  if (flags >> 6 !== 1) throw corrupt(`unsupported frame version ${flags >> 6}`);
  if (flags & 0x02 || blockDescriptor & 0x8f) throw corrupt('reserved bits are set in the frame descriptor');
  if (flags & 0x01) throw new UnsupportedInputError('lz4 frames with a dictionary ID are not supported');
  const hasContentSize = (flags & 0x08) !== 0;
  const descriptor = Buffer.allocUnsafe(hasContentSize ? 10 : 2);
  head.copy(descriptor);
  if (hasContentSize) await reader.read(8, 'a frame descriptor', descriptor, 2);
  const headerChecksum = (await reader.read(1, 'a frame descriptor'))[0];
  if (((xxh32(descriptor) >>> 8) & 0xff) !== headerChecksum) throw corrupt('frame header checksum mismatch');
  const blockMaxSize = BLOCK_MAX_SIZES[(blockDescriptor >> 4) & 7];
  if (!blockMaxSize) throw corrupt('invalid block maximum size');
  let contentSize: number | null = null;
  if (hasContentSize) {
    const size = descriptor.readBigUInt64LE(2);
    contentSize = size > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(size);
  }
  return {
    independentBlocks: (flags & 0x20) !== 0,
    blockChecksum: (flags & 0x10) !== 0,
    contentChecksum: (flags & 0x04) !== 0,
    contentSize,
    blockMaxSize,
  };
}

/**
 * Decompresses one block off the event loop into at most `capacity` bytes. lz4-napi's block format
 * starts with the decompressed size, which its decoder takes as the size of its output buffer and
 * never writes past: the block is prefixed with `capacity` instead.
 */
async function decodeBlock(
  reader: ChunkReader,
  size: number,
  capacity: number,
  history: Buffer | undefined,
): Promise<{ block: Buffer; output: Buffer } | 'overflow'> {
  const input = Buffer.allocUnsafe(4 + size);
  input.writeUInt32LE(capacity, 0);
  await reader.read(size, 'a block', input, 4);
  const block = input.subarray(4);
  try {
    return { block, output: await uncompress(input, history) };
  } catch (error) {
    const message = (error as Error).message;
    if (/output is too small/i.test(message)) return 'overflow';
    throw corrupt(message);
  }
}

/**
 * Decompresses an LZ4 frame stream (one or more concatenated frames, skippable frames ignored),
 * yielding each block's output as it is decoded. Fails with InputTooLargeError as soon as the
 * output would exceed `maxOutputBytes`, having allocated at most one block beyond what was produced
 * (and never more than the limit). Yielded buffers are not reused by the decoder.
 */
export async function* decompressLz4Frames(
  source: AsyncIterable<Buffer>,
  maxOutputBytes: number,
): AsyncGenerator<Buffer> {
  const reader = new ChunkReader(source);
  let produced = 0;
  let frames = 0;
  try {
    while (!(await reader.atEnd())) {
      const magic = (await reader.read(4, 'a frame magic number')).readUInt32LE(0);
      if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
        const size = (await reader.read(4, 'a skippable frame')).readUInt32LE(0);
        await reader.skip(size, 'a skippable frame');
        continue;
      }
      if (magic === LEGACY_MAGIC) throw new UnsupportedInputError('the legacy lz4 format is not supported');
      if (magic !== FRAME_MAGIC) {
        throw corrupt(frames === 0 ? 'not an lz4 frame (bad magic number)' : 'garbage after the last frame');
      }
      frames++;
      const frame = await readFrameDescriptor(reader);
      if (frame.contentSize !== null && frame.contentSize > maxOutputBytes - produced)
        throw tooLarge(maxOutputBytes);
      const contentHash = frame.contentChecksum ? new Xxh32() : null;
      let frameBytes = 0;
      // Linked blocks may copy from the last 64 KiB of the frame's output so far.
      let window: Buffer | undefined;
      for (;;) {
        const blockHeader = (await reader.read(4, 'a block header')).readUInt32LE(0);
        if (blockHeader === 0) break; // end mark
        const stored = (blockHeader & 0x80000000) !== 0;
        const size = blockHeader & 0x7fffffff;
        if (size > frame.blockMaxSize) throw corrupt('block larger than the frame allows');
        const allowed = maxOutputBytes - produced;
        let block: Buffer;
        let output: Buffer;
        if (stored) {
          if (size > allowed) throw tooLarge(maxOutputBytes);
          output = block = await reader.read(size, 'a block', Buffer.allocUnsafe(size));
        } else {
          const capacity = Math.min(frame.blockMaxSize, allowed);
          const decoded = await decodeBlock(reader, size, capacity, window);
          if (decoded === 'overflow') {
            throw capacity < frame.blockMaxSize
              ? tooLarge(maxOutputBytes)
              : corrupt('block decodes past its maximum size');
          }
          ({ block, output } = decoded);
        }
        if (frame.blockChecksum) {
          const checksum = (await reader.read(4, 'a block checksum')).readUInt32LE(0);
          if (xxh32(block) !== checksum) throw corrupt('block checksum mismatch');
        }
        if (!frame.independentBlocks) {
          window =
            output.length >= WINDOW_SIZE || window === undefined
              ? output.subarray(-WINDOW_SIZE)
              : Buffer.concat([window, output]).subarray(-WINDOW_SIZE);
        }
        produced += output.length;
        frameBytes += output.length;
        contentHash?.update(output);
        if (output.length > 0) yield output;
      }
      if (contentHash) {
        const checksum = (await reader.read(4, 'the content checksum')).readUInt32LE(0);
        if (contentHash.digest() !== checksum) throw corrupt('content checksum mismatch');
      }
      if (frame.contentSize !== null && frame.contentSize !== frameBytes) {
        throw corrupt(`frame declares ${frame.contentSize} bytes but holds ${frameBytes}`);
      }
    }
    if (frames === 0) throw new UnsupportedInputError('lz4 input is empty');
  } finally {
    await reader.close();
  }
}

export interface Lz4FrameOptions {
  /** Append an xxHash32 of the content (default true, as the lz4 CLI). */
  contentChecksum?: boolean;
  /** Append an xxHash32 to each block (default false). */
  blockChecksums?: boolean;
}

/**
 * Compresses `data` into one LZ4 frame (independent 4 MiB blocks, no content size), for tests,
 * benchmarks and clients of this library.
 */
export function compressLz4Frame(data: Uint8Array, options: Lz4FrameOptions = {}): Buffer {
  const buffer = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return compressFrameSync(buffer, {
    contentChecksum: options.contentChecksum ?? true,
    blockChecksums: options.blockChecksums ?? false,
  });
}
