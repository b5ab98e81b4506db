import type {
  Codec,
  JobEvent,
  JobView,
  NodeRecord,
  PixelFormat,
  PoolPreference,
} from '../../contracts/src/index.js';
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
}

export interface AcceptedJob {
  id: string;
  status: string;
  codec: Codec;
  pool: string;
  frames: number;
  links: { self: string; events: string; output: string };
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
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}`, ...extra } : extra;
  }

  private url(path: string): string {
    return new URL(path, this.baseUrl).toString();
  }

  private async json<T>(response: Response): Promise<T> {
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    if (!response.ok) throw new ApiError(response.status, body as string);
    return body as T;
  }

  async submitRaw(
    request: RawJobRequest,
    frames: Buffer,
    headers: Record<string, string> = {},
  ): Promise<AcceptedJob> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(request)) {
      if (value === undefined) continue;
      query.set(key, Array.isArray(value) ? value.join(',') : String(value));
    }
    const response = await fetch(this.url(`/v1/jobs?${query}`), {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/octet-stream', ...headers }),
      body: frames,
    });
    return this.json<AcceptedJob>(response);
  }

  async job(id: string): Promise<JobView> {
    return this.json<JobView>(await fetch(this.url(`/v1/jobs/${id}`), { headers: this.headers() }));
  }

  async output(id: string, index: number): Promise<{ contentType: string; data: Buffer }> {
    const response = await fetch(this.url(`/v1/jobs/${id}/outputs/${index}`), { headers: this.headers() });
    if (!response.ok) throw new ApiError(response.status, await response.text());
    return {
      contentType: response.headers.get('content-type') ?? '',
      data: Buffer.from(await response.arrayBuffer()),
    };
  }

  /** Follows a job's events until it completes or fails; resumes after `lastEventId` if given. */
  async *events(id: string, lastEventId?: string, signal?: AbortSignal): AsyncGenerator<JobEventWithId> {
    const response = await fetch(this.url(`/v1/jobs/${id}/events`), {
      headers: this.headers(lastEventId ? { 'last-event-id': lastEventId } : {}),
      signal,
    });
    if (!response.ok || !response.body) throw new ApiError(response.status, await response.text());
    for await (const message of parseSse(response.body)) {
      const event = { ...(JSON.parse(message.data) as JobEventWithId), id: message.id };
      yield event;
      if (event.type === 'completed' || event.type === 'failed') return;
    }
  }

  /** Waits for the job's final event and returns the job. */
  async waitFor(id: string, onEvent?: (event: JobEventWithId) => void): Promise<JobView> {
    for await (const event of this.events(id)) onEvent?.(event);
    return this.job(id);
  }

  async nodes(): Promise<NodeRecord[]> {
    return this.json(await fetch(this.url('/v1/nodes'), { headers: this.headers() }));
  }

  async ready(): Promise<boolean> {
    try {
      return (await fetch(this.url('/health/ready'))).ok;
    } catch {
      return false;
    }
  }
}
