import { redact } from './redis-target.js';

export interface OutageLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Errors that mean "Redis cannot be reached now" (retried with backoff), as ioredis and BullMQ raise them. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

export function isConnectionError(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return (
    (code !== undefined && CONNECTION_CODES.has(code)) ||
    /Connection is closed|connect ETIMEDOUT|Stream isn't writeable|All sentinels are unreachable|Failed to refresh slots cache/.test(
      message ?? '',
    )
  );
}

/**
 * One voice for all of a process's Redis connections while Redis cannot be reached: the first error at
 * once, then a line at each reconnect step of the connection that drives the backoff, never more than
 * one line per `minIntervalMs` (a process has many connections failing together); one line when Redis
 * answers again. Only the URL with its password masked and the error's message are written.
 */
export class RedisOutageLog {
  private downSince: number | null = null;
  private lastError = '';
  private lastLoggedAt = -Infinity;

  constructor(
    private readonly url: string,
    private readonly log: OutageLogger,
    private readonly minIntervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  get down(): boolean {
    return this.downSince !== null;
  }

  /** A connection error, from any connection of the process. */
  error(error: Error): void {
    this.lastError = error.message;
    if (this.downSince !== null) return;
    this.downSince = this.now();
    this.write(`Redis at ${redact(this.url)} unreachable (${error.message}): retrying with backoff`);
  }

  /** The driving connection will make reconnect attempt `attempt` in `delayMs`. */
  retrying(attempt: number, delayMs: number): void {
    const first = this.downSince === null;
    if (!first && this.now() - this.lastLoggedAt < this.minIntervalMs) return;
    const since = (this.downSince ??= this.now());
    const reason = this.lastError ? ` (${this.lastError})` : '';
    const seconds = ((this.now() - since) / 1000).toFixed(1);
    this.write(
      `Redis at ${redact(this.url)} ${first ? 'connection lost' : `still unreachable after ${seconds} s`}${reason}: reconnect attempt ${attempt} in ${delayMs} ms`,
    );
  }

  /** The driving connection is ready again. */
  ready(): void {
    if (this.downSince === null) return;
    const seconds = ((this.now() - this.downSince) / 1000).toFixed(1);
    this.downSince = null;
    this.lastError = '';
    this.lastLoggedAt = -Infinity;
    this.log.info(`Redis at ${redact(this.url)} reachable again after ${seconds} s`);
  }

  private write(message: string): void {
    this.lastLoggedAt = this.now();
    this.log.warn(message);
  }
}
