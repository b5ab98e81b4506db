import type { JobStatus } from '#contracts';
import { CancelWatch } from './cancel-watch.js';
import { JobCancelledError, isPermanentFailure } from './encode-job-runner.js';

describe('CancelWatch', () => {
  it('aborts the signal of a job running here, with a permanent cancellation', () => {
    const watch = new CancelWatch(async () => 'active');
    const run = watch.track('job-a');
    expect(watch.cancel('job-b')).toBe(false);
    expect(run.signal.aborted).toBe(false);
    expect(watch.cancel('job-a')).toBe(true);
    expect(run.signal.reason).toBeInstanceOf(JobCancelledError);
    expect(isPermanentFailure(run.signal.reason)).toBe(true);
  });

  it('a released run is no longer cancelled, and a newer run of the same job is not released by an older one', () => {
    const watch = new CancelWatch(async () => 'active');
    const first = watch.track('job-a');
    const second = watch.track('job-a');
    first.release();
    expect(watch.size).toBe(1);
    watch.cancel('job-a');
    expect(second.signal.aborted).toBe(true);
    second.release();
    expect(watch.size).toBe(0);
    expect(watch.cancel('job-a')).toBe(false);
  });

  it("follows the queue's own signal too", () => {
    const watch = new CancelWatch(async () => 'active');
    const queue = new AbortController();
    const run = watch.track('job-a', queue.signal);
    queue.abort(new Error('worker closing'));
    expect(run.signal.aborted).toBe(true);
  });

  it('after a reconnect, aborts the jobs whose records ended meanwhile (messages may have been missed)', async () => {
    const statuses: Record<string, JobStatus | null> = { a: 'active', b: 'failed', c: null, d: 'completed' };
    const watch = new CancelWatch(async (jobId) => statuses[jobId]);
    const runs = Object.fromEntries(Object.keys(statuses).map((jobId) => [jobId, watch.track(jobId)]));
    await watch.recheck();
    expect(Object.fromEntries(Object.entries(runs).map(([id, run]) => [id, run.signal.aborted]))).toEqual({
      a: false,
      b: true,
      c: true,
      d: false,
    });
  });
});
