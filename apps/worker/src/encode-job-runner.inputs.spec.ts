import { gzipSync } from 'node:zlib';
import type { EncodeJobData, JobEvent } from '#contracts';
import type { ImageEncoder } from '#codecs/encoder.js';
import { EncoderFailedError, InputTooLargeError, UnsupportedInputError } from '#codecs/errors.js';
import { compressLz4Frame } from '#codecs/lz4.js';
import { BufferPool } from '#cluster/buffer-pool.js';
import {
  EncodeJobRunner,
  PermanentJobError,
  isPermanentFailure,
  type EncodeJobIO,
} from './encode-job-runner.js';
import { encodeJobData } from '#contracts/testing/encode-job.js';

/** The runner's input side: raw frames or compressed chunks in, frames to the encoder, cleanup after. */
describe('EncodeJobRunner inputs', () => {
  const width = 4;
  const height = 2;
  const frameBytes = width * height * 4;
  const frames = [Buffer.alloc(frameBytes, 1), Buffer.alloc(frameBytes, 2), Buffer.alloc(frameBytes, 3)];

  function split(body: Buffer, chunkBytes: number): Buffer[] {
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < body.length; offset += chunkBytes)
      chunks.push(body.subarray(offset, offset + chunkBytes));
    return chunks;
  }

  function setup(stored: { frames?: Buffer[]; chunks?: Buffer[]; values?: Buffer[] }) {
    const calls: string[] = [];
    const encoded: Buffer[] = [];
    const events: JobEvent[] = [];
    const storage = {
      async *readFrames(_jobId: string, size: number, count: number) {
        calls.push(`readFrames ${size} ${count}`);
        yield* stored.frames ?? [];
      },
      async *readFrameValues(_jobId: string, count: number) {
        calls.push(`readFrameValues ${count}`);
        yield* stored.values ?? [];
      },
      async *readInputChunks(_jobId: string, storedBytes: number, chunkBytes: number) {
        calls.push(`readInputChunks ${storedBytes} ${chunkBytes}`);
        yield* stored.chunks ?? [];
      },
      deleteFrames: async (_jobId: string, count: number) => void calls.push(`deleteFrames ${count}`),
      deleteInputChunks: async (_jobId: string, count: number) =>
        void calls.push(`deleteInputChunks ${count}`),
      putOutput: async () => undefined,
      deleteOutputs: async (_jobId: string, count: number) => void calls.push(`deleteOutputs ${count}`),
      status: async () => 'failed',
      markActive: async () => true,
      setProgress: async () => true,
      addOutput: async () => true,
      complete: async () => true,
      fail: async (_jobId: string, reason: string) => {
        calls.push(`fail ${reason}`);
        return true;
      },
      emit: async (_jobId: string, event: JobEvent) => void events.push(event),
      emitAll: async (_jobId: string, list: JobEvent[]) => void events.push(...list),
    } as unknown as EncodeJobIO;
    const encoder: ImageEncoder = {
      kind: 'image',
      codec: 'png',
      contentType: 'image/png',
      encode: async (frame) => {
        encoded.push(Buffer.from(frame));
        return Buffer.from('png');
      },
    };
    const runner = new EncodeJobRunner(
      'test-node',
      storage,
      { encoderFor: () => encoder },
      new BufferPool(0),
    );
    return { runner, calls, encoded, events };
  }

  function job(input: EncodeJobData['input'], count = frames.length): EncodeJobData {
    return encodeJobData({ width, height, frames: count, input });
  }

  it('reads raw frames as stored and deletes them after', async () => {
    const { runner, calls, encoded } = setup({ frames });
    await expect(
      runner.run(job({ encoding: 'identity', storedBytes: frameBytes * 3 }), { attempt: 1 }),
    ).resolves.toMatchObject({ outputs: 3 });
    expect(encoded).toEqual(frames);
    expect(calls).toEqual([`readFrames ${frameBytes} 3`, 'deleteFrames 3']);
  });

  it.each([
    ['lz4', compressLz4Frame(Buffer.concat(frames))],
    ['gzip', gzipSync(Buffer.concat(frames))],
  ] as const)('decompresses %s chunks into exact frames, then deletes the chunks', async (encoding, body) => {
    const chunkBytes = 7;
    const { runner, calls, encoded } = setup({ chunks: split(body, chunkBytes) });
    await runner.run(job({ encoding, storedBytes: body.length, chunkBytes }), { attempt: 1 });
    expect(encoded).toEqual(frames);
    expect(calls).toEqual([
      `readInputChunks ${body.length} ${chunkBytes}`,
      `deleteInputChunks ${Math.ceil(body.length / chunkBytes)}`,
    ]);
  });

  it('fails a bomb with InputTooLargeError before encoding more than was declared', async () => {
    const bomb = gzipSync(Buffer.alloc(1024 * 1024));
    const { runner, encoded } = setup({ chunks: [bomb] });
    const error = await runner
      .run(job({ encoding: 'gzip', storedBytes: bomb.length, chunkBytes: 1 << 20 }), { attempt: 1 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InputTooLargeError);
    expect((error as Error).message).toMatch(/gzip input decompresses to more than the 96 bytes expected/);
    expect(isPermanentFailure(error)).toBe(true);
    expect(encoded.length).toBeLessThanOrEqual(3);
  });

  it('fails input shorter than declared with UnsupportedInputError, a permanent failure', async () => {
    const body = compressLz4Frame(Buffer.concat(frames).subarray(0, frameBytes * 2 + 5));
    const { runner } = setup({ chunks: [body] });
    const error = await runner
      .run(job({ encoding: 'lz4', storedBytes: body.length, chunkBytes: 1 << 20 }), { attempt: 1 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnsupportedInputError);
    expect((error as Error).message).toMatch(/lz4 input decompresses to 69 bytes, 96 expected/);
    expect(isPermanentFailure(error)).toBe(true);
  });

  it('a final failure records the reason and deletes the chunks', async () => {
    const { runner, calls, events } = setup({});
    await runner.fail(job({ encoding: 'deflate', storedBytes: 2500, chunkBytes: 1000 }), 'bad input');
    expect(calls).toEqual(['deleteInputChunks 3', 'fail bad input', 'deleteOutputs 3']);
    expect(events).toEqual([{ type: 'failed', error: 'bad input' }]);
  });

  it('isPermanentFailure: bad input and refused work are final; encoder crashes are retried', () => {
    expect(isPermanentFailure(new PermanentJobError('x'))).toBe(true);
    expect(isPermanentFailure(new UnsupportedInputError('x'))).toBe(true);
    expect(isPermanentFailure(new InputTooLargeError('x', 1))).toBe(true);
    expect(isPermanentFailure(new EncoderFailedError('x', 'ffmpeg', ''))).toBe(false);
    expect(isPermanentFailure(new Error('Connection is closed'))).toBe(false);
  });
});
