import { Injectable, Logger, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { presentedKey } from '../auth/api-key.guard.js';
import { Authenticator, clientAddressOf } from '../auth/authenticator.js';
import { isRedisUnavailable, reasonPhrase } from '../common/http-errors.js';
import { countedElsewhere } from '../logging/http-logging.js';
import { ADMIN_COOKIE, parseCookies } from './admin-session.js';
import { AdminSessions } from './admin-sessions.js';

/**
 * Who may pass: `operators` (the dashboard: its pages and its API list every tenant's jobs) or any
 * valid `keys` (the API documentation, which is no one's data).
 */
export type OperatorScope = 'operators' | 'keys';

export type OperatorVerdict =
  | { ok: true }
  | {
      ok: false;
      status: 401 | 403 | 429;
      reason: string;
      retryAfterSeconds?: number;
      /** Counted in the wrong keys' summary line (Authenticator). */
      counted?: boolean;
    };

export interface OperatorAuthDeps {
  auth: Pick<Authenticator, 'enabled' | 'check' | 'keys'>;
  sessions: Pick<AdminSessions, 'valid'>;
}

/**
 * A valid key header (an operator's, for the `operators` scope) or an open dashboard session (only
 * operators can log in). A presented key must be right even with a valid cookie.
 */
export async function operatorAuthorized(
  request: Pick<Request, 'headers' | 'socket'> & { ip?: string },
  { auth, sessions }: OperatorAuthDeps,
  scope: OperatorScope,
): Promise<OperatorVerdict> {
  if (!auth.enabled) return { ok: true };
  const key = presentedKey(request);
  if (key !== null) {
    const verdict = auth.check(key, clientAddressOf(request));
    if (!verdict.ok) {
      const { status, message: reason, counted } = verdict;
      return { ok: false, status, reason, counted, ...retry(verdict) };
    }
    if (scope === 'keys' || verdict.principal.operator) return { ok: true };
    return { ok: false, status: 403, reason: dashboardRefusal(auth.keys.dashboardClosedToAll) };
  }
  const session = parseCookies(request.headers.cookie)[ADMIN_COOKIE];
  if (session !== undefined) {
    return (await sessions.valid(session))
      ? { ok: true }
      : {
          ok: false,
          status: 401,
          reason: 'the dashboard session has ended, expired or is not valid; log in again at /admin/login',
        };
  }
  return {
    ok: false,
    status: 401,
    reason: 'an API key is required: Authorization: Bearer <key> (or X-API-Key), or log in at /admin/login',
  };
}

/** Why a valid key that is not an operator's does not open the dashboard. */
export function dashboardRefusal(closedToAll: boolean): string {
  return closedToAll
    ? "the dashboard shows every tenant's jobs, and several tenants share this service without OPERATOR_KEYS: set OPERATOR_KEYS to open it"
    : "the dashboard shows every tenant's jobs: it takes an operator key (OPERATOR_KEYS), not a tenant's";
}

const retry = (verdict: { retryAfterSeconds?: number }) =>
  verdict.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: verdict.retryAfterSeconds };

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/**
 * Express middleware for the routes Nest guards never see: Bull Board's router and the Swagger UI are
 * raw Express handlers. Open when no keys are set (loopback dev mode), like the API.
 */
export function operatorAuth(
  deps: OperatorAuthDeps,
  scope: OperatorScope,
  onDenied?: (request: Request, reason: string) => void,
): RequestHandler {
  return (request: Request, response: Response, next: NextFunction) => {
    operatorAuthorized(request, deps, scope).then(
      (verdict) => {
        if (verdict.ok) return next();
        onDenied?.(request, verdict.reason);
        refuse(request, response, verdict);
      },
      (error: unknown) => {
        if (!isRedisUnavailable(error)) return next(error);
        response.setHeader('Retry-After', '2');
        response.status(503).json({
          statusCode: 503,
          error: reasonPhrase(503),
          message: 'Redis is unavailable; the dashboard session cannot be checked, retry later',
        });
      },
    );
  };
}

function refuse(
  request: Request,
  response: Response,
  verdict: Extract<OperatorVerdict, { ok: false }>,
): void {
  if (verdict.counted) countedElsewhere(response);
  if (verdict.status === 401) response.setHeader('WWW-Authenticate', 'Bearer realm="encoder-cluster"');
  if (verdict.retryAfterSeconds !== undefined)
    response.setHeader('Retry-After', String(verdict.retryAfterSeconds));
  response.setHeader('Cache-Control', 'no-store');
  if (verdict.status === 401 && request.method === 'GET' && request.accepts(['json', 'html']) === 'html') {
    const login = `/admin/login?next=${encodeURIComponent(request.originalUrl)}`;
    response
      .status(401)
      .type('html')
      .send(
        `<!doctype html><meta charset="utf-8"><title>Log in</title><p>${escapeHtml(verdict.reason)}.</p>` +
          `<p><a href="${escapeHtml(login)}">Log in with an operator key</a></p>`,
      );
    return;
  }
  response
    .status(verdict.status)
    .json({ statusCode: verdict.status, error: reasonPhrase(verdict.status), message: verdict.reason });
}

/** Bull Board's guard, as a Nest middleware so that it gets the services it needs injected. */
@Injectable()
export class BoardAuthMiddleware implements NestMiddleware {
  private readonly logger = new Logger('AdminAuth');
  private readonly handler: RequestHandler;

  constructor(auth: Authenticator, sessions: AdminSessions) {
    this.handler = operatorAuth({ auth, sessions }, 'operators', (request, reason) =>
      this.logger.debug(`${request.method} ${request.path} refused: ${reason}`),
    );
  }

  use(request: Request, response: Response, next: NextFunction): void {
    void this.handler(request, response, next);
  }
}
