import { readFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { xxh32 } from '@node-rs/xxhash';
import { compressSync } from 'lz4-napi';
import {
  decompressChunks,
  decompressFrames,
  decompressToBuffer,
  parseContentEncoding,
  splitFrames,
} from './decompress.js';
import { InputTooLargeError, UnsupportedInputError } from './errors.js';
import { compressLz4Frame } from './lz4.js';
import { mulberry32, syntheticFrame } from './testing/synthetic-frames.js';

const FIXTURES = path.join(import.meta.dirname, 'testing', 'fixtures');

async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of source) out.push(chunk);
  return out;
}

/** The plaintext of the fixtures made by `lz4 v1.9.4 -B4 [-BD|-BX] fixture.bin`. */
function fixturePlaintext(): Buffer {
  const random = mulberry32(7);
  const unit = Buffer.alloc(1000);
  for (let i = 0; i < unit.length; i++) unit[i] = Math.floor(random() * 256);
  const out = Buffer.alloc(150000);
  for (let i = 0; i < out.length; i++) out[i] = unit[i % 1000] ^ (i % 7919 === 0 ? 1 : 0);
  return out;
}

const frames = [0, 1, 2].map((i) =>
  syntheticFrame({ width: 160, height: 120, format: 'bgra', frameIndex: i }),
);
const raw = Buffer.concat(frames);
const frameSize = frames[0].length;

describe('lz4 frames', () => {
  it('decodes frames written by the lz4 CLI (linked blocks, content size and checksum)', async () => {
    const compressed = readFileSync(path.join(FIXTURES, 'linked-blocks.lz4'));
    expect(compressed[4] & 0x20).toBe(0); // really linked blocks
    const out = await decompressToBuffer(chunked(compressed, 333), 'lz4', 150000);
    expect(out.equals(fixturePlaintext())).toBe(true);
  });

  it('decodes frames with block checksums, and notices a flipped bit', async () => {
    const compressed = readFileSync(path.join(FIXTURES, 'block-checksums.lz4'));
    expect((await decompressToBuffer(compressed, 'lz4', 150000)).equals(fixturePlaintext())).toBe(true);
    const damaged = Buffer.from(compressed);
    damaged[200] ^= 0x10;
    await expect(decompressToBuffer(damaged, 'lz4', 150000)).rejects.toThrow(/checksum|corrupt/);
  });

  it('accepts concatenated frames and skippable frames', async () => {
    const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
    const input = Buffer.concat([compressLz4Frame(frames[0]), skippable, compressLz4Frame(frames[1])]);
    const out = await decompressToBuffer(input, 'lz4', frameSize * 2);
    expect(out.equals(Buffer.concat([frames[0], frames[1]]))).toBe(true);
  });

  it('refuses data that is not lz4', async () => {
    await expect(decompressToBuffer(Buffer.from('hello world'), 'lz4', 11)).rejects.toThrow(
      /not an lz4 frame/,
    );
  });
});

describe.each(['lz4', 'gzip', 'deflate'] as const)('%s uploads', (encoding) => {
  const compress = (data: Buffer): Buffer =>
    encoding === 'lz4'
      ? compressLz4Frame(data)
      : encoding === 'gzip'
        ? zlib.gzipSync(data)
        : zlib.deflateSync(data);

  it('round-trips into exactly-sized frames, whatever the chunking', async () => {
    const compressed = compress(raw);
    expect(compressed.length).toBeLessThan(raw.length / 2);
    for (const chunkSize of [1 + 7919, compressed.length]) {
      const out = await collect(decompressFrames(chunked(compressed, chunkSize), encoding, frameSize, 3));
      expect(out.map((f) => f.length)).toEqual([frameSize, frameSize, frameSize]);
      expect(Buffer.concat(out).equals(raw)).toBe(true);
    }
  });

  it('refuses a bomb before producing more than the declared size', async () => {
    const bomb = compress(Buffer.alloc(4 << 20)); // 4 MiB of zeros
    expect(bomb.length).toBeLessThan(1 << 15);
    const limit = 1 << 20;
    let produced = 0;
    const consume = async () => {
      for await (const chunk of decompressChunks(chunked(bomb, 4096), encoding, limit))
        produced += chunk.length;
    };
    const error = await consume().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputTooLargeError);
    expect(produced).toBeLessThanOrEqual(limit);
  });

  it('refuses a truncated upload', async () => {
    const compressed = compress(raw);
    const truncated = compressed.subarray(0, Math.floor(compressed.length * 0.6));
    const error = await decompressToBuffer(truncated, encoding, raw.length).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedInputError);
  });

  it('refuses an upload that decompresses to fewer bytes than declared', async () => {
    const error = await decompressToBuffer(compress(raw), encoding, raw.length + frameSize).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UnsupportedInputError);
    expect((error as Error).message).toMatch(/expected/);
  });
});

describe('lz4 bomb protection', () => {
  it('refuses a frame whose header declares more than expected, before decoding any block', async () => {
    // `lz4 -B4 --content-size` of 2 MiB of zeros: the header declares 2097152 bytes.
    const frame = readFileSync(path.join(FIXTURES, 'content-size.lz4'));
    expect((await decompressToBuffer(frame, 'lz4', 2 << 20)).equals(Buffer.alloc(2 << 20))).toBe(true);
    let pulled = 0;
    async function* counting(): AsyncGenerator<Buffer> {
      for await (const chunk of chunked(frame, 64)) {
        pulled += chunk.length;
        yield chunk;
      }
    }
    await expect(decompressToBuffer(counting(), 'lz4', 1024)).rejects.toBeInstanceOf(InputTooLargeError);
    expect(pulled).toBeLessThanOrEqual(64); // the descriptor is in the first chunk
  });

  it('refuses output past the limit in a frame without a content size, block by block', async () => {
    const frame = compressLz4Frame(Buffer.alloc(8 << 20)); // two blocks of 4 MiB
    const limit = 5 << 20;
    let produced = 0;
    const error = await (async () => {
      for await (const chunk of decompressChunks(chunked(frame, 1 << 16), 'lz4', limit))
        produced += chunk.length;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputTooLargeError);
    expect(produced).toBe(4 << 20); // the first block fits; the second would pass the limit and is refused
  });

  it('refuses a block that decodes past the maximum its frame declares', async () => {
    // A frame of 64 KiB blocks holding one block of 100000 bytes, header checksum and all.
    const descriptor = Buffer.from([0x60, 0x40]);
    const block = compressSync(Buffer.alloc(100_000, 1)).subarray(4); // lz4-napi prefixes the size
    const header = Buffer.alloc(4);
    header.writeUInt32LE(block.length);
    const frame = Buffer.concat([
      Buffer.from([0x04, 0x22, 0x4d, 0x18]),
      descriptor,
      Buffer.from([(xxh32(descriptor) >>> 8) & 0xff]),
      header,
      block,
      Buffer.alloc(4),
    ]);
    const error = await decompressToBuffer(frame, 'lz4', 1 << 20).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedInputError);
    expect((error as Error).message).toMatch(/block decodes past its maximum size/);
  });
});

describe('lz4 off the event loop', () => {
  it('lets other callbacks run while a frame is decompressed', async () => {
    const frame = compressLz4Frame(
      Buffer.concat(
        [0, 1, 2, 3].map((i) => syntheticFrame({ width: 640, height: 480, format: 'bgra', frameIndex: i })),
      ),
    );
    let ticks = 0;
    let ticking = true;
    const tick = () => {
      ticks++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    // A decoder on the event loop finishes a single-chunk input in microtasks, before any immediate runs.
    // Off the loop, each of the two 4 MiB blocks is a round trip through the thread pool, and the event
    // loop's check phase (immediates) runs between the first block's completion and the second's.
    const out = await decompressToBuffer(frame, 'lz4', 640 * 480 * 4 * 4);
    ticking = false;
    expect(out.length).toBe(640 * 480 * 4 * 4);
    expect(ticks).toBeGreaterThan(0);
  });
});

describe('identity uploads and helpers', () => {
  it('pass through when the size matches, and fail when it does not', async () => {
    expect((await decompressToBuffer(raw, 'identity', raw.length)).equals(raw)).toBe(true);
    await expect(decompressToBuffer(raw, 'identity', raw.length - 1)).rejects.toBeInstanceOf(
      InputTooLargeError,
    );
    await expect(
      collect(decompressFrames(chunked(raw, 1000), 'identity', frameSize, 4)),
    ).rejects.toBeInstanceOf(UnsupportedInputError);
  });

  it('splitFrames does not copy a chunk that is exactly one frame', async () => {
    const out = await collect(splitFrames(chunked(raw, frameSize), frameSize));
    expect(out[1].buffer).toBe(raw.buffer);
  });

  it('parses Content-Encoding headers', () => {
    expect(parseContentEncoding(undefined)).toBe('identity');
    expect(parseContentEncoding(' LZ4 ')).toBe('lz4');
    expect(parseContentEncoding('x-gzip')).toBe('gzip');
    expect(parseContentEncoding('deflate')).toBe('deflate');
    expect(parseContentEncoding('br')).toBeNull();
  });
});
