import { InputTooLargeError, UnsupportedInputError } from './errors.js';
import { XxHash32, xxhash32 } from './xxhash32.js';

/**
 * LZ4 frame format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md) in plain TypeScript:
 * a streaming decoder that never produces more than the caller's byte limit (it sizes each output
 * block by min(block maximum, bytes still allowed) and fails the moment a block would go past it),
 * and a simple compressor for tests and benchmarks. Interoperates with the `lz4` CLI and liblz4.
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

class BlockOverflow extends Error {}

function corrupt(detail: string): UnsupportedInputError {
  return new UnsupportedInputError(`corrupt lz4 data: ${detail}`);
}

/**
 * Decodes one LZ4 block from src[srcStart, srcEnd) into dst at dstStart, writing no further than dstLimit.
 * Matches may reach back to windowStart (data of earlier blocks for linked-block frames).
 * Returns the end offset in dst.
 */
export function decodeLz4Block(
  src: Uint8Array,
  srcStart: number,
  srcEnd: number,
  dst: Uint8Array,
  dstStart: number,
  dstLimit: number,
  windowStart = dstStart,
): number {
  let s = srcStart;
  let d = dstStart;
  for (;;) {
    if (s >= srcEnd) throw corrupt('block ends inside a sequence');
    const token = src[s++];
    let literalLength = token >>> 4;
    if (literalLength === 15) {
      let extra: number;
      do {
        if (s >= srcEnd) throw corrupt('block ends inside a literal length');
        extra = src[s++];
        literalLength += extra;
      } while (extra === 255);
    }
    if (s + literalLength > srcEnd) throw corrupt('literals run past the end of the block');
    if (d + literalLength > dstLimit) throw new BlockOverflow();
    if (literalLength < 32) {
      for (let i = 0; i < literalLength; i++) dst[d + i] = src[s + i];
    } else {
      dst.set(src.subarray(s, s + literalLength), d);
    }
    s += literalLength;
    d += literalLength;
    if (s === srcEnd) return d; // the last sequence has literals only

    if (s + 2 > srcEnd) throw corrupt('block ends inside a match offset');
    const offset = src[s] | (src[s + 1] << 8);
    s += 2;
    if (offset === 0 || d - offset < windowStart) throw corrupt('match offset points before the data');
    let matchLength = (token & 15) + 4;
    if ((token & 15) === 15) {
      let extra: number;
      do {
        if (s >= srcEnd) throw corrupt('block ends inside a match length');
        extra = src[s++];
        matchLength += extra;
      } while (extra === 255);
    }
    if (d + matchLength > dstLimit) throw new BlockOverflow();
    let m = d - offset;
    if (offset >= matchLength && matchLength >= 32) {
      dst.copyWithin(d, m, m + matchLength);
      d += matchLength;
    } else {
      // Overlapping copy: repeats the last `offset` bytes, byte by byte.
      const end = d + matchLength;
      while (d < end) dst[d++] = dst[m++];
    }
  }
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

  async read(bytes: number, what: string): Promise<Buffer> {
    if (!(await this.fill(bytes))) {
      throw new UnsupportedInputError(`lz4 input is truncated: it ends inside ${what}`);
    }
    const first = this.chunks[0];
    let piece: Buffer;
    if (first.length >= bytes) {
      piece = first.subarray(0, bytes);
      if (first.length === bytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(bytes);
    } else {
      piece = Buffer.allocUnsafe(bytes);
      let filled = 0;
      while (filled < bytes) {
        const chunk = this.chunks[0];
        const take = Math.min(chunk.length, bytes - filled);
        chunk.copy(piece, filled, 0, take);
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
  const rest = await reader.read(hasContentSize ? 9 : 1, 'a frame descriptor');
  const descriptor = Buffer.concat([head, rest.subarray(0, rest.length - 1)]);
  const headerChecksum = rest[rest.length - 1];
  if (((xxhash32(descriptor) >>> 8) & 0xff) !== headerChecksum)
    throw corrupt('frame header checksum mismatch');
  const blockMaxSize = BLOCK_MAX_SIZES[(blockDescriptor >> 4) & 7];
  if (!blockMaxSize) throw corrupt('invalid block maximum size');
  let contentSize: number | null = null;
  if (hasContentSize) {
    const size = rest.readBigUInt64LE(0);
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

function tooLarge(limit: number): InputTooLargeError {
  return new InputTooLargeError(`lz4 data decompresses to more than the ${limit} bytes expected`, limit);
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
      const contentHash = frame.contentChecksum ? new XxHash32() : null;
      let frameBytes = 0;
      let window: Buffer = Buffer.alloc(0);
      for (;;) {
        const blockHeader = (await reader.read(4, 'a block header')).readUInt32LE(0);
        if (blockHeader === 0) break; // end mark
        const stored = (blockHeader & 0x80000000) !== 0;
        const size = blockHeader & 0x7fffffff;
        if (size > frame.blockMaxSize) throw corrupt('block larger than the frame allows');
        const block = await reader.read(size, 'a block');
        if (frame.blockChecksum) {
          const checksum = (await reader.read(4, 'a block checksum')).readUInt32LE(0);
          if (xxhash32(block) !== checksum) throw corrupt('block checksum mismatch');
        }
        const allowed = maxOutputBytes - produced;
        let output: Buffer;
        if (stored) {
          if (size > allowed) throw tooLarge(maxOutputBytes);
          output = Buffer.from(block);
        } else {
          const capacity = Math.min(frame.blockMaxSize, allowed);
          const history = frame.independentBlocks ? 0 : window.length;
          const scratch = Buffer.allocUnsafe(history + capacity);
          if (history > 0) window.copy(scratch, 0);
          let end: number;
          try {
            end = decodeLz4Block(block, 0, block.length, scratch, history, history + capacity, 0);
          } catch (error) {
            if (error instanceof BlockOverflow) {
              throw capacity < frame.blockMaxSize
                ? tooLarge(maxOutputBytes)
                : corrupt('block decodes past its maximum size');
            }
            throw error;
          }
          output = scratch.subarray(history, end);
          if (!frame.independentBlocks) window = scratch.subarray(Math.max(0, end - WINDOW_SIZE), end);
        }
        if (stored && !frame.independentBlocks) {
          window = Buffer.concat([window, output]).subarray(-WINDOW_SIZE);
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

// ---------------------------------------------------------------------------------------------
// Compression (greedy single-probe matcher; for tests, benchmarks and clients of this library)

const MIN_MATCH = 4;
const LAST_LITERALS = 5;
const MATCH_FIND_LIMIT = 12;
const HASH_BITS = 16;

function writeLength(dst: Uint8Array, d: number, length: number): number {
  let left = length;
  while (left >= 255) {
    dst[d++] = 255;
    left -= 255;
  }
  dst[d++] = left;
  return d;
}

function emitSequence(
  src: Uint8Array,
  literalStart: number,
  literalEnd: number,
  dst: Uint8Array,
  d: number,
  offset: number,
  matchLength: number,
): number {
  const literalLength = literalEnd - literalStart;
  const tokenAt = d++;
  let token = (literalLength >= 15 ? 15 : literalLength) << 4;
  if (literalLength >= 15) d = writeLength(dst, d, literalLength - 15);
  dst.set(src.subarray(literalStart, literalEnd), d);
  d += literalLength;
  if (matchLength > 0) {
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
    const code = matchLength - MIN_MATCH;
    token |= code >= 15 ? 15 : code;
    if (code >= 15) d = writeLength(dst, d, code - 15);
  }
  dst[tokenAt] = token;
  return d;
}

/** Compresses one independent block; returns the compressed bytes (may be larger than the input). */
export function encodeLz4Block(src: Uint8Array): Buffer {
  const length = src.length;
  const dst = Buffer.allocUnsafe(length + Math.ceil(length / 255) + 16);
  let d = 0;
  let anchor = 0;
  if (length >= MATCH_FIND_LIMIT + 1) {
    const table = new Int32Array(1 << HASH_BITS).fill(-1);
    const matchLimit = length - LAST_LITERALS;
    const findLimit = length - MATCH_FIND_LIMIT;
    let s = 0;
    while (s < findLimit) {
      const sequence = src[s] | (src[s + 1] << 8) | (src[s + 2] << 16) | (src[s + 3] << 24);
      const hash = Math.imul(sequence, 2654435761) >>> (32 - HASH_BITS);
      const candidate = table[hash];
      table[hash] = s;
      if (
        candidate >= 0 &&
        s - candidate <= 65535 &&
        src[candidate] === src[s] &&
        src[candidate + 1] === src[s + 1] &&
        src[candidate + 2] === src[s + 2] &&
        src[candidate + 3] === src[s + 3]
      ) {
        let matchLength = MIN_MATCH;
        while (s + matchLength < matchLimit && src[candidate + matchLength] === src[s + matchLength])
          matchLength++;
        d = emitSequence(src, anchor, s, dst, d, s - candidate, matchLength);
        s += matchLength;
        anchor = s;
      } else {
        s++;
      }
    }
  }
  d = emitSequence(src, anchor, length, dst, d, 0, 0);
  return dst.subarray(0, d);
}

export interface Lz4FrameOptions {
  /** 64 KiB, 256 KiB, 1 MiB or 4 MiB (default 4 MiB, as the lz4 CLI). */
  blockMaxSize?: 65536 | 262144 | 1048576 | 4194304;
  /** Write the content size into the header (default true). */
  contentSize?: boolean;
  /** Append an xxHash32 of the content (default true). */
  contentChecksum?: boolean;
}

/** Compresses `data` into one LZ4 frame with independent blocks. */
export function compressLz4Frame(data: Uint8Array, options: Lz4FrameOptions = {}): Buffer {
  const blockMaxSize = options.blockMaxSize ?? 4 * 1024 * 1024;
  const blockId = Number(
    Object.keys(BLOCK_MAX_SIZES).find((id) => BLOCK_MAX_SIZES[Number(id)] === blockMaxSize),
  );
  if (!blockId) throw new RangeError(`unsupported lz4 block size ${blockMaxSize}`);
  const withContentSize = options.contentSize ?? true;
  const withChecksum = options.contentChecksum ?? true;
  const descriptor = Buffer.alloc(withContentSize ? 10 : 2);
  descriptor[0] = 0x40 | 0x20 | (withContentSize ? 0x08 : 0) | (withChecksum ? 0x04 : 0);
  descriptor[1] = blockId << 4;
  if (withContentSize) descriptor.writeBigUInt64LE(BigInt(data.length), 2);
  const parts: Buffer[] = [];
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(FRAME_MAGIC);
  parts.push(magic, descriptor, Buffer.from([(xxhash32(descriptor) >>> 8) & 0xff]));
  for (let offset = 0; offset < data.length; offset += blockMaxSize) {
    const block = data.subarray(offset, Math.min(data.length, offset + blockMaxSize));
    const compressed = encodeLz4Block(block);
    const header = Buffer.alloc(4);
    if (compressed.length < block.length) {
      header.writeUInt32LE(compressed.length);
      parts.push(header, compressed);
    } else {
      header.writeUInt32LE((block.length | 0x80000000) >>> 0);
      parts.push(header, Buffer.from(block));
    }
  }
  parts.push(Buffer.alloc(4)); // end mark
  if (withChecksum) {
    const checksum = Buffer.alloc(4);
    checksum.writeUInt32LE(xxhash32(data));
    parts.push(checksum);
  }
  return Buffer.concat(parts);
}
