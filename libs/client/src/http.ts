import { types } from 'node:util';
import http from 'node:http';
import https from 'node:https';
import { ApiError } from './api-client.js';

/** One HTTP request as the SDK makes it. */
export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** Sent as is (never copied). */
  body?: Buffer | Uint8Array;
  /** Connect, upload and wait-for-headers: the request fails after this long without activity. */
  timeoutMs: number;
  /** Reading the body: fails after this long without a byte (default timeoutMs). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: AsyncIterable<Uint8Array>;
  /** Stops reading and releases the connection (safe to call more than once). */
  cancel(): void;
}

/** Makes one request; rejects on network errors and timeouts, resolves with any HTTP status. */
export type HttpTransport = (request: HttpRequest) => Promise<HttpResponse>;

/** No byte (or no connection) within the endpoint's timeout. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(message: string) {
    super(message);
  }
}

/** The connection closed before the exchange was complete. */
export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
  readonly code = 'ECONNRESET';
  constructor(message: string) {
    super(message);
  }
}

const agents = {
  http: new http.Agent({ keepAlive: true }),
  https: new https.Agent({ keepAlive: true }),
};

/**
 * The default transport: node:http(s), keep-alive, the body written as is. A request that dies on its
 * socket before any response (the server closed a pooled connection while this process was busy, and
 * the request went out on it) is sent once more on a fresh connection, when sending it again is safe.
 */
export const nodeHttpTransport: HttpTransport = async (request) => {
  try {
    return await sendOnce(request, 'pooled');
  } catch (error) {
    if (!isReplayable(request) || !isDeadSocketError(error) || request.signal?.aborted) throw error;
    return sendOnce(request, 'fresh');
  }
};

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** A request the server treats the same when it arrives twice: an idempotent method, or a key that dedupes it. */
export function isReplayable(request: Pick<HttpRequest, 'method' | 'headers'>): boolean {
  if (IDEMPOTENT_METHODS.has(request.method.toUpperCase())) return true;
  return Object.keys(request.headers ?? {}).some((name) => name.toLowerCase() === 'idempotency-key');
}

const DEAD_SOCKET_CODES = new Set(['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET']);

/** The connection failed under a request before any response: written into a closed socket, or reset. */
export function isDeadSocketError(error: unknown): boolean {
  if (!(error instanceof Error || types.isNativeError(error))) return false;
  if (error instanceof TimeoutError) return false;
  const code = (error as NodeJS.ErrnoException).code;
  if (code && DEAD_SOCKET_CODES.has(code)) return true;
  return error.message === 'socket hang up' || error.message === 'other side closed';
}

function sendOnce(request: HttpRequest, connection: 'pooled' | 'fresh'): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const url = new URL(request.url);
    const secure = url.protocol === 'https:';
    const headers: Record<string, string | number> = { ...request.headers };
    if (request.body) headers['content-length'] = request.body.byteLength;
    let settled = false;
    const req = (secure ? https : http).request(url, {
      method: request.method,
      headers,
      // `false`: a connection of its own, outside the pool.
      agent: connection === 'fresh' ? false : secure ? agents.https : agents.http,
      signal: request.signal,
    });
    let response: http.IncomingMessage | undefined;
    req.setTimeout(request.timeoutMs, () => {
      const error = new TimeoutError(
        response
          ? `no data from ${url.origin} for ${request.idleTimeoutMs ?? request.timeoutMs} ms`
          : `${request.method} ${url.origin}${url.pathname} got no answer within ${request.timeoutMs} ms`,
      );
      if (response) response.destroy(error);
      req.destroy(error);
    });
    req.on('error', (error) => {
      if (!settled) {
        settled = true;
        reject(error);
      }
    });
    req.on('response', (res) => {
      response = res;
      settled = true;
      if (request.idleTimeoutMs !== undefined) req.setTimeout(request.idleTimeoutMs);
      const responseHeaders: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (value !== undefined) responseHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      resolve({
        status: res.statusCode ?? 0,
        headers: responseHeaders,
        body: res,
        cancel: () => {
          if (!res.complete) res.destroy();
          req.destroy();
        },
      });
    });
    req.end(request.body);
  });
}

/** Reads a whole body. */
export async function readBody(response: HttpResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response.body)
      chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  } finally {
    response.cancel();
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/** Milliseconds of a Retry-After header (seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Throws an ApiError (with the JSON error body and Retry-After) unless the status is 2xx. */
export async function ensureOk(response: HttpResponse): Promise<HttpResponse> {
  if (response.status >= 200 && response.status < 300) return response;
  const text = (await readBody(response).catch(() => Buffer.alloc(0))).toString('utf8');
  let body: ConstructorParameters<typeof ApiError>[1] = text || `HTTP ${response.status}`;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not JSON
  }
  throw new ApiError(response.status, body, parseRetryAfter(response.headers['retry-after']));
}

/** Reads a 2xx JSON body, or throws the ApiError. */
export async function readJson<T>(response: HttpResponse): Promise<T> {
  await ensureOk(response);
  const text = (await readBody(response)).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(response.status, `expected JSON, got: ${text.slice(0, 200)}`);
  }
}

const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * Whether another try (on this or another endpoint) may succeed: network errors, timeouts, dropped
 * connections, 502/503/504 and 429. Other HTTP errors (400, 401, 404, 409, 413, 422, ...) are answers.
 */
export function isRetryableError(error: unknown): boolean {
  if (error instanceof ApiError)
    return RETRYABLE_STATUSES.has(error.status) || isPendingRequestConflict(error);
  // Node's own errors may come from another realm (a VM context, as under Jest): not `instanceof Error`.
  if (!(error instanceof Error || types.isNativeError(error)) || error.name === 'AbortError') return false;
  if (error instanceof TimeoutError || error instanceof ConnectionClosedError) return true;
  const code = (error as NodeJS.ErrnoException).code;
  if (code && RETRYABLE_CODES.has(code)) return true;
  if (error.message === 'aborted' || error.message === 'socket hang up') return true;
  // fetch (undici) wraps network errors: TypeError('fetch failed', { cause })
  if (error.name === 'TypeError' && error.message === 'fetch failed') return true;
  return error.cause !== undefined && error.cause !== error && isRetryableError(error.cause);
}

/**
 * A 409 that says "the first request with this Idempotency-Key is still being processed" (or any 409
 * with a Retry-After): the same request, retried later with the same key, gets the first answer.
 */
export function isPendingRequestConflict(error: unknown): boolean {
  if (!(error instanceof ApiError) || error.status !== 409) return false;
  if (error.retryAfterMs !== undefined) return true;
  const message = typeof error.body === 'string' ? error.body : (error.body.message ?? '');
  return /idempotency-key is still being processed/i.test(message);
}

/** Retry-After of an error, in ms, when it carries one. */
export function retryAfterOf(error: unknown): number | undefined {
  return error instanceof ApiError ? error.retryAfterMs : undefined;
}
