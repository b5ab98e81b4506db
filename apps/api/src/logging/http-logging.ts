import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { pinoHttp, type HttpLogger } from 'pino-http';

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** A caller's X-Request-Id is kept when it is a plain token (no spaces, no control characters, <= 128). */
export function acceptRequestId(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && /^[A-Za-z0-9._:@+=/-]{1,128}$/.test(value) ? value : null;
}

/** Probes and scrapes hit these every few seconds: logged at debug when they succeed. */
const QUIET = /^\/(health\/|metrics(\?|$))/;

/** Headers worth a log line; nothing that carries a credential (authorization, x-api-key, cookie). */
const LOGGED_HEADERS = [
  'user-agent',
  'content-type',
  'content-length',
  'content-encoding',
  'x-forwarded-for',
];

interface SerializedRequest {
  id?: unknown;
  method?: string;
  url?: string;
  remoteAddress?: string;
  headers?: Record<string, unknown>;
}

export function requestLogFields(request: SerializedRequest): Record<string, unknown> {
  const headers: Record<string, unknown> = {};
  for (const name of LOGGED_HEADERS)
    if (request.headers?.[name] !== undefined) headers[name] = request.headers[name];
  return {
    id: request.id,
    method: request.method,
    url: request.url,
    remoteAddress: request.remoteAddress,
    headers,
  };
}

const summarised = new WeakSet<object>();

/**
 * A response that another log line already counts (wrong keys, summed per address and window): its own
 * access line goes to debug, so that a flood of them does not flood the log.
 */
export function countedElsewhere(response: object): void {
  summarised.add(response);
}

/**
 * One log line per request (method, route URL, status, time, request id) and the request id itself:
 * taken from X-Request-Id when sane, generated otherwise, and returned in the X-Request-Id header. Bodies
 * (frames) are never logged.
 */
export function httpLogger(logger: Logger): HttpLogger {
  return pinoHttp({
    logger,
    quietReqLogger: true,
    genReqId: (request: IncomingMessage, response: ServerResponse) => {
      const id = acceptRequestId(request.headers['x-request-id']) ?? randomUUID();
      response.setHeader(REQUEST_ID_HEADER, id);
      return id;
    },
    customLogLevel: (request, response, error) => {
      if (error || response.statusCode >= 500) return 'error';
      if (summarised.has(response)) return 'debug';
      if (response.statusCode >= 400) return 'warn';
      return QUIET.test(request.url ?? '') ? 'debug' : 'info';
    },
    serializers: {
      req: (request: SerializedRequest) => requestLogFields(request),
      res: (response: { statusCode?: number }) => ({ statusCode: response.statusCode }),
    },
  });
}
