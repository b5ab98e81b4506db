import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { digestKeys, keyMatches, presentedKey } from '../auth/api-key.guard.js';
import type { ApiConfig } from '../config/api-config.js';
import { ADMIN_COOKIE, parseCookies, verifySession } from './admin-session.js';

export interface OperatorAuthOptions {
  /** Told about refused requests (never with the key). */
  onDenied?: (request: Request, reason: string) => void;
  now?: () => number;
}

/** True when the request carries a valid API key header or a valid dashboard session cookie. */
export function operatorAuthorized(
  request: Pick<Request, 'headers'>,
  keys: Buffer[],
  cookieSecret: string,
  now: number,
): { ok: true } | { ok: false; reason: string } {
  const key = presentedKey(request);
  if (key !== null)
    return keyMatches(key, keys) ? { ok: true } : { ok: false, reason: 'the API key is not valid' };
  const session = parseCookies(request.headers.cookie)[ADMIN_COOKIE];
  if (session !== undefined) {
    return verifySession(cookieSecret, session, now)
      ? { ok: true }
      : {
          ok: false,
          reason: 'the dashboard session has expired or is not valid; log in again at /admin/login',
        };
  }
  return {
    ok: false,
    reason: 'an API key is required: Authorization: Bearer <key> (or X-API-Key), or log in at /admin/login',
  };
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/**
 * Express middleware for the routes Nest guards never see: Bull Board's router and the Swagger UI are
 * raw Express handlers. Accepts the same keys as ApiKeyGuard, by header, or the login cookie. Open when
 * no API_KEYS are set (loopback dev mode), like the API.
 */
export function operatorAuth(config: ApiConfig, options: OperatorAuthOptions = {}): RequestHandler {
  const keys = digestKeys(config.apiKeys);
  const now = options.now ?? Date.now;
  return (request: Request, response: Response, next: NextFunction) => {
    if (keys.length === 0) return next();
    const verdict = operatorAuthorized(request, keys, config.admin.cookieSecret, now());
    if (verdict.ok) return next();
    options.onDenied?.(request, verdict.reason);
    response.setHeader('WWW-Authenticate', 'Bearer realm="encoder-cluster"');
    response.setHeader('Cache-Control', 'no-store');
    if (request.method === 'GET' && request.accepts(['json', 'html']) === 'html') {
      const login = `/admin/login?next=${encodeURIComponent(request.originalUrl)}`;
      response
        .status(401)
        .type('html')
        .send(
          `<!doctype html><meta charset="utf-8"><title>Log in</title><p>${escapeHtml(verdict.reason)}.</p>` +
            `<p><a href="${escapeHtml(login)}">Log in with an API key</a></p>`,
        );
      return;
    }
    response.status(401).json({ statusCode: 401, error: 'Unauthorized', message: verdict.reason });
  };
}
