import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import {
  decompressChunks,
  decompressFrames,
  decompressToBuffer,
  parseContentEncoding,
  splitFrames,
} from './decompress.js';
import { InputTooLargeError, UnsupportedInputError } from './errors.js';
import { compressLz4Frame, decodeLz4Block, encodeLz4Block } from './lz4.js';
import { mulberry32, syntheticFrame } from './testing/synthetic-frames.js';
import { xxhash32 } from './xxhash32.js';

const FIXTURES = path.join(import.meta.dirname, 'testing', 'fixtures');
const hasLz4Cli = spawnSync('lz4', ['--version']).status === 0;

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

describe('xxhash32', () => {
  it.each([
    ['', 0x02cc5d05],
    ['a', 0x550d7456],
    ['abc', 0x32d153ff],
    ['Nobody inspects the spammish repetition', 0xe2293b2f],
  ])('hashes %j to the reference value', (text, expected) => {
    expect(xxhash32(Buffer.from(text))).toBe(expected);
  });
});

describe('lz4 block codec', () => {
  it('round-trips and actually compresses desktop content', () => {
    const block = encodeLz4Block(frames[0]);
    expect(block.length).toBeLessThan(frames[0].length / 2);
    const out = Buffer.alloc(frames[0].length);
    expect(decodeLz4Block(block, 0, block.length, out, 0, out.length)).toBe(out.length);
    expect(out.equals(frames[0])).toBe(true);
  });

  it('round-trips short, empty and incompressible inputs', () => {
    const random = mulberry32(3);
    for (const input of [
      Buffer.alloc(0),
      Buffer.from('abc'),
      Buffer.from(Array.from({ length: 5000 }, () => random() * 256)),
    ]) {
      const block = encodeLz4Block(input);
      const out = Buffer.alloc(input.length);
      expect(decodeLz4Block(block, 0, block.length, out, 0, out.length)).toBe(input.length);
      expect(out.equals(input)).toBe(true);
    }
  });
});

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

  (hasLz4Cli ? it : it.skip)('writes frames the lz4 CLI decodes', () => {
    const compressed = compressLz4Frame(raw, { blockMaxSize: 65536 });
    const decoded = execFileSync('lz4', ['-d', '-c'], { input: compressed, maxBuffer: 64 << 20 });
    expect(decoded.equals(raw)).toBe(true);
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
      ? compressLz4Frame(data, { blockMaxSize: 65536 })
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
    const frame = compressLz4Frame(Buffer.alloc(2 << 20));
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
    const frame = compressLz4Frame(Buffer.alloc(1 << 20), { contentSize: false, blockMaxSize: 65536 });
    const limit = 100_000;
    let produced = 0;
    const error = await (async () => {
      for await (const chunk of decompressChunks(chunked(frame, 1 << 16), 'lz4', limit))
        produced += chunk.length;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputTooLargeError);
    expect(produced).toBe(65536); // the first block fits; the second would pass the limit and is refused
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
