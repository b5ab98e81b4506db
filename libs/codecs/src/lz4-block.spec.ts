import { compressSync } from 'lz4-napi';
import { InputTooLargeError, UnsupportedInputError } from './errors.js';
import {
  decodeLz4BlockFrames,
  encodeLz4BlockBody,
  lz4BlockPieces,
  lz4LiteralBlockHeader,
  maxLz4BlockValue,
  stopLz4DecodeThreads,
  type ValuePiece,
} from './lz4-block.js';
import { isSharedBuffer, Lz4DecodeThreads } from './lz4-decode-threads.js';

async function* chunked(body: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < body.length; offset += size) yield body.subarray(offset, offset + size);
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of source) items.push(item);
  return items;
}

/** The values the pieces describe, assembled. */
function assemble(pieces: ValuePiece[]): Buffer[] {
  const values: Buffer[] = [];
  for (const { index, valueBytes, offset, data } of pieces) {
    values[index] ??= Buffer.alloc(valueBytes);
    data.copy(values[index], offset);
  }
  return values;
}

describe('lz4-block bodies', () => {
  const frameBytes = 4096;
  const frames = Buffer.concat(
    Array.from({ length: 3 }, (_, index) => Buffer.alloc(frameBytes, index * 40).fill(index, 0, 100)),
  );

  it.each([1, 3, 7, 4096, 1 << 20])(
    'splits into per-frame values whatever the chunking (%i-byte chunks), and decodes back',
    async (chunkBytes) => {
      const body = Buffer.concat(await encodeLz4BlockBody(frames, frameBytes));
      const values = assemble(await collect(lz4BlockPieces(chunked(body, chunkBytes), frameBytes, 3)));
      expect(values).toHaveLength(3);
      async function* each() {
        yield* values;
      }
      expect(Buffer.concat(await collect(decodeLz4BlockFrames(each(), frameBytes))).equals(frames)).toBe(
        true,
      );
    },
  );

  it('refuses a record whose declared size is not the frame size, before passing on its block', async () => {
    const body = Buffer.concat(await encodeLz4BlockBody(Buffer.alloc(frameBytes * 2), frameBytes * 2));
    const seen: ValuePiece[] = [];
    const error = await (async () => {
      for await (const piece of lz4BlockPieces(chunked(body, 16), frameBytes, 1)) seen.push(piece);
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnsupportedInputError);
    expect(seen).toEqual([]);
  });

  it('refuses records longer than LZ4 can make a frame, more frames than declared, and truncation', async () => {
    const one = Buffer.concat(await encodeLz4BlockBody(Buffer.alloc(frameBytes), frameBytes));
    const long = Buffer.alloc(8);
    long.writeUInt32LE(maxLz4BlockValue(frameBytes) + 1, 0);
    long.writeUInt32LE(frameBytes, 4);
    const cases: [Buffer, number, RegExp][] = [
      [long, 1, /record/],
      [Buffer.concat([one, one]), 1, /more than the 1 frames/],
      [one.subarray(0, one.length - 1), 1, /truncated/],
      [one, 2, /holds 1 frames/],
    ];
    for (const [body, count, message] of cases) {
      await expect(collect(lz4BlockPieces(chunked(body, 5), frameBytes, count))).rejects.toThrow(message);
    }
  });

  it('fails a block that decompresses past its declared size (InputTooLargeError) or short of it', async () => {
    const big = compressSync(Buffer.alloc(frameBytes * 2));
    big.writeUInt32LE(frameBytes, 0);
    const small = compressSync(Buffer.alloc(frameBytes - 1));
    small.writeUInt32LE(frameBytes, 0);
    async function* values(value: Buffer) {
      yield value;
    }
    await expect(collect(decodeLz4BlockFrames(values(big), frameBytes))).rejects.toBeInstanceOf(
      InputTooLargeError,
    );
    await expect(collect(decodeLz4BlockFrames(values(small), frameBytes))).rejects.toThrow(
      /decompresses to 4095 bytes/,
    );
  });
});

describe('lz4-block frames decompressed on threads into shared pooled buffers', () => {
  afterAll(() => stopLz4DecodeThreads());
  const frameBytes = 4096;
  const frames = Array.from({ length: 4 }, (_, index) =>
    Buffer.alloc(frameBytes, index * 50).fill(index, 0, 99),
  );

  /** A pool of SharedArrayBuffer-backed buffers that records what is out. */
  function sharedPool() {
    const free: Buffer[] = [];
    const out = new Set<Buffer>();
    return {
      out,
      acquire(size: number) {
        const buffer = free.pop() ?? Buffer.from(new SharedArrayBuffer(size));
        out.add(buffer);
        return buffer;
      },
      release(buffer: Buffer) {
        out.delete(buffer);
        free.push(buffer);
      },
    };
  }

  async function* values(...items: Buffer[]) {
    yield* items;
  }

  it('decodes every frame exactly into a pooled buffer, and gives each buffer back once the next is asked for', async () => {
    const pool = sharedPool();
    const seen: Buffer[] = [];
    for await (const frame of decodeLz4BlockFrames(
      values(...frames.map((f) => compressSync(f))),
      frameBytes,
      pool,
    )) {
      expect(isSharedBuffer(frame)).toBe(true);
      // The frame before this one is back in the pool; this one and the next (prefetched) are out.
      expect(pool.out.size).toBeLessThanOrEqual(2);
      seen.push(Buffer.from(frame));
    }
    expect(seen.map((frame, index) => frame.equals(frames[index]))).toEqual([true, true, true, true]);
    expect(pool.out.size).toBe(0);
  });

  it('fails a bomb (InputTooLargeError), a short block and a corrupt one as the in-process decoder does, and returns the buffers', async () => {
    const pool = sharedPool();
    const big = compressSync(Buffer.alloc(frameBytes * 2));
    big.writeUInt32LE(frameBytes, 0);
    const small = compressSync(Buffer.alloc(frameBytes - 1));
    small.writeUInt32LE(frameBytes, 0);
    const corrupt = Buffer.concat([compressSync(frames[1]).subarray(0, 4), Buffer.alloc(64, 0xff)]);
    await expect(collect(decodeLz4BlockFrames(values(big), frameBytes, pool))).rejects.toBeInstanceOf(
      InputTooLargeError,
    );
    await expect(collect(decodeLz4BlockFrames(values(small), frameBytes, pool))).rejects.toThrow(
      /decompresses to 4095 bytes/,
    );
    await expect(collect(decodeLz4BlockFrames(values(corrupt), frameBytes, pool))).rejects.toBeInstanceOf(
      UnsupportedInputError,
    );
    const undeclared = compressSync(frames[0]);
    undeclared.writeUInt32LE(frameBytes + 1, 0);
    await expect(collect(decodeLz4BlockFrames(values(undeclared), frameBytes, pool))).rejects.toThrow(
      /does not declare the frame's 4096 bytes/,
    );
    expect(pool.out.size).toBe(0);
  });

  it('refuses a target that other threads cannot write', async () => {
    const threads = new Lz4DecodeThreads(1);
    try {
      await expect(threads.decodeInto(compressSync(frames[0]), Buffer.alloc(frameBytes), 0)).rejects.toThrow(
        /shared buffer/,
      );
      const target = Buffer.from(new SharedArrayBuffer(frameBytes));
      await threads.decodeInto(compressSync(frames[2]), target, 0);
      expect(target.equals(frames[2])).toBe(true);
    } finally {
      await threads.close();
    }
  });
});

describe('LZ4 literal blocks (frames stored as they are)', () => {
  it.each([1, 4, 14, 15, 16, 269, 270, 271, 524, 525, 4096])(
    'a %i-byte frame behind its header is a value that decompresses to exactly the frame',
    async (frameBytes) => {
      const frame = Buffer.from(Array.from({ length: frameBytes }, (_, index) => (index * 131 + 7) % 256));
      const value = Buffer.concat([lz4LiteralBlockHeader(frameBytes), frame]);
      expect(value.length).toBeLessThanOrEqual(maxLz4BlockValue(frameBytes));
      async function* values() {
        yield value;
      }
      const [decoded] = await collect(decodeLz4BlockFrames(values(), frameBytes));
      expect(decoded.equals(frame)).toBe(true);
    },
  );
});
