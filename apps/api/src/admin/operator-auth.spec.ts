import { digestKeys } from '../auth/api-key.guard.js';
import { ADMIN_COOKIE, signSession } from './admin-session.js';
import { operatorAuthorized } from './operator-auth.js';

describe('operatorAuthorized', () => {
  const key = 'a-valid-key-of-32-characters-123';
  const keys = digestKeys([key, 'another-valid-key-1234567890']);
  const secret = 'c'.repeat(40);
  const now = 1_700_000_000_000;
  const check = (headers: Record<string, string>) => operatorAuthorized({ headers }, keys, secret, now);

  it('accepts the key as a bearer token or X-API-Key', () => {
    expect(check({ authorization: `Bearer ${key}` })).toEqual({ ok: true });
    expect(check({ 'x-api-key': key })).toEqual({ ok: true });
  });

  it('accepts a valid session cookie', () => {
    expect(check({ cookie: `other=1; ${ADMIN_COOKIE}=${signSession(secret, now, 60)}` })).toEqual({
      ok: true,
    });
  });

  it('refuses a wrong key even with a valid cookie: a presented key must be right', () => {
    const verdict = check({
      authorization: 'Bearer wrong-key-wrong-key-wrong',
      cookie: `${ADMIN_COOKIE}=${signSession(secret, now, 60)}`,
    });
    expect(verdict).toEqual({ ok: false, reason: 'the API key is not valid' });
  });

  it('refuses expired or forged cookies and bare requests, saying how to log in', () => {
    expect(check({ cookie: `${ADMIN_COOKIE}=${signSession(secret, now - 120_000, 60)}` })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/expired .*\/admin\/login/),
    });
    expect(check({ cookie: `${ADMIN_COOKIE}=${signSession('x'.repeat(40), now, 60)}` }).ok).toBe(false);
    expect(check({})).toMatchObject({ ok: false, reason: expect.stringMatching(/Bearer .*\/admin\/login/) });
  });
});
