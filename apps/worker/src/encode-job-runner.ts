import {
  isVideoCodec,
  type Codec,
  type EncodeJobData,
  type JobEvent,
  type OutputInfo,
} from '../../../libs/contracts/src/index.js';
import type { Encoder, RawLayout } from '../../../libs/codecs/src/encoder.js';
import type { BufferPool } from '../../../libs/cluster/src/buffer-pool.js';

/** What the runner needs from Redis; the cluster stores implement it, tests pass fakes. */
export interface JobStorage {
  readFrames(jobId: string, frameBytes: number, frames: number, pool: BufferPool | null): AsyncIterable<Buffer>;
  deleteFrames(jobId: string, frames: number): Promise<void>;
  putOutput(jobId: string, index: number, data: Buffer): Promise<void>;
  markActive(jobId: string, node: string, attempt: number, now: number): Promise<boolean>;
  setProgress(jobId: string, progress: number): Promise<boolean>;
  addOutput(jobId: string, output: OutputInfo): Promise<boolean>;
  complete(jobId: string, now: number): Promise<boolean>;
  fail(jobId: string, error: string, now: number): Promise<boolean>;
  emit(jobId: string, event: JobEvent): Promise<unknown>;
}

export interface EncoderCatalog {
  encoderFor(codec: Codec): Encoder | undefined;
}

/** Raised for work that no retry can fix (bad input, frames gone); the queue adapter maps it. */
export class PermanentJobError extends Error {}

export interface RunContext {
  attempt: number;
  signal?: AbortSignal;
}

const PROGRESS_EVERY_MS = 250;

/** Encodes one job: frames from Redis in, outputs and events out. Idempotent per (job, output index). */
export class EncodeJobRunner {
  constructor(
    private readonly nodeName: string,
    private readonly storage: JobStorage,
    private readonly catalog: EncoderCatalog,
    private readonly pool: BufferPool,
    private readonly now: () => number = Date.now,
  ) {}

  async run(data: EncodeJobData, context: RunContext): Promise<{ outputs: number; skipped?: boolean }> {
    const { jobId } = data;
    if (!(await this.storage.markActive(jobId, this.nodeName, context.attempt, this.now()))) {
      // Already finished by another run (or expired): nothing to redo.
      return { outputs: 0, skipped: true };
    }
    await this.storage.emit(jobId, { type: 'active', node: this.nodeName, attempt: context.attempt });

    const encoder = this.catalog.encoderFor(data.codec);
    if (!encoder) throw new PermanentJobError(`node ${this.nodeName} cannot encode ${data.codec}`);
    if (data.input.encoding !== 'identity') {
      throw new PermanentJobError(`input encoding ${data.input.encoding} is not supported by this node`);
    }

    const layout: RawLayout = { width: data.width, height: data.height, format: data.format };
    const frameBytes = data.input.storedBytes / data.frames;
    // ffmpeg's input stream reads ahead of what it has written to the pipe: video frames are not pooled.
    const frames = this.storage.readFrames(jobId, frameBytes, data.frames, encoder.kind === 'image' ? this.pool : null);
    const progress = this.progressReporter(jobId, data.frames);

    let outputs: number;
    if (encoder.kind === 'image') {
      let index = 0;
      for await (const frame of frames) {
        const encoded = await encoder.encode(frame, layout, data.settings);
        await this.publishOutput(jobId, index, encoder.contentType, encoded);
        index++;
        await progress(index);
      }
      outputs = index;
    } else {
      if (!isVideoCodec(data.codec)) throw new PermanentJobError(`codec ${data.codec} is not a video codec`);
      const counted = countFrames(frames, (done) => void progress(done));
      const segment = await encoder.encode(counted, data.frames, layout, data.settings);
      await this.publishOutput(jobId, 0, encoder.contentType, segment);
      outputs = 1;
    }

    if (await this.storage.complete(jobId, this.now())) {
      await this.storage.emit(jobId, { type: 'completed', outputs });
    }
    await this.storage.deleteFrames(jobId, data.frames);
    return { outputs };
  }

  /** Records the final failure: the job's status says why, and clients get a `failed` event. */
  async fail(data: EncodeJobData, reason: string): Promise<void> {
    if (await this.storage.fail(data.jobId, reason, this.now())) {
      await this.storage.emit(data.jobId, { type: 'failed', error: reason });
    }
    await this.storage.deleteFrames(data.jobId, data.frames);
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
