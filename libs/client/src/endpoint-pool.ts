import { ApiError } from './api-client.js';
import { endpointUrl, parseEndpoints, type EndpointSpec } from './endpoints.js';
import {
  isPendingRequestConflict,
  isRetryableError,
  nodeHttpTransport,
  retryAfterOf,
  type HttpTransport,
} from './http.js';

/** One API server and what the pool knows of it. */
export interface Endpoint extends EndpointSpec {
  healthy: boolean;
  /** Consecutive failures (requests and health checks); a successful request resets it. */
  failures: number;
  /** Unhealthy: when the next health check is due. Healthy: not used before this (429 Retry-After). */
  nextTryAt: number;
  lastError?: string;
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export interface EndpointPoolOptions {
  /** HTTP for health checks (and, by default, for the StreamClient on top). */
  transport?: HttpTransport;
  now?: () => number;
  sleep?: Sleep;
  /** [0, 1); jitter of the backoff. */
  random?: () => number;
  /** Backoff cap (default 30 s). */
  maxBackoffMs?: number;
  /** Backoff jitter: each delay is multiplied by 1 +- jitter (default 0.2). */
  jitter?: number;
  /** How long withFailover keeps trying by default (default 60 s). */
  deadlineMs?: number;
  /** Health check path (default `/health/ready`). */
  healthPath?: string;
  /** Called on each state change, for logs. */
  onStateChange?: (endpoint: Endpoint, change: 'up' | 'down', reason?: string) => void;
}

export interface FailoverOptions {
  /** Default isRetryableError: network errors, timeouts, 502/503/504, 429. */
  isRetryable?: (error: unknown) => boolean;
  /** Overall time to keep trying, from the call (default the pool's deadlineMs). */
  deadlineMs?: number;
  signal?: AbortSignal;
  /** Called after each retryable failure, before the next try. */
  onRetry?: (error: unknown, endpoint: Endpoint, attempt: number) => void;
}

/** withFailover gave up: no endpoint succeeded before the deadline. `cause` is the last error. */
export class FailoverError extends Error {
  override readonly name = 'FailoverError';
  constructor(
    message: string,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const defaultSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The API servers a client may use: health, consecutive failures, exponential backoff with jitter
 * (reconnect-delay * 2^(failures-1), capped), health checks of failed endpoints when their backoff is
 * due, round-robin over the healthy ones, and withFailover() to run a request on them in turn.
 */
export class EndpointPool {
  readonly endpoints: Endpoint[];
  readonly transport: HttpTransport;
  readonly now: () => number;
  readonly sleep: Sleep;
  /** Retryable failures so far (each one moved a request or a connection on to another try). */
  failovers = 0;
  private readonly random: () => number;
  private readonly maxBackoffMs: number;
  private readonly jitter: number;
  private readonly deadlineMs: number;
  private readonly healthPath: string;
  private readonly onStateChange?: EndpointPoolOptions['onStateChange'];
  private cursor = 0;
  private readonly checking = new Map<Endpoint, Promise<boolean>>();

  constructor(endpoints: string | EndpointSpec[], options: EndpointPoolOptions = {}) {
    const specs = typeof endpoints === 'string' ? parseEndpoints(endpoints) : endpoints;
    if (specs.length === 0) throw new Error('an EndpointPool needs at least one endpoint');
    this.transport = options.transport ?? nodeHttpTransport;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.jitter = options.jitter ?? 0.2;
    this.deadlineMs = options.deadlineMs ?? 60_000;
    this.healthPath = options.healthPath ?? '/health/ready';
    this.onStateChange = options.onStateChange;
    this.endpoints = specs.map((spec) => ({ ...spec, healthy: true, failures: 0, nextTryAt: 0 }));
  }

  /** The next healthy endpoint in round-robin order that may be used now; undefined when none. */
  pick(): Endpoint | undefined {
    const now = this.now();
    const count = this.endpoints.length;
    for (let step = 0; step < count; step++) {
      const endpoint = this.endpoints[(this.cursor + step) % count];
      if (endpoint.healthy && endpoint.nextTryAt <= now) {
        this.cursor = (this.cursor + step + 1) % count;
        return endpoint;
      }
    }
    return undefined;
  }

  /** The backoff after `failures` consecutive failures, before jitter and Retry-After. */
  backoffMs(endpoint: EndpointSpec, failures: number): number {
    return Math.min(this.maxBackoffMs, endpoint.reconnectDelayMs * 2 ** Math.max(0, failures - 1));
  }

  /** Marks the endpoint unhealthy until its backoff (or `retryAfterMs`, if longer) has passed. */
  reportFailure(endpoint: Endpoint, error: unknown, retryAfterMs?: number): void {
    endpoint.failures += 1;
    const jittered =
      this.backoffMs(endpoint, endpoint.failures) * (1 + this.jitter * (2 * this.random() - 1));
    const delay = Math.max(Math.min(this.maxBackoffMs, jittered), retryAfterMs ?? 0);
    endpoint.nextTryAt = this.now() + Math.round(delay);
    endpoint.lastError = describe(error);
    if (endpoint.healthy) {
      endpoint.healthy = false;
      this.onStateChange?.(endpoint, 'down', endpoint.lastError);
    }
  }

  /** A request succeeded: healthy, failures reset. */
  reportSuccess(endpoint: Endpoint): void {
    endpoint.failures = 0;
    endpoint.lastError = undefined;
    this.markUp(endpoint);
  }

  /** Keeps a healthy endpoint unused for a while (a 429's Retry-After) without counting a failure. */
  defer(endpoint: Endpoint, ms: number): void {
    endpoint.nextTryAt = Math.max(endpoint.nextTryAt, this.now() + ms);
  }

  private markUp(endpoint: Endpoint): void {
    if (!endpoint.healthy) {
      endpoint.healthy = true;
      endpoint.nextTryAt = this.now();
      this.onStateChange?.(endpoint, 'up');
    }
  }

  /**
   * `GET /health/ready` within the endpoint's timeout. Success marks it healthy (its failure count is
   * kept until a request succeeds, so a server that answers health checks but fails requests backs off
   * further); failure counts as a failure.
   */
  checkHealth(endpoint: Endpoint, signal?: AbortSignal): Promise<boolean> {
    const running = this.checking.get(endpoint);
    if (running) return running;
    const check = (async () => {
      await Promise.resolve(); // registered in `checking` before anything below runs
      try {
        const response = await this.transport({
          method: 'GET',
          url: endpointUrl(endpoint.url, this.healthPath),
          timeoutMs: endpoint.timeoutMs,
          signal,
        });
        response.cancel();
        if (response.status !== 200)
          throw new ApiError(response.status, `health check: HTTP ${response.status}`);
        this.markUp(endpoint);
        return true;
      } catch (error) {
        if (signal?.aborted) throw error;
        this.reportFailure(endpoint, error);
        return false;
      } finally {
        this.checking.delete(endpoint);
      }
    })();
    this.checking.set(endpoint, check);
    return check;
  }

  /** Health-checks the unhealthy endpoints whose backoff is due (and, with `all`, the healthy ones too). */
  async checkDue(options: { all?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const now = this.now();
    const due = this.endpoints.filter((endpoint) =>
      endpoint.healthy ? options.all === true : endpoint.nextTryAt <= now,
    );
    await Promise.all(due.map((endpoint) => this.checkHealth(endpoint, options.signal)));
  }

  /** Health-checks every endpoint every `intervalMs` (timer unref'd); returns a stop function. */
  startHealthChecks(intervalMs: number): () => void {
    const timer = setInterval(() => void this.checkDue({ all: true }).catch(() => undefined), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * An endpoint to use now: the next healthy one, else the first unhealthy one that passes its due
   * health check, else waits for the earliest backoff. Throws once `deadline` (a now() time) passes.
   */
  async acquire(deadline: number, signal?: AbortSignal): Promise<Endpoint> {
    // One check of every endpoint at the deadline, unless the caller is past it already.
    let lastChance = this.now() >= deadline;
    for (;;) {
      signal?.throwIfAborted();
      const picked = this.pick();
      if (picked) return picked;
      const now = this.now();
      if (this.endpoints.some((endpoint) => !endpoint.healthy && endpoint.nextTryAt <= now)) {
        await this.checkDue({ signal }).catch(() => undefined);
        continue;
      }
      if (now >= deadline) {
        // A backoff may reach past the deadline: every endpoint gets one more check before giving up.
        if (!lastChance) {
          lastChance = true;
          for (const endpoint of this.endpoints) endpoint.nextTryAt = Math.min(endpoint.nextTryAt, now);
          continue;
        }
        throw new FailoverError(
          `no API server is reachable: ${this.endpoints
            .map(
              (endpoint) => `${endpoint.url} ${endpoint.lastError ?? (endpoint.healthy ? 'busy' : 'down')}`,
            )
            .join('; ')}`,
          0,
        );
      }
      const next = Math.min(...this.endpoints.map((endpoint) => endpoint.nextTryAt));
      await this.sleep(Math.max(1, Math.min(next, deadline) - now), signal);
    }
  }

  /**
   * Runs `fn` on endpoints in turn until it succeeds, it throws an error that is not retryable, or the
   * deadline passes. A retryable failure marks the endpoint down (a 429, or a 409 for an idempotent
   * request still in progress, only defers it by its Retry-After or reconnect-delay; a 503's
   * Retry-After lengthens the backoff); an answer that is not retryable (4xx) still proves the endpoint up.
   */
  async withFailover<T>(
    fn: (endpoint: Endpoint, attempt: number) => Promise<T>,
    options: FailoverOptions = {},
  ): Promise<T> {
    const isRetryable = options.isRetryable ?? isRetryableError;
    const deadline = this.now() + (options.deadlineMs ?? this.deadlineMs);
    let attempt = 0;
    let lastError: unknown;
    for (;;) {
      let endpoint: Endpoint;
      try {
        endpoint = await this.acquire(deadline, options.signal);
      } catch (error) {
        if (options.signal?.aborted || lastError === undefined) throw error;
        throw this.giveUp(lastError, attempt);
      }
      attempt += 1;
      try {
        const result = await fn(endpoint, attempt);
        this.reportSuccess(endpoint);
        return result;
      } catch (error) {
        if (options.signal?.aborted) throw error;
        if (!isRetryable(error)) {
          if (error instanceof ApiError) this.reportSuccess(endpoint);
          throw error;
        }
        lastError = error;
        this.reportRetryable(endpoint, error);
        options.onRetry?.(error, endpoint, attempt);
        if (this.now() >= deadline) throw this.giveUp(error, attempt);
      }
    }
  }

  /** Books a retryable failure of `endpoint` (as withFailover does). */
  reportRetryable(endpoint: Endpoint, error: unknown): void {
    this.failovers += 1;
    const retryAfter = retryAfterOf(error);
    if (error instanceof ApiError && (error.status === 429 || isPendingRequestConflict(error))) {
      this.defer(endpoint, retryAfter ?? endpoint.reconnectDelayMs);
    } else {
      this.reportFailure(endpoint, error, retryAfter);
    }
  }

  private giveUp(lastError: unknown, attempts: number): FailoverError {
    return new FailoverError(
      `gave up after ${attempts} attempt(s) on ${this.endpoints.length} API server(s): ${describe(lastError)}`,
      attempts,
      { cause: lastError },
    );
  }
}
