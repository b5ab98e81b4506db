import { compressSync } from 'lz4-napi';
import { InputTooLargeError, UnsupportedInputError } from './errors.js';
import {
  decodeLz4BlockFrames,
  encodeLz4BlockBody,
  lz4BlockPieces,
  maxLz4BlockValue,
  type ValuePiece,
} from './lz4-block.js';

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
