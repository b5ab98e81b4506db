/** Nearest-rank percentile (p in 0..100) of `values`; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * sorted.length);
  return sorted[Math.max(0, rank - 1)];
}

/**
 * Per-batch latency of a stream: from the start of the submit call to the batch's last output event
 * (its `batch` event when it had no outputs). Events may come before the submit call returns the
 * batch's seq, so both sides are recorded and matched when asked.
 */
export class BatchLatency {
  private readonly started = new Map<number, number>();
  private readonly lastOutput = new Map<number, number>();
  private readonly finished = new Map<number, number>();
  private readonly failed = new Set<number>();

  /** The submit call that got `seq` started at `at`. */
  submitted(seq: number, at: number): void {
    this.started.set(seq, at);
  }

  output(seq: number, at: number): void {
    this.lastOutput.set(seq, at);
  }

  /** The batch's `batch` (or, with failed, `batch-failed`) event came at `at`. */
  done(seq: number, at: number, failed = false): void {
    this.finished.set(seq, at);
    if (failed) this.failed.add(seq);
  }

  /** Milliseconds per delivered batch whose submit time is known, in seq order. */
  latencies(): number[] {
    const result: number[] = [];
    const seqs = [...this.finished.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      const start = this.started.get(seq);
      if (start === undefined || this.failed.has(seq)) continue;
      const end = this.lastOutput.get(seq) ?? (this.finished.get(seq) as number);
      result.push(Math.max(0, end - start));
    }
    return result;
  }

  summary(): { p50: number | null; p99: number | null } {
    const values = this.latencies();
    return { p50: roundMs(percentile(values, 50)), p99: roundMs(percentile(values, 99)) };
  }
}

function roundMs(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}
