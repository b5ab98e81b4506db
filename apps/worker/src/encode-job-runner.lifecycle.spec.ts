import type { EncodeJobData, JobEvent, JobStatus, OutputInfo } from '#contracts';
import type { ImageEncoder, VideoEncoder } from '#codecs/encoder.js';
import { EncodeAbortedError, UnsupportedInputError } from '#codecs/errors.js';
import { BufferPool } from '#cluster/buffer-pool.js';
import {
  EncodeJobRunner,
  JobCancelledError,
  isPermanentFailure,
  type EncodeJobIO,
} from './encode-job-runner.js';
import { encodeJobData } from '#contracts/testing/encode-job.js';
import { fakeVideoEncoder, RawFramesOnly } from './testing/fakes.js';

/** A job's record as JobStore keeps it: final states are final, outputs listed only on completion. */
class FakeRecordStorage extends RawFramesOnly implements EncodeJobIO {
  status_: JobStatus = 'queued';
  listed: OutputInfo[] = [];
  stored = new Map<number, Buffer>();
  events: JobEvent[] = [];
  /** What happened, in order: record changes, stored outputs and events. */
  log: string[] = [];

  constructor(private readonly frameCount: number) {
    super();
  }

  async *readFrames(_jobId: string, frameBytes: number) {
    for (let index = 0; index < this.frameCount; index++) yield Buffer.alloc(frameBytes, index);
  }
  async deleteFrames() {}
  async putOutput(_jobId: string, index: number, data: Buffer) {
    this.stored.set(index, data);
    this.log.push(`put ${index}`);
  }
  async deleteOutputs(_jobId: string, frames: number) {
    for (let index = 0; index < Math.max(1, frames); index++) this.stored.delete(index);
    this.log.push('delete outputs');
  }
  private final() {
    return this.status_ === 'completed' || this.status_ === 'failed';
  }
  async markActive(jobId: string, _node: string, _attempt: number, _now: number, events: JobEvent[] = []) {
    if (this.final()) return false;
    this.status_ = 'active';
    await this.emitAll(jobId, events);
    return true;
  }
  async setProgress() {
    return !this.final();
  }
  async addOutput() {
    return !this.final();
  }
  async complete(
    jobId: string,
    _now: number,
    _timings?: unknown,
    outputs: OutputInfo[] = [],
    events: JobEvent[] = [],
  ) {
    if (this.final()) return false;
    this.status_ = 'completed';
    this.listed = outputs;
    this.log.push(`complete ${outputs.length}`);
    await this.emitAll(jobId, events);
    return true;
  }
  async fail(_jobId: string, error: string) {
    if (this.final()) return false;
    this.status_ = 'failed';
    this.log.push(`fail ${error}`);
    return true;
  }
  async status() {
    return this.status_;
  }
  async emit(_jobId: string, event: JobEvent) {
    this.events.push(event);
    if (event.type !== 'progress') this.log.push(`event ${event.type}`);
    return null;
  }
  async emitAll(jobId: string, events: JobEvent[]) {
    for (const event of events) await this.emit(jobId, event);
  }
}

const WIDTH = 4;
const HEIGHT = 2;

function job(codec: EncodeJobData['codec'], frames: number): EncodeJobData {
  return encodeJobData({ codec, width: WIDTH, height: HEIGHT, frames });
}

function imageEncoder(onFrame: (index: number) => void | Promise<void> = () => undefined): ImageEncoder & {
  encoded: number;
} {
  const encoder = {
    kind: 'image' as const,
    codec: 'png' as const,
    contentType: 'image/png',
    encoded: 0,
    async encode() {
      await onFrame(encoder.encoded);
      encoder.encoded++;
      return Buffer.from('png');
    },
  };
  return encoder;
}

function runnerWith(storage: EncodeJobIO, encoder: ImageEncoder | VideoEncoder): EncodeJobRunner {
  // A second between frames: every frame is a progress update (they are at most 4 a second).
  let now = 0;
  return new EncodeJobRunner(
    'node-a',
    storage,
    { encoderFor: () => encoder },
    new BufferPool(0),
    () => (now += 1000),
  );
}

describe('EncodeJobRunner: outputs and the end of a job', () => {
  it('lists and announces the outputs only with the completion, all at once', async () => {
    const storage = new FakeRecordStorage(3);
    await expect(runnerWith(storage, imageEncoder()).run(job('png', 3), { attempt: 1 })).resolves.toEqual({
      outputs: 3,
    });
    expect(storage.log).toEqual([
      'event active',
      'put 0',
      'put 1',
      'put 2',
      'complete 3',
      'event output',
      'event output',
      'event output',
      'event completed',
    ]);
    expect(storage.listed.map((output) => output.index)).toEqual([0, 1, 2]);
  });

  it('a frame that fails after good ones: nothing listed or announced, and fail() removes what was stored', async () => {
    const storage = new FakeRecordStorage(3);
    const runner = runnerWith(
      storage,
      imageEncoder((index) => {
        if (index === 2) throw new UnsupportedInputError('frame 3 is corrupt');
      }),
    );
    const data = job('png', 3);
    await expect(runner.run(data, { attempt: 1 })).rejects.toThrow('frame 3 is corrupt');
    expect(storage.stored.size).toBe(2);
    await runner.fail(data, 'frame 3 is corrupt');
    expect(storage.status_).toBe('failed');
    expect(storage.listed).toEqual([]);
    expect(storage.stored.size).toBe(0);
    expect(storage.events.map((event) => event.type)).not.toContain('output');
    expect(storage.events.at(-1)).toEqual({ type: 'failed', error: 'frame 3 is corrupt' });
  });

  it('a cancellation signalled during a frame stops the job after that frame, as a permanent failure', async () => {
    const storage = new FakeRecordStorage(5);
    const cancel = new AbortController();
    const encoder = imageEncoder((index) => {
      if (index === 1) cancel.abort(new JobCancelledError('cancelled by the client'));
    });
    const error = await runnerWith(storage, encoder)
      .run(job('png', 5), { attempt: 1, signal: cancel.signal })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(JobCancelledError);
    expect(isPermanentFailure(error)).toBe(true);
    expect(encoder.encoded).toBe(2);
    expect(storage.status_).toBe('active');
    expect(storage.listed).toEqual([]);
  });

  it('a record cancelled behind its back (no signal) is seen at the next progress update', async () => {
    const storage = new FakeRecordStorage(5);
    const encoder = imageEncoder((index) => {
      if (index === 1) storage.status_ = 'failed';
    });
    const error = await runnerWith(storage, encoder)
      .run(job('png', 5), { attempt: 1 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(JobCancelledError);
    expect(encoder.encoded).toBe(2);
    expect(storage.events.map((event) => event.type)).toEqual(['active', 'progress']);
    expect(storage.listed).toEqual([]);
  });

  it('video: the abort reaches the encoder, and the cancellation (not the abort) is the reason', async () => {
    const storage = new FakeRecordStorage(3);
    const cancel = new AbortController();
    let sawSignal: AbortSignal | undefined;
    const encoder = fakeVideoEncoder({
      encode: (_frames, _count, _layout, _settings, options) =>
        new Promise((_resolve, reject) => {
          sawSignal = options?.signal;
          options?.signal?.addEventListener('abort', () =>
            reject(new EncodeAbortedError('ffmpeg encode aborted')),
          );
          setImmediate(() => cancel.abort(new JobCancelledError('cancelled by the client')));
        }),
    });
    const error = await runnerWith(storage, encoder)
      .run(job('h264', 3), { attempt: 1, signal: cancel.signal })
      .catch((caught: unknown) => caught);
    expect(sawSignal?.aborted).toBe(true);
    expect(error).toBeInstanceOf(JobCancelledError);
    expect(storage.log).toEqual(['event active']);
  });

  it('cancelled between the last frame and completion: not completed, and its outputs go', async () => {
    const storage = new FakeRecordStorage(2);
    const encoder = imageEncoder();
    const runner = runnerWith(storage, encoder);
    const complete = storage.complete.bind(storage);
    storage.complete = async (...args) => {
      storage.status_ = 'failed'; // the API's cancel got there first
      return complete(...args);
    };
    const data = job('png', 2);
    await expect(runner.run(data, { attempt: 1 })).rejects.toBeInstanceOf(JobCancelledError);
    await runner.fail(data, 'cancelled by the client');
    expect(storage.stored.size).toBe(0);
    expect(storage.listed).toEqual([]);
    // The last frame's progress is not sent: the completion follows at once (and checks the record).
    expect(storage.events.map((event) => event.type)).toEqual(['active', 'progress']);
  });

  it('video frames come in pooled buffers, now that each stdin write is awaited', async () => {
    const pools: (BufferPool | null)[] = [];
    const storage = new (class extends FakeRecordStorage {
      override readFrames(jobId: string, frameBytes: number, _frames?: number, pool?: BufferPool | null) {
        pools.push(pool ?? null);
        return super.readFrames(jobId, frameBytes);
      }
    })(3);
    const encoder = fakeVideoEncoder();
    const pool = new BufferPool(1 << 20);
    const runner = new EncodeJobRunner('node-a', storage, { encoderFor: () => encoder }, pool);
    expect(await runner.run(job('h264', 3), { attempt: 1 })).toEqual({ outputs: 1 });
    expect(pools).toEqual([pool]);
    expect(storage.log).toEqual(['event active', 'put 0', 'complete 1', 'event output', 'event completed']);
  });

  it('a job another run completed first keeps its outputs', async () => {
    const storage = new FakeRecordStorage(2);
    const runner = runnerWith(storage, imageEncoder());
    await runner.run(job('png', 2), { attempt: 1 });
    await runner.fail(job('png', 2), 'a late run failed');
    expect(storage.status_).toBe('completed');
    expect(storage.stored.size).toBe(2);
  });
});
