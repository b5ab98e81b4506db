import {
  frameByteLength,
  inputChunkCount,
  maxOutputsOf,
  isVideoCodec,
  type Codec,
  type EncodeJobData,
  type JobEvent,
  type JobStatus,
  type JobTimings,
  type OutputInfo,
} from '../../../libs/contracts/src/index.js';
import type { Encoder, RawLayout } from '../../../libs/codecs/src/encoder.js';
import { decompressFrames } from '../../../libs/codecs/src/decompress.js';
import { decodeLz4BlockFrames } from '../../../libs/codecs/src/lz4-block.js';
import { EncodeAbortedError, isCodecError } from '../../../libs/codecs/src/errors.js';
import type { BufferPool } from '../../../libs/cluster/src/buffer-pool.js';
import { JobTimer } from './job-timer.js';

/**
 * An encode job's I/O, all the runner reads and writes: its input frames, its outputs, its record and its
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
  /** Removes the stored outputs of a job (at most one per frame). */
  /** Removes what outputs were stored, `count` at most. */
  deleteOutputs(jobId: string, count: number): Promise<void>;
  markActive(jobId: string, node: string, attempt: number, now: number): Promise<boolean>;
  /** False when the job is final already (cancelled, or finished by another run) or expired. */
  setProgress(jobId: string, progress: number): Promise<boolean>;
  addOutput(jobId: string, output: OutputInfo): Promise<boolean>;
  /** Completes the job and lists its outputs in one step; false when it was final already. */
  complete(jobId: string, now: number, timings?: JobTimings, outputs?: OutputInfo[]): Promise<boolean>;
  fail(jobId: string, error: string, now: number): Promise<boolean>;
  status(jobId: string): Promise<JobStatus | null>;
  emit(jobId: string, event: JobEvent): Promise<unknown>;
  /** Events in order, in one step. */
  emitAll(jobId: string, events: JobEvent[]): Promise<unknown>;
}

export interface EncoderCatalog {
  encoderFor(codec: Codec): Encoder | undefined;
}

/** Raised for work that no retry can fix (bad input, frames gone); the queue adapter maps it. */
export class PermanentJobError extends Error {}

/** The job turned final while this run was encoding it: cancelled by its client, or failed elsewhere. */
export class JobCancelledError extends PermanentJobError {}

/**
 * Whether a failure is final: the runner's own PermanentJobError, and codec errors that are not
 * retryable (UnsupportedInputError: corrupt or short input; InputTooLargeError: a decompression bomb
 * or more bytes than declared; UnsupportedCodecError). Encoder crashes and aborts may be retried.
 */
export function isPermanentFailure(error: unknown): error is Error {
  return error instanceof PermanentJobError || (isCodecError(error) && !error.retryable);
}

export interface RunContext {
  attempt: number;
  /**
   * Aborted when the job is cancelled (or the node gives it up): ffmpeg is killed at once; sharp, which
   * cannot be interrupted inside an operation, stops after the frame it is encoding.
   */
  signal?: AbortSignal;
}

const PROGRESS_EVERY_MS = 250;

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
    return decodeLz4BlockFrames(storage.readFrameValues(data.jobId, data.frames, arriving), frameBytes);
  if (!input.chunkBytes) throw new PermanentJobError(`${input.encoding} input has no chunk size`);
  const chunks = storage.readInputChunks(data.jobId, input.storedBytes, input.chunkBytes);
  return decompressFrames(chunks, input.encoding, frameBytes, data.frames);
}

export async function deleteJobInput(storage: EncodeJobIO, data: EncodeJobData): Promise<void> {
  if (data.input.encoding === 'identity' || data.input.encoding === 'lz4-block')
    await storage.deleteFrames(data.jobId, data.frames);
  else await storage.deleteInputChunks(data.jobId, inputChunkCount(data.input));
}

/** Encodes one job: frames from Redis in, outputs and events out. Idempotent per (job, output index). */
export class EncodeJobRunner {
  constructor(
    private readonly nodeName: string,
    private readonly storage: EncodeJobIO,
    private readonly catalog: EncoderCatalog,
    private readonly pool: BufferPool,
    private readonly now: () => number = Date.now,
    /** Monotonic milliseconds, for the job's timings. */
    private readonly clock: () => number = () => performance.now(),
  ) {}

  async run(data: EncodeJobData, context: RunContext): Promise<{ outputs: number; skipped?: boolean }> {
    const { jobId } = data;
    const startedAt = this.now();
    if (!(await this.storage.markActive(jobId, this.nodeName, context.attempt, startedAt))) {
      // Already finished by another run (or expired): nothing to redo.
      return { outputs: 0, skipped: true };
    }
    await this.storage.emit(jobId, { type: 'active', node: this.nodeName, attempt: context.attempt });

    const encoder = this.catalog.encoderFor(data.codec);
    if (!encoder) throw new PermanentJobError(`node ${this.nodeName} cannot encode ${data.codec}`);

    // Pub/sub (the node's cancel watch) may miss a cancellation; the record, seen on each progress
    // update, does not.
    const finalSeen = new AbortController();
    const signal = context.signal ? AbortSignal.any([context.signal, finalSeen.signal]) : finalSeen.signal;
    const progress = this.progressReporter(jobId, data.frames, () => finalSeen.abort(this.cancelled(jobId)));
    const timer = new JobTimer(startedAt - data.createdAt, this.clock);

    let outputs: OutputInfo[];
    try {
      outputs = await this.encode(data, encoder, timer, progress, signal);
      throwIfAborted(signal);
    } catch (error) {
      // ffmpeg killed by the abort fails with its own error: the abort's reason is the one to report.
      throw signal.aborted ? abortError(signal) : error;
    }

    // Outputs are listed and announced only with the completion: a job that ends failed (a bad frame
    // after good ones, a cancellation) never exposes part of its work.
    if (!(await this.storage.complete(jobId, this.now(), timer.timings(), outputs))) {
      if ((await this.storage.status(jobId)) !== 'completed') throw this.cancelled(jobId);
      // Another run finished it first (same output keys): its record and events stand.
      await this.deleteInput(data);
      return { outputs: 0, skipped: true };
    }
    // One round trip, however many outputs.
    await this.storage.emitAll(jobId, [
      ...outputs.map((output): JobEvent => ({ type: 'output', ...output })),
      { type: 'completed', outputs: outputs.length },
    ]);
    await this.deleteInput(data);
    return { outputs: outputs.length };
  }

  /**
   * Encodes and stores the outputs (not listed yet): images frame by frame, stopping between frames
   * once `signal` is aborted (sharp cannot be interrupted inside one); video in one ffmpeg run that the
   * abort kills.
   */
  private async encode(
    data: EncodeJobData,
    encoder: Encoder,
    timer: JobTimer,
    progress: (done: number) => Promise<void>,
    signal: AbortSignal,
  ): Promise<OutputInfo[]> {
    const { jobId } = data;
    const layout: RawLayout = { width: data.width, height: data.height, format: data.format };
    // ffmpeg's input stream reads ahead of what it has written to the pipe: video frames are not pooled.
    const frames = timer.frames(this.inputFrames(data, encoder.kind === 'image' ? this.pool : null));
    if (encoder.kind === 'image') {
      const outputs: OutputInfo[] = [];
      for await (const frame of frames) {
        throwIfAborted(signal);
        const encoded = await timer.encode(() => encoder.encode(frame, layout, data.settings));
        throwIfAborted(signal);
        const index = outputs.length;
        outputs.push(
          await timer.storeOutput(() => this.storeOutput(jobId, index, encoder.contentType, encoded)),
        );
        await progress(outputs.length);
      }
      return outputs;
    }
    if (!isVideoCodec(data.codec)) throw new PermanentJobError(`codec ${data.codec} is not a video codec`);
    const counted = countFrames(frames, (done) => void progress(done));
    const segment = await timer.encode(() =>
      encoder.encode(counted, data.frames, layout, data.settings, { signal }),
    );
    return [await timer.storeOutput(() => this.storeOutput(jobId, 0, encoder.contentType, segment))];
  }

  private cancelled(jobId: string): JobCancelledError {
    return new JobCancelledError(`job ${jobId} was cancelled while node ${this.nodeName} encoded it`);
  }

  private inputFrames(data: EncodeJobData, pool: BufferPool | null): AsyncIterable<Buffer> {
    return readJobInput(this.storage, data, pool);
  }

  private deleteInput(data: EncodeJobData): Promise<void> {
    return deleteJobInput(this.storage, data);
  }

  /**
   * Records the final failure: the job's status says why, and clients get a `failed` event. The input
   * and any outputs stored before the failure go (unless another run completed the job: then they
   * are its outputs).
   */
  async fail(data: EncodeJobData, reason: string): Promise<void> {
    // The input first: nothing will read it again, and a client that sees `failed` finds it gone.
    await this.deleteInput(data);
    if (await this.storage.fail(data.jobId, reason, this.now())) {
      await this.storage.emit(data.jobId, { type: 'failed', error: reason });
    }
    if ((await this.storage.status(data.jobId)) !== 'completed') {
      await this.storage.deleteOutputs(data.jobId, maxOutputsOf(data));
    }
  }

  /** Stores an output's bytes; it is listed on the job and announced only when the job completes. */
  private async storeOutput(
    jobId: string,
    index: number,
    contentType: string,
    data: Buffer,
  ): Promise<OutputInfo> {
    await this.storage.putOutput(jobId, index, data);
    return { index, contentType, bytes: data.length };
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

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortError(signal);
}

/** The abort's reason as the error to fail the attempt with (a cancellation is not retried). */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new EncodeAbortedError(`encode aborted: ${String(reason)}`);
}

async function* countFrames(
  frames: AsyncIterable<Buffer>,
  onFrame: (done: number) => void,
): AsyncGenerator<Buffer> {
  let done = 0;
  for await (const frame of frames) {
    yield frame;
    onFrame(++done);
  }
}
