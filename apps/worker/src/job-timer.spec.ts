import type { EncodeJobData, JobTimings } from '#contracts';
import type { ImageEncoder } from '#codecs/encoder.js';
import { BufferPool } from '#cluster/buffer-pool.js';
import { EncodeJobRunner, type EncodeJobIO } from './encode-job-runner.js';
import { JobTimer } from './job-timer.js';

/** A clock the test moves by hand. */
function manualClock() {
  let now = 0;
  return { read: () => now, advance: (ms: number) => (now += ms) };
}

describe('JobTimer', () => {
  it('adds up frame waits, encodes and output stores; rounds to 0.1 ms', async () => {
    const clock = manualClock();
    const timer = new JobTimer(12.345, clock.read);
    async function* source() {
      for (let i = 0; i < 3; i++) {
        clock.advance(2); // fetching a frame
        yield Buffer.alloc(4, i);
      }
      clock.advance(0.5); // finding out that there is no more
    }
    for await (const frame of timer.frames(source())) {
      await timer.encode(async () => clock.advance(10 + frame[0]));
      await timer.storeOutput(async () => clock.advance(1));
    }
    expect(timer.timings()).toEqual({ queueWaitMs: 12.3, fetchMs: 6.5, encodeMs: 33, storeOutputMs: 3 });
  });

  it('counts the time of failed work, and closes the source when the consumer stops early', async () => {
    const clock = manualClock();
    const timer = new JobTimer(-5, clock.read);
    let closed = false;
    async function* source() {
      try {
        for (;;) yield Buffer.alloc(1);
      } finally {
        closed = true;
      }
    }
    for await (const frame of timer.frames(source())) {
      expect(frame.length).toBe(1);
      break;
    }
    expect(closed).toBe(true);
    await expect(
      timer.encode(async () => {
        clock.advance(7);
        throw new Error('encoder crashed');
      }),
    ).rejects.toThrow('encoder crashed');
    expect(timer.timings()).toEqual({ queueWaitMs: 0, fetchMs: 0, encodeMs: 7, storeOutputMs: 0 });
  });
});

describe('EncodeJobRunner timings', () => {
  it('records queue wait, fetch, encode and output store on the completed job', async () => {
    const clock = manualClock();
    let completedWith: JobTimings | undefined;
    const storage: EncodeJobIO = {
      async *readFrames(_jobId, frameBytes, frames) {
        for (let i = 0; i < frames; i++) {
          clock.advance(3);
          yield Buffer.alloc(frameBytes);
        }
      },
      deleteFrames: async () => undefined,
      readInputChunks: () => {
        throw new Error('not a compressed upload');
      },
      readFrameValues: () => {
        throw new Error('not an lz4-block upload');
      },
      deleteInputChunks: async () => undefined,
      putOutput: async () => void clock.advance(2),
      deleteOutputs: async () => undefined,
      status: async () => 'completed',
      markActive: async () => true,
      setProgress: async () => true,
      addOutput: async () => true,
      complete: async (_jobId, _now, timings) => {
        completedWith = timings;
        return true;
      },
      fail: async () => true,
      emit: async () => undefined,
      emitAll: async () => undefined,
    };
    const encoder: ImageEncoder = {
      kind: 'image',
      codec: 'jpeg',
      contentType: 'image/jpeg',
      encode: async () => {
        clock.advance(20);
        return Buffer.from('jpeg');
      },
    };
    const runner = new EncodeJobRunner(
      'node-a',
      storage,
      { encoderFor: () => encoder },
      new BufferPool(0),
      () => 1_000_250,
      clock.read,
    );
    const data: EncodeJobData = {
      jobId: 'job-1',
      codec: 'jpeg',
      pool: 'cpu',
      width: 2,
      height: 2,
      format: 'rgba',
      frames: 2,
      settings: { quality: 80, speed: 80, fps: 30 },
      input: { encoding: 'identity', storedBytes: 32 },
      createdAt: 1_000_000,
    };
    await expect(runner.run(data, { attempt: 1 })).resolves.toEqual({ outputs: 2 });
    expect(completedWith).toEqual({ queueWaitMs: 250, fetchMs: 6, encodeMs: 40, storeOutputMs: 4 });
  });
});
