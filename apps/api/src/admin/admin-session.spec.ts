import {
  ADMIN_COOKIE,
  ADMIN_HOME,
  clearedSessionCookie,
  parseCookies,
  safeReturnPath,
  sessionCookie,
  sessionIdOf,
  signSession,
  verifySession,
} from './admin-session.js';

describe('admin session cookie', () => {
  const secret = 's'.repeat(43);
  const now = 1_700_000_000_000;

  it('verifies a token it signed until it expires', () => {
    const token = signSession(secret, now, 60);
    expect(verifySession(secret, token, now)).toBe(true);
    expect(verifySession(secret, token, now + 59_000)).toBe(true);
    expect(verifySession(secret, token, now + 60_000)).toBe(false);
  });

  it('carries no key material: an expiry, a nonce and an HMAC', () => {
    const token = signSession(secret, now, 60, 'nonce123');
    expect(token).toMatch(/^v1\.1700000060\.nonce123\.[A-Za-z0-9_-]{43}$/);
    expect(token).not.toContain(secret);
    expect(signSession(secret, now, 60)).not.toBe(signSession(secret, now, 60));
  });

  it('rejects another secret, a changed expiry, a changed signature and garbage', () => {
    const token = signSession(secret, now, 60, 'nonce123');
    const [version, expires, nonce, mac] = token.split('.');
    expect(verifySession('t'.repeat(43), token, now)).toBe(false);
    expect(verifySession(secret, [version, Number(expires) + 3600, nonce, mac].join('.'), now)).toBe(false);
    expect(verifySession(secret, [version, expires, 'nonce124', mac].join('.'), now)).toBe(false);
    const flipped = `${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`;
    expect(verifySession(secret, [version, expires, nonce, flipped].join('.'), now)).toBe(false);
    expect(verifySession(secret, [version, expires, nonce, mac.slice(0, 20)].join('.'), now)).toBe(false);
    for (const bad of [undefined, '', 'x', 'v1...', 'v2.1.2.3', `${token}.x`, 'a'.repeat(500)]) {
      expect(verifySession(secret, bad, now)).toBe(false);
    }
  });

  it('builds an HttpOnly, SameSite=Strict cookie, Secure on request', () => {
    const cookie = sessionCookie('abc', { maxAgeSeconds: 600, secure: false });
    const [pair, ...attributes] = cookie.split('; ');
    expect(pair).toBe(`${ADMIN_COOKIE}=abc`);
    expect(attributes.sort()).toEqual(['HttpOnly', 'Max-Age=600', 'Path=/', 'SameSite=Strict']);
    expect(cookie).not.toContain('Secure');
    expect(sessionCookie('abc', { maxAgeSeconds: 600, secure: true }).split('; ')).toContain('Secure');
    expect(clearedSessionCookie(false)).toMatch(new RegExp(`^${ADMIN_COOKIE}=; .*Max-Age=0`));
  });

  it('parses Cookie headers, first value wins, pairs without = skipped', () => {
    expect(parseCookies(undefined)).toEqual({});
    expect({ ...parseCookies('a=1; a=3; junk; c=%E0%A4%A; d=x%20y') }).toEqual({
      a: '1',
      c: '%E0%A4%A',
      d: 'x y',
    });
  });

  it('returns after login only to the operator pages of this host', () => {
    expect(safeReturnPath('/admin/queues/queue/encode.cpu?status=failed')).toBe(
      '/admin/queues/queue/encode.cpu?status=failed',
    );
    expect(safeReturnPath('/docs')).toBe('/docs');
    for (const bad of [
      undefined,
      42,
      '',
      'https://evil.example/',
      '//evil.example/admin/queues',
      '/v1/jobs',
      '/admin/queues//evil',
      '/docs\\evil',
      '/admin/queuesx',
    ]) {
      expect(safeReturnPath(bad)).toBe(ADMIN_HOME);
    }
  });
});

describe('sessionIdOf', () => {
  const secret = 's'.repeat(43);
  const now = 1_700_000_000_000;

  it('gives the id (nonce) of a valid token, null for a forged or expired one', () => {
    const token = signSession(secret, now, 60, 'session-id_1');
    expect(sessionIdOf(secret, token, now)).toBe('session-id_1');
    expect(sessionIdOf(secret, token, now + 60_000)).toBeNull();
    expect(sessionIdOf('t'.repeat(43), token, now)).toBeNull();
    expect(sessionIdOf(secret, undefined, now)).toBeNull();
  });
});
