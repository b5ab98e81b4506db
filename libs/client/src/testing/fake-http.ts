import type { HttpRequest, HttpResponse, HttpTransport } from '../http.js';

/** A clock whose sleep() only moves time: deterministic, instant backoff in tests. */
export class FakeClock {
  constructor(public t = 1_000_000) {}
  readonly now = (): number => this.t;
  readonly sleeps: number[] = [];
  readonly sleep = async (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.t += ms;
  };
}

/** A response with a fixed body. */
export function response(
  status: number,
  body: unknown = '',
  headers: Record<string, string> = {},
): HttpResponse {
  const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return streamingResponse(status, [bytes], undefined, headers);
}

/** A response whose body yields `chunks`, then ends (or fails with `error`). */
export function streamingResponse(
  status: number,
  chunks: (string | Buffer)[],
  error?: Error,
  headers: Record<string, string> = {},
): HttpResponse {
  let cancelled = false;
  return {
    status,
    headers,
    body: (async function* () {
      for (const chunk of chunks) {
        if (cancelled) return;
        yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      }
      if (error) throw error;
    })(),
    cancel: () => {
      cancelled = true;
    },
  };
}

/** An SSE frame. */
export function sse(id: number, event: string, data: Record<string, unknown>): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A Node-style network error. */
export function networkError(code = 'ECONNREFUSED'): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
}

/** A transport that records each request and answers with `handler`. */
export function fakeTransport(
  handler: (request: HttpRequest, index: number) => HttpResponse | Promise<HttpResponse>,
): HttpTransport & { requests: HttpRequest[] } {
  const requests: HttpRequest[] = [];
  const transport = async (request: HttpRequest) => {
    requests.push(request);
    return handler(request, requests.length - 1);
  };
  return Object.assign(transport, { requests });
}
