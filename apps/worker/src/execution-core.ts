import {
  frameByteLength,
  inputChunkCount,
  maxOutputsOf,
  type EncodeJobData,
  type JobEvent,
  type JobStatus,
  type JobTimings,
  type OutputInfo,
} from '#contracts';
import type { RawLayout } from '#codecs/encoder.js';
import { decompressFrames } from '#codecs/decompress.js';
import { decodeLz4BlockFrames } from '#codecs/lz4-block.js';
import { EncodeAbortedError, isCodecError } from '#codecs/errors.js';
import type { BufferPool } from '#cluster/buffer-pool.js';
import { JobTimer } from './job-timer.js';

/**
 * The one place where the node runs a unit of work (a job, or a live stream's batch):
 * markActive -> encode (a strategy: image, video segment, live video) -> store outputs -> publish
 * (a publisher: the job's record and events, or the stream's log as well) -> delete the input.
 */

/**
 * An encode job's I/O, all the core reads and writes: its input frames, its outputs, its record and its
 * events (the cluster stores behind RedisEncodeJobIO; fakes in tests).
 */
export interface EncodeJobIO {
  /** `arriving`: the upload may still be going on (EncodeJobInput.arriving): wait for each frame. */
  readFrames(
    jobId: string,
    frameBytes: number,
    frames: number,
    pool: BufferPool | null,
    arriving?: boolean,
  ): AsyncIterable<Buffer>;
  deleteFrames(jobId: string, frames: number): Promise<void>;
  /** Each frame's stored value whole (an `lz4-block` upload's blocks), in order. */
  readFrameValues(jobId: string, frames: number, arriving?: boolean): AsyncIterable<Buffer>;
  /** The chunks of a compressed upload, in order. */
  readInputChunks(jobId: string, storedBytes: number, chunkBytes: number): AsyncIterable<Buffer>;
  deleteInputChunks(jobId: string, chunks: number): Promise<void>;
  putOutput(jobId: string, index: number, data: Buffer): Promise<void>;
  /** Removes what outputs were stored, `count` at most. */
  deleteOutputs(jobId: string, count: number): Promise<void>;
  /** `events` are logged in the same step, only when the job was not final. */
  markActive(
    jobId: string,
    node: string,
    attempt: number,
    now: number,
    events?: JobEvent[],
  ): Promise<boolean>;
  /** False when the job is final already (cancelled, or finished by another run) or expired. */
  setProgress(jobId: string, progress: number): Promise<boolean>;
  addOutput(jobId: string, output: OutputInfo): Promise<boolean>;
  /**
   * Completes the job, lists its outputs and logs `events` in one step; false when it was final
   * already (then nothing is logged).
   */
  complete(
    jobId: string,
    now: number,
    timings?: JobTimings,
    outputs?: OutputInfo[],
    events?: JobEvent[],
  ): Promise<boolean>;
  fail(jobId: string, error: string, now: number): Promise<boolean>;
  status(jobId: string): Promise<JobStatus | null>;
  emit(jobId: string, event: JobEvent): Promise<unknown>;
  /** Events in order, in one step. */
  emitAll(jobId: string, events: JobEvent[]): Promise<unknown>;
}

/** Raised for work that no retry can fix (bad input, frames gone); the queue adapter maps it. */
export class PermanentJobError extends Error {}

/** The job turned final while this run was encoding it: cancelled by its client, or failed elsewhere. */
export class JobCancelledError extends PermanentJobError {}

/**
 * Whether a failure is final: the core's own PermanentJobError, and codec errors that are not
 * retryable (UnsupportedInputError: corrupt or short input; InputTooLargeError: a decompression bomb
 * or more bytes than declared; UnsupportedCodecError). Encoder crashes and aborts may be retried.
 */
export function isPermanentFailure(error: unknown): error is Error {
  return error instanceof PermanentJobError || (isCodecError(error) && !error.retryable);
}

/**
 * A job's frames in order: raw frames as stored, or a compressed upload's chunks decompressed on the
 * fly. decompressFrames stops at the declared size (frames * width * height * bytes per pixel) before
 * allocating past it, and fails short or corrupt input, with errors isPermanentFailure knows.
 */
export function readJobInput(
  storage: EncodeJobIO,
  data: EncodeJobData,
  pool: BufferPool | null,
): AsyncIterable<Buffer> {
  const frameBytes = frameByteLength(data.width, data.height, data.format);
  const { input } = data;
  const arriving = input.arriving === true;
  if (input.encoding === 'identity')
    return storage.readFrames(data.jobId, frameBytes, data.frames, pool, arriving);
  if (input.encoding === 'lz4-block')
    return decodeLz4BlockFrames(
      storage.readFrameValues(data.jobId, data.frames, arriving),
      frameBytes,
      pool?.shared ? pool : undefined,
    );
  if (!input.chunkBytes) throw new PermanentJobError(`${input.encoding} input has no chunk size`);
  const chunks = storage.readInputChunks(data.jobId, input.storedBytes, input.chunkBytes);
  return decompressFrames(chunks, input.encoding, frameBytes, data.frames);
}

export async function deleteJobInput(storage: EncodeJobIO, data: EncodeJobData): Promise<void> {
  if (data.input.encoding === 'identity' || data.input.encoding === 'lz4-block')
    await storage.deleteFrames(data.jobId, data.frames);
  else await storage.deleteInputChunks(data.jobId, inputChunkCount(data.input));
}

export interface WorkUnit {
  data: EncodeJobData;
  attempt: number;
  /**
   * Aborted when the job is cancelled (or the node gives it up): ffmpeg is killed at once; sharp, which
   * cannot be interrupted inside an operation, stops after the frame it is encoding.
   */
  signal?: AbortSignal;
}

export interface UnitResult {
  outputs: number;
  skipped?: boolean;
}

/** What a strategy gets to encode one unit. */
export interface EncodeRun {
  data: EncodeJobData;
  layout: RawLayout;
  /**
   * The unit's frames in order, in pooled buffers: a frame's buffer is reused once the next frame is
   * asked for, so a strategy is done with it by then (sharp is; ffmpeg's stdin writes are awaited).
   */
  frames: AsyncIterable<Buffer>;
  /** The unit's signal, also aborted when a progress update finds the job final (cancelled). */
  signal: AbortSignal;
  timer: JobTimer;
  /** Frames done so far: a progress event, at most every 250 ms. */
  progress(done: number): Promise<void>;
  /** Stores one output's bytes under the job's id and `index`; listed and announced by the publisher. */
  store(index: number, contentType: string, data: Buffer): Promise<OutputInfo>;
}

/** How a unit's frames become stored outputs: images, one video segment, a live stream's packets. */
export interface EncodeStrategy<Output extends OutputInfo = OutputInfo> {
  encode(run: EncodeRun): Promise<Output[]>;
}

/** Where a unit's outputs go once they are stored: the job's record and events, a stream's log. */
export interface Publisher<Output extends OutputInfo = OutputInfo> {
  /** What to log as the unit turns active (in the same step as its record). */
  startEvents?(unit: WorkUnit): JobEvent[];
  /** Lists and announces the outputs and completes the unit; `skipped` when another run had. */
  publish(unit: WorkUnit, outputs: Output[], timings: JobTimings): Promise<UnitResult>;
}

const PROGRESS_EVERY_MS = 250;

export class ExecutionCore {
  constructor(
    private readonly nodeName: string,
    private readonly storage: EncodeJobIO,
    /** Frame buffers reused across units; null: a fresh buffer per frame. */
    private readonly pool: BufferPool | null,
    private readonly now: () => number = Date.now,
    /** Monotonic milliseconds, for the job's timings. */
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Runs one unit. Idempotent per (job, output index): a unit already final is skipped. */
  async run<Output extends OutputInfo>(
    unit: WorkUnit,
    strategy: EncodeStrategy<Output>,
    publisher: Publisher<Output>,
  ): Promise<UnitResult> {
    const { data } = unit;
    const { jobId } = data;
    const startedAt = this.now();
    const startEvents = publisher.startEvents?.(unit) ?? [];
    if (!(await this.storage.markActive(jobId, this.nodeName, unit.attempt, startedAt, startEvents))) {
      // Already finished by another run (or expired): nothing to redo.
      return { outputs: 0, skipped: true };
    }

    // Pub/sub (the node's cancel watch) may miss a cancellation; the record, seen on each progress
    // update, does not.
    const finalSeen = new AbortController();
    const signal = unit.signal ? AbortSignal.any([unit.signal, finalSeen.signal]) : finalSeen.signal;
    const timer = new JobTimer(startedAt - data.createdAt, this.clock);
    const run: EncodeRun = {
      data,
      layout: { width: data.width, height: data.height, format: data.format },
      frames: timer.frames(readJobInput(this.storage, data, this.pool)),
      signal,
      timer,
      progress: this.progressReporter(jobId, data.frames, () =>
        finalSeen.abort(cancelledError(jobId, this.nodeName)),
      ),
      store: (index, contentType, bytes) =>
        timer.storeOutput(async () => {
          await this.storage.putOutput(jobId, index, bytes);
          return { index, contentType, bytes: bytes.length };
        }),
    };

    let outputs: Output[];
    try {
      outputs = await strategy.encode(run);
      throwIfAborted(signal);
    } catch (error) {
      // ffmpeg killed by the abort fails with its own error: the abort's reason is the one to report.
      throw signal.aborted ? abortError(signal) : error;
    }
    const result = await publisher.publish(unit, outputs, timer.timings());
    await deleteJobInput(this.storage, data);
    return result;
  }

  /**
   * Records the final failure: the job's status says why, and clients get a `failed` event. The input
   * and any outputs stored before the failure go (unless another run completed the job: then they
   * are its outputs).
   */
  async fail(data: EncodeJobData, reason: string): Promise<void> {
    // The input first: nothing will read it again, and a client that sees `failed` finds it gone.
    await deleteJobInput(this.storage, data);
    if (await this.storage.fail(data.jobId, reason, this.now())) {
      await this.storage.emit(data.jobId, { type: 'failed', error: reason });
    }
    if ((await this.storage.status(data.jobId)) !== 'completed') {
      await this.storage.deleteOutputs(data.jobId, maxOutputsOf(data));
    }
  }

  /** Progress updates, at most every PROGRESS_EVERY_MS; `onFinal` when the record says the job is over. */
  private progressReporter(
    jobId: string,
    total: number,
    onFinal: () => void,
  ): (done: number) => Promise<void> {
    let lastAt = 0;
    return async (done) => {
      const at = this.now();
      // The last frame's update would be followed at once by the completion, which checks the record too.
      if (done >= total || at - lastAt < PROGRESS_EVERY_MS) return;
      lastAt = at;
      const progress = done / total;
      if (!(await this.storage.setProgress(jobId, progress))) {
        onFinal();
        return;
      }
      await this.storage.emit(jobId, { type: 'progress', progress, framesDone: done });
    };
  }
}

/**
 * A job's own publisher: `active` with its record's start; at the end its record completes, lists its
 * outputs and logs the `output` events and `completed`, in one step. A job that ends failed (a bad frame after good
 * ones, a cancellation) never exposes part of its work.
 */
export class JobPublisher implements Publisher {
  constructor(
    private readonly nodeName: string,
    private readonly storage: EncodeJobIO,
    private readonly now: () => number = Date.now,
  ) {}

  startEvents(unit: WorkUnit): JobEvent[] {
    return [{ type: 'active', node: this.nodeName, attempt: unit.attempt }];
  }

  async publish(unit: WorkUnit, outputs: OutputInfo[], timings: JobTimings): Promise<UnitResult> {
    const { jobId } = unit.data;
    // The record completes and the events go out in one step, however many outputs.
    const events: JobEvent[] = [
      ...outputs.map((output): JobEvent => ({ type: 'output', ...output })),
      { type: 'completed', outputs: outputs.length },
    ];
    if (!(await this.storage.complete(jobId, this.now(), timings, outputs, events))) {
      if ((await this.storage.status(jobId)) !== 'completed') throw cancelledError(jobId, this.nodeName);
      // Another run finished it first (same output keys): its record and events stand.
      return { outputs: 0, skipped: true };
    }
    return { outputs: outputs.length };
  }
}

export function cancelledError(jobId: string, nodeName: string): JobCancelledError {
  return new JobCancelledError(`job ${jobId} was cancelled while node ${nodeName} encoded it`);
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortError(signal);
}

/** The abort's reason as the error to fail the attempt with (a cancellation is not retried). */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new EncodeAbortedError(`encode aborted: ${String(reason)}`);
}
