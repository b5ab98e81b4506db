import type { JobEvent, JobStatus, JobTimings, OutputInfo } from '#contracts';
import type { BufferPool, EventLog, FrameStore, JobStore, KeySpace, OutputStore } from '#cluster';
import type { EncodeJobIO } from './encode-job-runner.js';

/** An encode job's I/O on the cluster stores in Redis (JobStore is one of them: the job's record). */
export class RedisEncodeJobIO implements EncodeJobIO {
  constructor(
    private readonly keys: KeySpace,
    private readonly frames: FrameStore,
    private readonly outputs: OutputStore,
    private readonly jobs: JobStore,
    private readonly events: EventLog,
  ) {}

  readFrames(
    jobId: string,
    frameBytes: number,
    frames: number,
    pool: BufferPool | null,
    arriving = false,
  ): AsyncIterable<Buffer> {
    return this.frames.readFrames(jobId, frameBytes, frames, pool, arriving);
  }
  deleteFrames(jobId: string, frames: number): Promise<void> {
    return this.frames.deleteFrames(jobId, frames);
  }
  readFrameValues(jobId: string, frames: number, arriving = false): AsyncIterable<Buffer> {
    return this.frames.readFrameValues(jobId, frames, arriving);
  }
  readInputChunks(jobId: string, storedBytes: number, chunkBytes: number): AsyncIterable<Buffer> {
    return this.frames.readInputChunks(jobId, storedBytes, chunkBytes);
  }
  deleteInputChunks(jobId: string, chunks: number): Promise<void> {
    return this.frames.deleteInputChunks(jobId, chunks);
  }
  putOutput(jobId: string, index: number, data: Buffer): Promise<void> {
    return this.outputs.put(jobId, index, data);
  }
  deleteOutputs(jobId: string, count: number): Promise<void> {
    return this.outputs.deleteAll(jobId, count);
  }
  markActive(
    jobId: string,
    node: string,
    attempt: number,
    now: number,
    events?: JobEvent[],
  ): Promise<boolean> {
    return this.jobs.markActive(jobId, node, attempt, now, events);
  }
  setProgress(jobId: string, progress: number): Promise<boolean> {
    return this.jobs.setProgress(jobId, progress);
  }
  addOutput(jobId: string, output: OutputInfo): Promise<boolean> {
    return this.jobs.addOutput(jobId, output);
  }
  complete(
    jobId: string,
    now: number,
    timings?: JobTimings,
    outputs?: OutputInfo[],
    events?: JobEvent[],
  ): Promise<boolean> {
    return this.jobs.complete(jobId, now, timings, outputs, events);
  }
  fail(jobId: string, error: string, now: number): Promise<boolean> {
    return this.jobs.fail(jobId, error, now);
  }
  status(jobId: string): Promise<JobStatus | null> {
    return this.jobs.status(jobId);
  }
  emit(jobId: string, event: JobEvent): Promise<unknown> {
    return this.events.append(jobId, event);
  }
  emitAll(jobId: string, events: JobEvent[]): Promise<unknown> {
    return this.events.appendAll(jobId, events);
  }
}
