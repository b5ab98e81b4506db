import type {
  Codec,
  JobEvent,
  JobView,
  NodeRecord,
  OddSizePolicy,
  PixelFormat,
  PoolPreference,
} from '#contracts';
import { rawUploadBody, type UploadCompression } from './raw-upload.js';
import { randomUUID } from 'node:crypto';
import {
  ensureOk,
  nodeHttpTransport,
  readBody,
  readJson,
  type HttpResponse,
  type HttpTransport,
} from './http.js';
import { parseSse } from './sse.js';

export interface RawJobRequest {
  codec?: Codec;
  accept?: Codec[];
  width: number;
  height: number;
  format: PixelFormat;
  frames: number;
  quality?: number;
  speed?: number;
  fps?: number;
  pool?: PoolPreference;
  priority?: number;
  oddSize?: OddSizePolicy;
}

export interface AcceptedJob {
  id: string;
  status: string;
  codec: Codec;
  pool: string;
  frames: number;
  /** Only when the output's pictures are not width x height (H.264/HEVC with oddSize=pad at an odd size). */
  outputWidth?: number;
  outputHeight?: number;
  links: { self: string; events: string; output: string };
}

export interface RawUploadOptions {
  /** Overrides the client's `compression` for this job. */
  compression?: UploadCompression;
}

export type JobEventWithId = JobEvent & { id?: string; jobId: string; url?: string };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { statusCode?: number; error?: string; message?: string } | string,
    /** The Retry-After the server sent (429/503), in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(`HTTP ${status}: ${typeof body === 'string' ? body : (body.message ?? body.error)}`);
  }
}

/** A thin client of the REST contract (API.md), used by the demo, the bench and the tests. */
export class EncoderApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly apiKey?: string,
    private readonly options: {
      transport?: HttpTransport;
      timeoutMs?: number;
      compression?: UploadCompression;
    } = {},
  ) {}

  private send(
    method: string,
    path: string,
    extra: {
      headers?: Record<string, string>;
      body?: Buffer;
      signal?: AbortSignal;
      follow?: boolean;
    } = {},
  ): Promise<HttpResponse> {
    const headers = { ...extra.headers };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    return (this.options.transport ?? nodeHttpTransport)({
      method,
      url: new URL(path, this.baseUrl).toString(),
      headers,
      body: extra.body,
      timeoutMs: this.options.timeoutMs ?? 60_000,
      // An event stream may be quiet for as long as a job waits: no read timeout once it is open.
      idleTimeoutMs: extra.follow ? 0 : undefined,
      signal: extra.signal,
    });
  }

  /**
   * `POST /v1/jobs` with raw frames. It always carries an Idempotency-Key (the caller's, or a fresh one),
   * so the transport may send it again when a pooled connection died under it. Frames are compressed
   * with LZ4 unless the client or `options` say `compression: 'none'` (see rawUploadBody).
   */
  async submitRaw(
    request: RawJobRequest,
    frames: Buffer,
    headers: Record<string, string> = {},
    options: RawUploadOptions = {},
  ): Promise<AcceptedJob> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(request)) {
      if (value === undefined) continue;
      query.set(key, Array.isArray(value) ? value.join(',') : String(value));
    }
    const keyed = Object.keys(headers).some((name) => name.toLowerCase() === 'idempotency-key');
    const compression = options.compression ?? this.options.compression ?? 'lz4';
    const upload = await rawUploadBody(frames, request.frames, compression, headers);
    const response = await this.send('POST', `/v1/jobs?${query}`, {
      headers: {
        'content-type': 'application/octet-stream',
        ...(keyed ? {} : { 'idempotency-key': randomUUID() }),
        ...upload.headers,
      },
      body: upload.body,
    });
    return readJson<AcceptedJob>(response);
  }

  async job(id: string): Promise<JobView> {
    return readJson<JobView>(await this.send('GET', `/v1/jobs/${id}`));
  }

  async output(id: string, index: number): Promise<{ contentType: string; data: Buffer }> {
    const response = await ensureOk(await this.send('GET', `/v1/jobs/${id}/outputs/${index}`));
    return { contentType: response.headers['content-type'] ?? '', data: await readBody(response) };
  }

  /** Follows a job's events until it completes or fails; resumes after `lastEventId` if given. */
  async *events(id: string, lastEventId?: string, signal?: AbortSignal): AsyncGenerator<JobEventWithId> {
    const response = await ensureOk(
      await this.send('GET', `/v1/jobs/${id}/events`, {
        headers: lastEventId ? { 'last-event-id': lastEventId } : {},
        signal,
        follow: true,
      }),
    );
    try {
      for await (const message of parseSse(response.body)) {
        const event = { ...(JSON.parse(message.data) as JobEventWithId), id: message.id };
        yield event;
        if (event.type === 'completed' || event.type === 'failed') return;
      }
    } finally {
      response.cancel();
    }
  }

  /** Waits for the job's final event and returns the job. */
  async waitFor(id: string, onEvent?: (event: JobEventWithId) => void): Promise<JobView> {
    for await (const event of this.events(id)) onEvent?.(event);
    return this.job(id);
  }

  async nodes(): Promise<NodeRecord[]> {
    return readJson<NodeRecord[]>(await this.send('GET', '/v1/nodes'));
  }

  async ready(): Promise<boolean> {
    try {
      const response = await this.send('GET', '/health/ready');
      response.cancel();
      return response.status === 200;
    } catch {
      return false;
    }
  }
}
