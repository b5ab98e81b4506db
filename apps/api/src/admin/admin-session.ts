import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseCookie, stringifySetCookie } from 'cookie';

/**
 * The dashboard's browser session: after `POST /admin/login` with an operator key, a cookie that
 * carries an expiry and a nonce (the session id) signed with HMAC-SHA256 (never the key itself). The
 * signature spares Redis a lookup for forged cookies; the session itself lives in Redis (AdminSessions),
 * so that logging out ends it. It opens the operator pages (Bull Board, the OpenAPI docs), not the /v1 API.
 */
export const ADMIN_COOKIE = 'encoder_admin';

const VERSION = 'v1';

function mac(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest();
}

/** `v1.<expires, unix seconds>.<nonce>.<hmac>`, all cookie-safe characters. */
export function signSession(
  secret: string,
  nowMs: number,
  ttlSeconds: number,
  nonce = randomBytes(12).toString('base64url'),
): string {
  const payload = `${VERSION}.${Math.floor(nowMs / 1000) + ttlSeconds}.${nonce}`;
  return `${payload}.${mac(secret, payload).toString('base64url')}`;
}

/** True for a token signed with `secret` that has not expired; constant-time on the signature. */
export function verifySession(secret: string, token: string | undefined, nowMs: number): boolean {
  return sessionIdOf(secret, token, nowMs) !== null;
}

/** The session id (the nonce) of a token signed with `secret` that has not expired, or null. */
export function sessionIdOf(secret: string, token: string | undefined, nowMs: number): string | null {
  if (!token || token.length > 200) return null;
  const parts = token.split('.');
  if (parts.length !== 4) return null;
  const [version, expires, nonce, signature] = parts;
  if (version !== VERSION || !/^\d{1,12}$/.test(expires) || !/^[A-Za-z0-9_-]{1,64}$/.test(nonce)) return null;
  const expected = mac(secret, `${version}.${expires}.${nonce}`);
  const presented = Buffer.from(signature, 'base64url');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return null;
  return Number(expires) * 1000 > nowMs ? nonce : null;
}

/** Cookie header -> name/value map; the first of repeated names wins. */
export function parseCookies(header: string | undefined): Record<string, string | undefined> {
  return header ? parseCookie(header) : {};
}

export interface CookieOptions {
  maxAgeSeconds: number;
  secure: boolean;
}

/** HttpOnly (no script reads it), SameSite=Strict (no cross-site request carries it). */
export function sessionCookie(value: string, options: CookieOptions): string {
  return stringifySetCookie({
    name: ADMIN_COOKIE,
    value,
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    maxAge: options.maxAgeSeconds,
    secure: options.secure,
  });
}

export function clearedSessionCookie(secure: boolean): string {
  return sessionCookie('', { maxAgeSeconds: 0, secure });
}

/** The operator pages a login may return to; anything else (other hosts, `//evil`) goes to the board. */
export const ADMIN_HOME = '/admin/queues';
const RETURN_PATHS = /^\/(admin\/queues|docs)(\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(\?[^\s#\\]*)?$/;

export function safeReturnPath(next: unknown): string {
  return typeof next === 'string' && RETURN_PATHS.test(next) && !next.includes('//') ? next : ADMIN_HOME;
}
