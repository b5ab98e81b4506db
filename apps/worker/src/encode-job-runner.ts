import {
  frameByteLength,
  inputChunkCount,
  isVideoCodec,
  type Codec,
  type EncodeJobData,
  type JobEvent,
  type JobTimings,
  type OutputInfo,
} from '../../../libs/contracts/src/index.js';
import type { Encoder, RawLayout } from '../../../libs/codecs/src/encoder.js';
import { decompressFrames } from '../../../libs/codecs/src/decompress.js';
import { isCodecError } from '../../../libs/codecs/src/errors.js';
import type { BufferPool } from '../../../libs/cluster/src/buffer-pool.js';
import { JobTimer } from './job-timer.js';

/** What the runner needs from Redis; the cluster stores implement it, tests pass fakes. */
export interface JobStorage {
  readFrames(
    jobId: string,
    frameBytes: number,
    frames: number,
    pool: BufferPool | null,
  ): AsyncIterable<Buffer>;
  deleteFrames(jobId: string, frames: number): Promise<void>;
  /** The chunks of a compressed upload, in order. */
  readInputChunks(jobId: string, storedBytes: number, chunkBytes: number): AsyncIterable<Buffer>;
  deleteInputChunks(jobId: string, chunks: number): Promise<void>;
  putOutput(jobId: string, index: number, data: Buffer): Promise<void>;
  markActive(jobId: string, node: string, attempt: number, now: number): Promise<boolean>;
  setProgress(jobId: string, progress: number): Promise<boolean>;
  addOutput(jobId: string, output: OutputInfo): Promise<boolean>;
  complete(jobId: string, now: number, timings?: JobTimings): Promise<boolean>;
  fail(jobId: string, error: string, now: number): Promise<boolean>;
  emit(jobId: string, event: JobEvent): Promise<unknown>;
}

export interface EncoderCatalog {
  encoderFor(codec: Codec): Encoder | undefined;
}

/** Raised for work that no retry can fix (bad input, frames gone); the queue adapter maps it. */
export class PermanentJobError extends Error {}

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
  signal?: AbortSignal;
}

const PROGRESS_EVERY_MS = 250;

/**
 * A job's frames in order: raw frames as stored, or a compressed upload's chunks decompressed on the
 * fly. decompressFrames stops at the declared size (frames * width * height * bytes per pixel) before
 * allocating past it, and fails short or corrupt input, with errors isPermanentFailure knows.
 */
export function readJobInput(
  storage: JobStorage,
  data: EncodeJobData,
  pool: BufferPool | null,
): AsyncIterable<Buffer> {
  const frameBytes = frameByteLength(data.width, data.height, data.format);
  const { input } = data;
  if (input.encoding === 'identity') return storage.readFrames(data.jobId, frameBytes, data.frames, pool);
  if (!input.chunkBytes) throw new PermanentJobError(`${input.encoding} input has no chunk size`);
  const chunks = storage.readInputChunks(data.jobId, input.storedBytes, input.chunkBytes);
  return decompressFrames(chunks, input.encoding, frameBytes, data.frames);
}

export async function deleteJobInput(storage: JobStorage, data: EncodeJobData): Promise<void> {
  if (data.input.encoding === 'identity') await storage.deleteFrames(data.jobId, data.frames);
  else await storage.deleteInputChunks(data.jobId, inputChunkCount(data.input));
}

/** Encodes one job: frames from Redis in, outputs and events out. Idempotent per (job, output index). */
export class EncodeJobRunner {
  constructor(
    private readonly nodeName: string,
    private readonly storage: JobStorage,
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

    const layout: RawLayout = { width: data.width, height: data.height, format: data.format };
    // ffmpeg's input stream reads ahead of what it has written to the pipe: video frames are not pooled.
    const timer = new JobTimer(startedAt - data.createdAt, this.clock);
    const frames = timer.frames(this.inputFrames(data, encoder.kind === 'image' ? this.pool : null));
    const progress = this.progressReporter(jobId, data.frames);

    let outputs: number;
    if (encoder.kind === 'image') {
      let index = 0;
      for await (const frame of frames) {
        const encoded = await timer.encode(() => encoder.encode(frame, layout, data.settings));
        await timer.storeOutput(() => this.publishOutput(jobId, index, encoder.contentType, encoded));
        index++;
        await progress(index);
      }
      outputs = index;
    } else {
      if (!isVideoCodec(data.codec)) throw new PermanentJobError(`codec ${data.codec} is not a video codec`);
      const counted = countFrames(frames, (done) => void progress(done));
      const segment = await timer.encode(() => encoder.encode(counted, data.frames, layout, data.settings));
      await timer.storeOutput(() => this.publishOutput(jobId, 0, encoder.contentType, segment));
      outputs = 1;
    }

    if (await this.storage.complete(jobId, this.now(), timer.timings())) {
      await this.storage.emit(jobId, { type: 'completed', outputs });
    }
    await this.deleteInput(data);
    return { outputs };
  }

  private inputFrames(data: EncodeJobData, pool: BufferPool | null): AsyncIterable<Buffer> {
    return readJobInput(this.storage, data, pool);
  }

  private deleteInput(data: EncodeJobData): Promise<void> {
    return deleteJobInput(this.storage, data);
  }

  /** Records the final failure: the job's status says why, and clients get a `failed` event. */
  async fail(data: EncodeJobData, reason: string): Promise<void> {
    // The input first: nothing will read it again, and a client that sees `failed` finds it gone.
    await this.deleteInput(data);
    if (await this.storage.fail(data.jobId, reason, this.now())) {
      await this.storage.emit(data.jobId, { type: 'failed', error: reason });
    }
  }

  private async publishOutput(
    jobId: string,
    index: number,
    contentType: string,
    data: Buffer,
  ): Promise<void> {
    const output: OutputInfo = { index, contentType, bytes: data.length };
    await this.storage.putOutput(jobId, index, data);
    await this.storage.addOutput(jobId, output);
    await this.storage.emit(jobId, { type: 'output', ...output });
  }

  private progressReporter(jobId: string, total: number): (done: number) => Promise<void> {
    let lastAt = 0;
    return async (done) => {
      const at = this.now();
      if (done < total && at - lastAt < PROGRESS_EVERY_MS) return;
      lastAt = at;
      const progress = done / total;
      await this.storage.setProgress(jobId, progress);
      await this.storage.emit(jobId, { type: 'progress', progress, framesDone: done });
    };
  }
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
