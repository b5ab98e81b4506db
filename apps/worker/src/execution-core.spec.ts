import type { EncodeJobData, JobEvent, OutputInfo } from '#contracts';
import type { ImageEncoder } from '#codecs/encoder.js';
import { BufferPool } from '#cluster/buffer-pool.js';
import { ImageStrategy, VideoSegmentStrategy } from './encode-strategies.js';
import {
  ExecutionCore,
  JobPublisher,
  type EncodeJobIO,
  type EncodeStrategy,
  type Publisher,
} from './execution-core.js';
import { encodeJobData } from '#contracts/testing/encode-job.js';
import { fakeVideoEncoder, RawFramesOnly } from './testing/fakes.js';

/** Every call the core makes, in order. */
class LoggingIO extends RawFramesOnly implements EncodeJobIO {
  log: string[] = [];
  active = true;
  async *readFrames(_jobId: string, frameBytes: number, frames: number, pool: BufferPool | null) {
    this.log.push(`read ${frames}${pool ? ' pooled' : ''}`);
    for (let index = 0; index < frames; index++) yield Buffer.alloc(frameBytes, index);
  }
  async deleteFrames(_jobId: string, frames: number) {
    this.log.push(`delete input ${frames}`);
  }
  async putOutput(_jobId: string, index: number) {
    this.log.push(`put ${index}`);
  }
  async deleteOutputs() {}
  async markActive(_jobId: string, _node: string, _attempt: number, _now: number, events: JobEvent[] = []) {
    this.log.push('markActive');
    if (this.active) for (const event of events) await this.emit(_jobId, event);
    return this.active;
  }
  async setProgress() {
    return true;
  }
  async addOutput() {
    return true;
  }
  async complete(
    jobId: string,
    _now: number,
    _timings?: unknown,
    outputs: OutputInfo[] = [],
    events: JobEvent[] = [],
  ) {
    this.log.push(`complete ${outputs.length}`);
    await this.emitAll(jobId, events);
    return true;
  }
  async fail() {
    return true;
  }
  async status() {
    return 'active' as const;
  }
  async emit(_jobId: string, event: JobEvent) {
    if (event.type !== 'progress') this.log.push(`event ${event.type}`);
    return null;
  }
  async emitAll(jobId: string, events: JobEvent[]) {
    for (const event of events) await this.emit(jobId, event);
    return null;
  }
}

function job(codec: EncodeJobData['codec'], frames: number): EncodeJobData {
  return encodeJobData({ codec, frames });
}

const image: ImageEncoder = {
  kind: 'image',
  codec: 'png',
  contentType: 'image/png',
  encode: async () => Buffer.from('png'),
};

const video = fakeVideoEncoder();

/** A live-like strategy: one stored packet per frame, published to a log of its own. */
const packets: EncodeStrategy = {
  encode: async (run) => {
    const outputs: OutputInfo[] = [];
    for await (const frame of run.frames) outputs.push(await run.store(outputs.length, 'video/h264', frame));
    return outputs;
  },
};

function streamLog(io: LoggingIO): Publisher {
  return {
    publish: async (_unit, outputs) => {
      io.log.push(`commit ${outputs.length}`);
      return { outputs: outputs.length };
    },
  };
}

describe('ExecutionCore: one sequence for every strategy', () => {
  function setup() {
    const io = new LoggingIO();
    const core = new ExecutionCore('node-a', io, new BufferPool(1 << 16));
    return { io, core, jobs: new JobPublisher('node-a', io) };
  }

  it('image, video segment and live strategies: markActive -> encode and store -> publish -> delete input', async () => {
    const { io, core, jobs } = setup();
    expect(await core.run({ data: job('png', 2), attempt: 1 }, new ImageStrategy(image), jobs)).toEqual({
      outputs: 2,
    });
    const imageLog = io.log.splice(0);
    expect(
      await core.run({ data: job('h264', 3), attempt: 1 }, new VideoSegmentStrategy(video), jobs),
    ).toEqual({ outputs: 1 });
    const videoLog = io.log.splice(0);
    expect(await core.run({ data: job('h264', 2), attempt: 1 }, packets, streamLog(io))).toEqual({
      outputs: 2,
    });
    const liveLog = io.log.splice(0);
    expect({ imageLog, videoLog, liveLog }).toEqual({
      imageLog: [
        'markActive',
        'event active',
        'read 2 pooled',
        'put 0',
        'put 1',
        'complete 2',
        'event output',
        'event output',
        'event completed',
        'delete input 2',
      ],
      videoLog: [
        'markActive',
        'event active',
        'read 3 pooled',
        'put 0',
        'complete 1',
        'event output',
        'event completed',
        'delete input 3',
      ],
      liveLog: ['markActive', 'read 2 pooled', 'put 0', 'put 1', 'commit 2', 'delete input 2'],
    });
  });

  it('a unit that is not active any more is neither encoded nor published, and keeps its input', async () => {
    const { io, core, jobs } = setup();
    io.active = false;
    expect(await core.run({ data: job('png', 2), attempt: 2 }, new ImageStrategy(image), jobs)).toEqual({
      outputs: 0,
      skipped: true,
    });
    expect(io.log).toEqual(['markActive']);
  });

  it('a publisher that fails leaves the input for the retry', async () => {
    const { io, core } = setup();
    const failing: Publisher = {
      publish: () => Promise.reject(new Error('READONLY')),
    };
    await expect(core.run({ data: job('h264', 1), attempt: 1 }, packets, failing)).rejects.toThrow(
      'READONLY',
    );
    expect(io.log).toEqual(['markActive', 'read 1 pooled', 'put 0']);
  });
});
