import type { JobStatus } from '#contracts';
import { JobCancelledError } from './encode-job-runner.js';

const CANCELLED = 'cancelled by the client';

/**
 * The jobs this node is encoding, each with an abort signal that a cancellation fires. Cancellations
 * come as pub/sub hints (`cancel`); after a reconnect, when some may have been missed, `recheck` reads
 * the records of the jobs in hand and aborts those that ended meanwhile.
 */
export class CancelWatch {
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly statusOf: (jobId: string) => Promise<JobStatus | null>) {}

  /** A signal for one run of `jobId` (also aborted by `parent`); `release` when the run is over. */
  track(jobId: string, parent?: AbortSignal): { signal: AbortSignal; release: () => void } {
    const controller = new AbortController();
    this.running.set(jobId, controller);
    const signal = parent ? AbortSignal.any([parent, controller.signal]) : controller.signal;
    return {
      signal,
      release: () => {
        if (this.running.get(jobId) === controller) this.running.delete(jobId);
      },
    };
  }

  /** True when the job was running here (and is now told to stop). */
  cancel(jobId: string): boolean {
    const controller = this.running.get(jobId);
    if (!controller) return false;
    controller.abort(new JobCancelledError(`${CANCELLED}: job ${jobId} stopped`));
    return true;
  }

  async recheck(): Promise<void> {
    await Promise.all(
      [...this.running.keys()].map(async (jobId) => {
        const status = await this.statusOf(jobId).catch(() => undefined);
        if (status === 'failed' || status === null) this.cancel(jobId);
      }),
    );
  }

  get size(): number {
    return this.running.size;
  }
}
