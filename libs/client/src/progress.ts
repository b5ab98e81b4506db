/** `[#####...................] 5/24` */
export function progressBar(done: number, total: number, width = 24): string {
  const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(ratio * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

export interface StreamProgress {
  /** Frames of batches delivered (their `batch` event came). */
  delivered: number;
  /** Frames acknowledged by the API. */
  submitted: number;
  /** Frames the source has, when known. */
  total?: number;
  elapsedMs: number;
  p50Ms: number | null;
  failovers: number;
  failedBatches?: number;
}

/** One line: bar (when the total is known), delivered/submitted frames, fps, p50 latency, failovers. */
export function formatProgress(state: StreamProgress): string {
  const seconds = state.elapsedMs / 1000;
  const fps = seconds > 0 ? state.delivered / seconds : 0;
  const parts = [
    state.total !== undefined
      ? `${progressBar(state.delivered, state.total)} delivered`
      : `${state.delivered} frames delivered`,
    `${state.submitted} submitted`,
    `${fps.toFixed(1)} fps`,
    `p50 ${state.p50Ms === null ? '-' : `${Math.round(state.p50Ms)} ms`}`,
  ];
  if (state.failovers > 0) parts.push(`${state.failovers} failover(s)`);
  if (state.failedBatches) parts.push(`${state.failedBatches} batch(es) failed`);
  return parts.join(', ');
}

export interface ProgressOutput {
  write(text: string): unknown;
}

/**
 * Shows progress on a terminal (one line redrawn at most every `intervalMs`) or as plain log lines
 * (at most one per `logIntervalMs`); log() prints a message without breaking the bar.
 */
export class ProgressReporter {
  private lastDraw = -Infinity;
  private drawn = false;
  private latest: string | undefined;
  /** Plain mode: the latest line was printed already. */
  private printed = false;

  constructor(
    private readonly output: ProgressOutput,
    private readonly options: {
      tty: boolean;
      intervalMs?: number;
      logIntervalMs?: number;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  update(line: string, force = false): void {
    if (line !== this.latest) this.printed = false;
    this.latest = line;
    const now = this.now();
    const interval = this.options.tty
      ? (this.options.intervalMs ?? 100)
      : (this.options.logIntervalMs ?? 1000);
    if (!force && now - this.lastDraw < interval) return;
    if (!this.options.tty && this.printed) return;
    this.lastDraw = now;
    if (this.options.tty) {
      this.output.write(`\r\x1b[K${line}`);
      this.drawn = true;
    } else {
      this.output.write(`${line}\n`);
      this.printed = true;
    }
  }

  log(message: string): void {
    if (this.options.tty && this.drawn) {
      this.output.write(`\r\x1b[K${message}\n`);
      if (this.latest !== undefined) this.output.write(this.latest);
    } else {
      this.output.write(`${message}\n`);
    }
  }

  /** Draws the final state and ends the line. */
  finish(line?: string): void {
    if (line !== undefined && line !== this.latest) {
      this.latest = line;
      this.printed = false;
    }
    if (this.latest === undefined) return;
    if (this.options.tty) this.output.write(`\r\x1b[K${this.latest}\n`);
    else if (!this.printed) this.output.write(`${this.latest}\n`);
    this.printed = true;
    this.drawn = false;
  }
}
