/**
 * Wrong keys per client address, in fixed windows: past `limit` failures in a window, the address gets
 * 429 until the window ends, whatever it presents (a right key included, or guessing would just go on
 * with every answer told apart). Counted in this process's memory: nothing to ask Redis on the hot path,
 * and the limit holds while Redis is away; with N API processes an address gets at most N times the limit.
 * Each address's window is reported once, when it ends, with its counts: one log line per address and
 * window however many guesses it made.
 */
export interface FailureWindowReport {
  address: string;
  failures: number;
  /** Requests answered 429 during the window. */
  refused: number;
  windowSeconds: number;
}

export interface FailedAttemptsOptions {
  limit: number;
  windowSeconds: number;
  report: (window: FailureWindowReport) => void;
  /** Addresses tracked at once; past it the oldest windows are reported and dropped early. */
  maxAddresses?: number;
  now?: () => number;
}

interface Window {
  startedAt: number;
  failures: number;
  refused: number;
}

const DEFAULT_MAX_ADDRESSES = 100_000;

export class FailedAttempts {
  private readonly windows = new Map<string, Window>();
  private readonly now: () => number;
  private readonly windowMs: number;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly options: FailedAttemptsOptions) {
    this.now = options.now ?? Date.now;
    this.windowMs = options.windowSeconds * 1000;
  }

  /** Seconds until the address may try again, or 0 when it may now. A refusal is counted. */
  retryAfter(address: string): number {
    const window = this.current(address);
    if (!window || window.failures < this.options.limit) return 0;
    window.refused++;
    return Math.max(1, Math.ceil((window.startedAt + this.windowMs - this.now()) / 1000));
  }

  /** A wrong key from `address`. */
  fail(address: string): void {
    let window = this.current(address);
    if (!window) {
      if (this.windows.size >= (this.options.maxAddresses ?? DEFAULT_MAX_ADDRESSES)) this.evictOldest();
      window = { startedAt: this.now(), failures: 0, refused: 0 };
      this.windows.set(address, window);
      this.startSweeping();
    }
    window.failures++;
  }

  /** Reports every window that has ended; `all` reports the open ones too (at shutdown). */
  sweep(all = false): void {
    const now = this.now();
    for (const [address, window] of this.windows) {
      if (!all && window.startedAt + this.windowMs > now) continue;
      this.windows.delete(address);
      this.reportWindow(address, window);
    }
    if (this.windows.size === 0) this.stopSweeping();
  }

  close(): void {
    this.sweep(true);
    this.stopSweeping();
  }

  private current(address: string): Window | undefined {
    const window = this.windows.get(address);
    if (window && window.startedAt + this.windowMs <= this.now()) {
      this.windows.delete(address);
      this.reportWindow(address, window);
      return undefined;
    }
    return window;
  }

  private reportWindow(address: string, window: Window): void {
    this.options.report({
      address,
      failures: window.failures,
      refused: window.refused,
      windowSeconds: this.options.windowSeconds,
    });
  }

  private evictOldest(): void {
    const [address, window] = this.windows.entries().next().value!;
    this.windows.delete(address);
    this.reportWindow(address, window);
  }

  private startSweeping(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), Math.min(this.windowMs, 5000));
    this.sweeper.unref();
  }

  private stopSweeping(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}
