import { randomUUID } from 'node:crypto';
import type {
  AcceptedBatch,
  CreateStreamRequest,
  JobView,
  NodeRecord,
  StreamEvent,
  StreamView,
} from '#contracts';
import { ApiError, type AcceptedJob, type JobEventWithId, type RawJobRequest } from './api-client.js';
import { AsyncQueue } from './async-queue.js';
import { EndpointPool, FailoverError, type Endpoint } from './endpoint-pool.js';
import { endpointUrl } from './endpoints.js';
import {
  ConnectionClosedError,
  ensureOk,
  isRetryableError,
  parseRetryAfter,
  readBody,
  readJson,
  type HttpResponse,
  type HttpTransport,
} from './http.js';
import { parseSse, type ServerSentEvent } from './sse.js';
import { rawUploadBody, type UploadCompression } from './raw-upload.js';
import { wsConnector, type WebSocketConnector } from './websocket.js';

/**
 * Sent by the server when events `from`..`to` were trimmed from its bounded log before this client
 * read them. The server gives it no id; follow() yields it with `id: to` and resumes after `to`.
 */
export interface FellBehindEvent {
  type: 'fell-behind';
  from: number;
  to: number;
  missed: number;
}

type StreamOutputEvent = Extract<StreamEvent, { type: 'output' }>;

/** An output event as delivered: with the URL of its bytes (`/v1/jobs/:jobId/outputs/:index`). */
export type OutputEvent = StreamOutputEvent & { url: string };

/** A stream event with its log id (1, 2, 3, ... per stream). */
export type StreamEventWithId = (Exclude<StreamEvent, { type: 'output' }> | OutputEvent | FellBehindEvent) & {
  id: number;
};

/** An output event with its bytes, as followWs() delivers it. */
export type OutputEventWithData = OutputEvent & { id: number; data: Buffer };

/** What followWs() yields: output events carry their bytes. */
export type StreamEventWithData = Exclude<StreamEventWithId, { type: 'output' }> | OutputEventWithData;

export interface StreamClientOptions {
  apiKey?: string;
  /** How jobs' raw frames travel (default `lz4`; see rawUploadBody). */
  compression?: UploadCompression;
  /** Default: the pool's transport. */
  transport?: HttpTransport;
  /** Default: the `ws` package. */
  webSocket?: WebSocketConnector;
  /** How long a request keeps failing over before it gives up (default: the pool's, 60 s). */
  deadlineMs?: number;
  /** An event stream with no byte (the server sends a keepalive every 15 s) for this long is dead (default 45 s). */
  eventIdleTimeoutMs?: number;
  /** WebSocket ping interval; a connection that missed a pong for two intervals is dead (default 15 s). */
  pingIntervalMs?: number;
}

export interface FollowOptions {
  /** Start after this event id (default 0: from the first event). */
  since?: number;
  signal?: AbortSignal;
  /** Give up after this long without being able to reconnect (default: the client's deadline). */
  reconnectForMs?: number;
  /** Called before each reconnect, after a dropped or failed connection. */
  onReconnect?: (info: { endpoint: string; lastEventId: number; error: unknown }) => void;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Overrides the client's deadline for this call. */
  deadlineMs?: number;
}

export interface SubmitOptions extends RequestOptions {
  /** Default: a fresh UUID per call (reused across its retries). */
  idempotencyKey?: string;
  /** Raw frames of a job: overrides the client's `compression`. */
  compression?: UploadCompression;
}

/** A part of a multipart job: an encoded image. */
export interface ImagePart {
  filename: string;
  contentType: string;
  data: Buffer;
}

/** A follow connection that lasted this long was a working one (see reconnecting()). */
const HEALTHY_CONNECTION_MS = 5000;

/** What a connection of a follow loop yields: an item, or word that it connected. */
type Step<T> = { value: T; last: boolean } | { connected: true };

function isFinalJobEvent(type: string): boolean {
  return type === 'completed' || type === 'failed';
}

/** Path (and query) of a URL the server gave, so it can be fetched from any endpoint. */
function apiPath(url: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  }
  return url;
}

/**
 * The stream API over a pool of API servers: every request fails over to the next healthy server,
 * frame batches carry an Idempotency-Key that is reused on every retry (so failover never duplicates
 * a batch), and follow()/followWs() resume after the last event id they yielded, on any server, so no
 * event is lost or yielded twice.
 */
export class StreamClient {
  readonly pool: EndpointPool;
  private readonly transport: HttpTransport;
  private readonly connect: WebSocketConnector;
  private readonly apiKey?: string;
  private readonly deadlineMs?: number;
  private readonly compression: UploadCompression;
  private readonly eventIdleTimeoutMs: number;
  private readonly pingIntervalMs: number;

  constructor(pool: EndpointPool | string, options: StreamClientOptions = {}) {
    this.pool = typeof pool === 'string' ? new EndpointPool(pool) : pool;
    this.transport = options.transport ?? this.pool.transport;
    this.connect = options.webSocket ?? wsConnector;
    this.apiKey = options.apiKey;
    this.deadlineMs = options.deadlineMs;
    this.compression = options.compression ?? 'lz4';
    this.eventIdleTimeoutMs = options.eventIdleTimeoutMs ?? 45_000;
    this.pingIntervalMs = options.pingIntervalMs ?? 15_000;
  }

  /** Retryable failures so far (requests retried, connections re-established). */
  get failovers(): number {
    return this.pool.failovers;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}`, ...extra } : extra;
  }

  private request(
    endpoint: Endpoint,
    method: string,
    path: string,
    options: { headers?: Record<string, string>; body?: Buffer; signal?: AbortSignal } = {},
  ): Promise<HttpResponse> {
    return this.transport({
      method,
      url: endpointUrl(endpoint.url, path),
      headers: this.headers(options.headers),
      body: options.body,
      timeoutMs: endpoint.timeoutMs,
      signal: options.signal,
    });
  }

  private json<T>(
    method: string,
    path: string,
    options: RequestOptions & { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<T> {
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers = body ? { 'content-type': 'application/json', ...options.headers } : options.headers;
    return this.pool.withFailover(
      async (endpoint) =>
        readJson<T>(await this.request(endpoint, method, path, { headers, body, signal: options.signal })),
      { signal: options.signal, deadlineMs: options.deadlineMs ?? this.deadlineMs },
    );
  }

  /** `POST /v1/streams` (with an Idempotency-Key, so a retried create makes one stream where the server dedupes). */
  create(request: CreateStreamRequest, options: SubmitOptions = {}): Promise<StreamView> {
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    return this.json('POST', 'v1/streams', {
      ...options,
      body: request,
      headers: { 'idempotency-key': idempotencyKey },
    });
  }

  /**
   * `GET /v1/streams/:id`. With `unreachable` (a live stream's node that the caller cannot reach), the
   * API checks that node and moves the stream off it at once if it does not answer; the view carries
   * the session grant to use now.
   */
  get(streamId: string, options: RequestOptions & { unreachable?: string } = {}): Promise<StreamView> {
    const query = options.unreachable ? `?unreachable=${encodeURIComponent(options.unreachable)}` : '';
    return this.json('GET', `v1/streams/${encodeURIComponent(streamId)}${query}`, options);
  }

  /** The API key this client sends (the relay of a live session takes it). */
  get key(): string | undefined {
    return this.apiKey;
  }

  /** The WebSocket connector this client uses. */
  get webSocket(): WebSocketConnector {
    return this.connect;
  }

  /**
   * `DELETE /v1/streams/:id`: no new frames; acknowledged batches are still delivered, then `end`.
   * A retried close that finds the stream already closed (409) returns the stream.
   */
  async close(streamId: string, options: RequestOptions = {}): Promise<StreamView> {
    try {
      return await this.json('DELETE', `v1/streams/${encodeURIComponent(streamId)}`, options);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) return this.get(streamId, options);
      throw error;
    }
  }

  /**
   * `POST /v1/streams/:id/frames?frames=N`: `body` is N raw frames concatenated, sent as is. One
   * Idempotency-Key per call, the same on every retry and every endpoint: a batch is accepted once.
   */
  submitFrames(
    streamId: string,
    body: Buffer,
    frames: number,
    options: SubmitOptions = {},
  ): Promise<AcceptedBatch> {
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    const path = `v1/streams/${encodeURIComponent(streamId)}/frames?frames=${frames}`;
    return this.pool.withFailover(
      async (endpoint) =>
        readJson<AcceptedBatch>(
          await this.request(endpoint, 'POST', path, {
            headers: { 'content-type': 'application/octet-stream', 'idempotency-key': idempotencyKey },
            body,
            signal: options.signal,
          }),
        ),
      { signal: options.signal, deadlineMs: options.deadlineMs ?? this.deadlineMs },
    );
  }

  /** The bytes at an output URL (`/v1/jobs/:jobId/outputs/:index`), from any endpoint. */
  async output(url: string, options: RequestOptions = {}): Promise<Buffer> {
    const path = apiPath(url);
    return this.pool.withFailover(
      async (endpoint) => readBody(await ensureOk(await this.request(endpoint, 'GET', path, options))),
      { signal: options.signal, deadlineMs: options.deadlineMs ?? this.deadlineMs },
    );
  }

  /** `GET /v1/nodes` */
  nodes(options: RequestOptions = {}): Promise<NodeRecord[]> {
    return this.json('GET', 'v1/nodes', options);
  }

  /** `GET /v1/jobs/:id` */
  job(jobId: string, options: RequestOptions = {}): Promise<JobView> {
    return this.json('GET', `v1/jobs/${encodeURIComponent(jobId)}`, options);
  }

  /**
   * `POST /v1/jobs` with raw frames (parameters in the query), failing over with one Idempotency-Key;
   * LZ4-compressed unless `compression` is `none`.
   */
  async submitJob(request: RawJobRequest, body: Buffer, options: SubmitOptions = {}): Promise<AcceptedJob> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(request)) {
      if (value === undefined) continue;
      query.set(key, Array.isArray(value) ? value.join(',') : String(value));
    }
    const upload = await rawUploadBody(body, request.frames, options.compression ?? this.compression);
    return this.postJob(`v1/jobs?${query}`, 'application/octet-stream', upload.body, options, upload.headers);
  }

  /** `POST /v1/jobs` as multipart/form-data: `frame` parts (PNG/JPEG/WebP) and the parameters as fields. */
  submitJobImages(
    fields: Record<string, string | number | undefined>,
    images: ImagePart[],
    options: SubmitOptions = {},
  ): Promise<AcceptedJob> {
    const boundary = `----encoder-client-${randomUUID()}`;
    const parts: Buffer[] = [];
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      parts.push(
        Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
      );
    }
    for (const image of images) {
      const filename = image.filename.replace(/["\r\n]/g, '_');
      parts.push(
        Buffer.from(
          `--${boundary}\r\ncontent-disposition: form-data; name="frame"; filename="${filename}"\r\n` +
            `content-type: ${image.contentType}\r\n\r\n`,
        ),
        image.data,
        Buffer.from('\r\n'),
      );
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    return this.postJob(
      'v1/jobs',
      `multipart/form-data; boundary=${boundary}`,
      Buffer.concat(parts),
      options,
    );
  }

  private postJob(
    path: string,
    contentType: string,
    body: Buffer,
    options: SubmitOptions,
    headers: Record<string, string> = {},
  ): Promise<AcceptedJob> {
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    return this.pool.withFailover(
      async (endpoint) =>
        readJson<AcceptedJob>(
          await this.request(endpoint, 'POST', path, {
            headers: { ...headers, 'content-type': contentType, 'idempotency-key': idempotencyKey },
            body,
            signal: options.signal,
          }),
        ),
      { signal: options.signal, deadlineMs: options.deadlineMs ?? this.deadlineMs },
    );
  }

  /**
   * A job's events (`GET /v1/jobs/:id/events`), reconnecting with Last-Event-ID on any endpoint after a
   * drop; each event once; ends after `completed` or `failed`.
   */
  async *followJob(
    jobId: string,
    options: Omit<FollowOptions, 'since'> = {},
  ): AsyncGenerator<JobEventWithId> {
    const seen = new Set<string>();
    let lastId: string | undefined;
    yield* this.reconnecting<JobEventWithId>(
      options,
      async function* (this: StreamClient, endpoint: Endpoint): AsyncGenerator<Step<JobEventWithId>> {
        const response = await this.openEvents(
          endpoint,
          `v1/jobs/${encodeURIComponent(jobId)}/events`,
          lastId,
          options,
        );
        try {
          yield { connected: true };
          for await (const message of parseSse(response.body)) {
            if (message.id !== undefined) {
              if (seen.has(message.id)) continue;
              seen.add(message.id);
              lastId = message.id;
            }
            const event = { ...(JSON.parse(message.data) as JobEventWithId), id: message.id };
            yield { value: event, last: isFinalJobEvent(event.type) };
            if (isFinalJobEvent(event.type)) return;
          }
        } finally {
          response.cancel();
        }
        throw new ConnectionClosedError('the job event stream ended before its final event');
      },
    );
  }

  /**
   * A stream's events over SSE (`GET /v1/streams/:id/events`). After a drop it reconnects (to the same
   * or the next healthy endpoint, with backoff) with `Last-Event-ID` = the last id it yielded; it never
   * yields an id twice and ends after `end`. Output events carry the URL of their bytes (see output()).
   */
  async *follow(streamId: string, options: FollowOptions = {}): AsyncGenerator<StreamEventWithId> {
    let lastId = options.since ?? 0;
    yield* this.reconnecting<StreamEventWithId>(
      options,
      async function* (this: StreamClient, endpoint: Endpoint): AsyncGenerator<Step<StreamEventWithId>> {
        const path = `v1/streams/${encodeURIComponent(streamId)}/events`;
        const response = await this.openEvents(
          endpoint,
          path,
          lastId > 0 ? String(lastId) : undefined,
          options,
        );
        try {
          yield { connected: true };
          for await (const message of parseSse(response.body)) {
            const event = toStreamEvent(message);
            if (!event || event.id <= lastId) continue;
            lastId = event.id;
            yield { value: event, last: event.type === 'end' };
            if (event.type === 'end') return;
          }
        } finally {
          response.cancel();
        }
        throw new ConnectionClosedError('the event stream ended before its end event');
      },
      () => lastId,
    );
  }

  /**
   * A stream's events over the WebSocket (`GET /v1/streams/:id/ws?since=N`): output events come with
   * their bytes. Same resume guarantees as follow(): an output counts as delivered only once its bytes
   * arrived, so a drop between an output's text and binary messages replays it.
   */
  async *followWs(streamId: string, options: FollowOptions = {}): AsyncGenerator<StreamEventWithData> {
    let lastId = options.since ?? 0;
    yield* this.reconnecting<StreamEventWithData>(
      options,
      async function* (this: StreamClient, endpoint: Endpoint): AsyncGenerator<Step<StreamEventWithData>> {
        const base = new URL(endpointUrl(endpoint.url, `v1/streams/${encodeURIComponent(streamId)}/ws`));
        base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
        base.searchParams.set('since', String(lastId));
        const connection = this.openWebSocket(base.toString(), endpoint, options.signal);
        let pending: (OutputEvent & { id: number }) | undefined;
        try {
          for await (const item of connection.queue) {
            if (item.kind === 'open') {
              this.pool.reportSuccess(endpoint);
              yield { connected: true };
              continue;
            }
            if (!item.binary) {
              if (pending)
                throw new ConnectionClosedError(`output event ${pending.id} came without its bytes`);
              const event = toStreamEvent({ data: item.data.toString('utf8') });
              if (!event) continue;
              if (event.type === 'output') {
                pending = event;
                continue;
              }
              if (event.id <= lastId) continue;
              lastId = event.id;
              yield { value: event, last: event.type === 'end' };
              if (event.type === 'end') return;
              continue;
            }
            if (!pending) throw new ConnectionClosedError('a binary message came without its output event');
            const output = pending;
            pending = undefined;
            if (output.id <= lastId) continue;
            lastId = output.id;
            yield { value: { ...output, data: item.data }, last: false };
          }
        } finally {
          connection.stop();
        }
        throw new ConnectionClosedError('the WebSocket closed before the end event');
      },
      () => lastId,
    );
  }

  private async openEvents(
    endpoint: Endpoint,
    path: string,
    lastEventId: string | undefined,
    options: { signal?: AbortSignal },
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    const response = await this.transport({
      method: 'GET',
      url: endpointUrl(endpoint.url, path),
      headers: this.headers(headers),
      timeoutMs: endpoint.timeoutMs,
      idleTimeoutMs: Math.max(this.eventIdleTimeoutMs, endpoint.timeoutMs),
      signal: options.signal,
    });
    await ensureOk(response);
    this.pool.reportSuccess(endpoint);
    return response;
  }

  private openWebSocket(url: string, endpoint: Endpoint, signal?: AbortSignal) {
    type Item = { kind: 'open' } | { kind: 'message'; data: Buffer; binary: boolean };
    let alive = true;
    let timer: NodeJS.Timeout | undefined;
    const queue = new AsyncQueue<Item>({
      highWaterMark: 64,
      onHigh: () => socket.pause(),
      onLow: () => socket.resume(),
    });
    const onAbort = () => {
      queue.fail(signal?.reason);
      socket.terminate();
    };
    const socket = this.connect(
      url,
      { headers: this.headers(), handshakeTimeoutMs: endpoint.timeoutMs },
      {
        onOpen: () => {
          queue.push({ kind: 'open' });
          timer = setInterval(() => {
            if (!alive) {
              queue.fail(
                new ConnectionClosedError(`no pong from ${endpoint.url} within ${this.pingIntervalMs} ms`),
              );
              socket.terminate();
              return;
            }
            alive = false;
            socket.ping();
          }, this.pingIntervalMs);
          timer.unref();
        },
        onMessage: (data, binary) => {
          alive = true;
          queue.push({ kind: 'message', data, binary });
        },
        onPong: () => (alive = true),
        onClose: (code, reason) =>
          queue.fail(
            new ConnectionClosedError(`the WebSocket closed (code ${code}${reason ? `: ${reason}` : ''})`),
          ),
        onError: (error) => queue.fail(error),
        onUnexpectedResponse: (status, headers, body) => {
          let parsed: ConstructorParameters<typeof ApiError>[1] = body || `HTTP ${status}`;
          try {
            parsed = JSON.parse(body) as typeof parsed;
          } catch {
            // not JSON
          }
          queue.fail(new ApiError(status, parsed, parseRetryAfter(headers['retry-after'])));
        },
      },
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    return {
      queue,
      stop: () => {
        clearInterval(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.close();
        socket.terminate();
      },
    };
  }

  /**
   * The reconnect loop of follow(), followWs() and followJob(): runs `connection` on an endpoint and
   * passes on what it yields; when it fails with a retryable error, books the failure on the endpoint
   * and runs it again on the next endpoint the pool gives (after backoff), until `last` came. Gives up
   * after `reconnectForMs` without a successful connection.
   */
  private async *reconnecting<T>(
    options: FollowOptions,
    connection: (this: StreamClient, endpoint: Endpoint) => AsyncGenerator<Step<T>>,
    lastEventId: () => number = () => 0,
  ): AsyncGenerator<T> {
    const reconnectForMs = options.reconnectForMs ?? this.deadlineMs ?? 60_000;
    let downSince: number | undefined;
    let lastError: unknown;
    let attempts = 0;
    for (;;) {
      let endpoint: Endpoint;
      try {
        endpoint = await this.pool.acquire((downSince ?? this.pool.now()) + reconnectForMs, options.signal);
      } catch (error) {
        if (options.signal?.aborted || lastError === undefined) throw error;
        throw new FailoverError(
          `lost the event stream and could not reconnect within ${reconnectForMs} ms: ${
            lastError instanceof Error ? lastError.message : String(lastError)
          }`,
          attempts,
          { cause: lastError },
        );
      }
      attempts += 1;
      let connectedAt: number | undefined;
      let progressed = false;
      try {
        for await (const item of connection.call(this, endpoint)) {
          if ('connected' in item) {
            connectedAt = this.pool.now();
            continue;
          }
          progressed = true;
          yield item.value;
          if (item.last) return;
        }
        return;
      } catch (error) {
        if (options.signal?.aborted) throw error;
        if (!isRetryableError(error)) throw error;
        lastError = error;
        // A connection that delivered events or lasted a while ends an outage; quick failures in a
        // row (refused, or dropped as soon as connected) add up towards reconnectForMs.
        const now = this.pool.now();
        const lasted = connectedAt !== undefined && now - connectedAt >= HEALTHY_CONNECTION_MS;
        if (downSince === undefined || progressed || lasted) downSince = now;
        this.pool.reportRetryable(endpoint, error);
        options.onReconnect?.({ endpoint: endpoint.url, lastEventId: lastEventId(), error });
      }
    }
  }
}

/** An SSE message (or a WebSocket text message's JSON) as a stream event with its numeric id. */
export function toStreamEvent(
  message: Pick<ServerSentEvent, 'data'> & Partial<ServerSentEvent>,
): StreamEventWithId | undefined {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(message.data) as Record<string, unknown>;
  } catch {
    throw new Error(`the server sent an event that is not JSON: ${message.data.slice(0, 200)}`);
  }
  const type = message.event && message.event !== 'message' ? message.event : data.type;
  if (typeof type !== 'string') return undefined;
  let id = message.id !== undefined && message.id !== '' ? Number(message.id) : Number(data.id);
  if (!Number.isSafeInteger(id) || id <= 0) {
    // fell-behind may come without an id of its own: resuming after the trimmed range is right.
    if (type === 'fell-behind' && typeof data.to === 'number') id = data.to;
    else return undefined;
  }
  const event = { ...data, type, id } as StreamEventWithId;
  if (event.type === 'output' && typeof event.url !== 'string') {
    event.url = `/v1/jobs/${event.jobId}/outputs/${event.index}`;
  }
  return event;
}
