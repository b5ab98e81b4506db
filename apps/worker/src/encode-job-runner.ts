import type { Codec, EncodeJobData } from '#contracts';
import type { Encoder } from '#codecs/encoder.js';
import type { BufferPool } from '#cluster/buffer-pool.js';
import { batchStrategyFor } from './encode-strategies.js';
import {
  ExecutionCore,
  JobPublisher,
  PermanentJobError,
  type EncodeJobIO,
  type UnitResult,
} from './execution-core.js';

export {
  deleteJobInput,
  isPermanentFailure,
  JobCancelledError,
  PermanentJobError,
  readJobInput,
  type EncodeJobIO,
} from './execution-core.js';

export interface EncoderCatalog {
  encoderFor(codec: Codec): Encoder | undefined;
}

export interface RunContext {
  attempt: number;
  /**
   * Aborted when the job is cancelled (or the node gives it up): ffmpeg is killed at once; sharp, which
   * cannot be interrupted inside an operation, stops after the frame it is encoding.
   */
  signal?: AbortSignal;
}

/**
 * Runs an encode job (not a live batch) on the ExecutionCore: the job's encoder as the strategy, its
 * own record and events as the publisher. Idempotent per (job, output index).
 */
export class EncodeJobRunner {
  private readonly core: ExecutionCore;
  private readonly publisher: JobPublisher;

  constructor(
    private readonly nodeName: string,
    storage: EncodeJobIO,
    private readonly catalog: EncoderCatalog,
    pool: BufferPool,
    now: () => number = Date.now,
    /** Monotonic milliseconds, for the job's timings. */
    clock: () => number = () => performance.now(),
  ) {
    this.core = new ExecutionCore(nodeName, storage, pool, now, clock);
    this.publisher = new JobPublisher(nodeName, storage, now);
  }

  async run(data: EncodeJobData, context: RunContext): Promise<UnitResult> {
    const encoder = this.catalog.encoderFor(data.codec);
    if (!encoder) throw new PermanentJobError(`node ${this.nodeName} cannot encode ${data.codec}`);
    return this.core.run(
      { data, attempt: context.attempt, signal: context.signal },
      batchStrategyFor(encoder),
      this.publisher,
    );
  }

  /** Records the final failure of any unit of work, live batches included (ExecutionCore.fail). */
  fail(data: EncodeJobData, reason: string): Promise<void> {
    return this.core.fail(data, reason);
  }
}
