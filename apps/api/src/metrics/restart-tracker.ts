/** Jobs remembered at most; the oldest are forgotten first (a job whose final event this API missed). */
const MAX_TRACKED = 100_000;

/**
 * Tells a failover from a first start or a retry, from the `active` events nodes publish: a job that
 * starts again with the same attempt number lost its node mid-run (killed or hung: BullMQ's stalled-job
 * check put it back, which uses up no attempt), while a retry after a failure starts with the next one.
 */
export class RestartTracker {
  private readonly attempts = new Map<string, number>();

  /** A node started `jobId`; true when that is the job running again after its node was lost. */
  started(jobId: string, attempt: number): boolean {
    const previous = this.attempts.get(jobId);
    this.attempts.delete(jobId);
    this.attempts.set(jobId, attempt);
    if (this.attempts.size > MAX_TRACKED) this.attempts.delete(this.attempts.keys().next().value!);
    return previous === attempt;
  }

  finished(jobId: string): void {
    this.attempts.delete(jobId);
  }
}
