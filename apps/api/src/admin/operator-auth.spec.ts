import { Authenticator } from '../auth/authenticator.js';
import { loadApiConfig } from '../config/api-config.js';
import { ADMIN_COOKIE } from './admin-session.js';
import { operatorAuthorized, type OperatorScope } from './operator-auth.js';

describe('operatorAuthorized', () => {
  const operator = 'operator-key-of-32-characters-12';
  const tenant = 'a-valid-key-of-32-characters-123';
  const other = 'another-valid-key-1234567890';
  const sessions = { valid: (token: string | undefined) => Promise.resolve(token === 'open-session') };
  const deps = (env: Record<string, string>) => ({ auth: new Authenticator(loadApiConfig(env)), sessions });
  const withOperator = deps({ API_KEYS: `a:${tenant},b:${other}`, OPERATOR_KEYS: operator });
  const check = (
    headers: Record<string, string>,
    scope: OperatorScope = 'operators',
    against = withOperator,
  ) => operatorAuthorized({ headers, socket: { remoteAddress: '10.0.0.1' } as never }, against, scope);

  it('accepts an operator key as a bearer token or X-API-Key', async () => {
    expect(await check({ authorization: `Bearer ${operator}` })).toEqual({ ok: true });
    expect(await check({ 'x-api-key': operator })).toEqual({ ok: true });
  });

  it("refuses a tenant's key on the dashboard with 403, and takes it for the docs", async () => {
    expect(await check({ authorization: `Bearer ${tenant}` })).toMatchObject({
      ok: false,
      status: 403,
      reason: expect.stringMatching(/OPERATOR_KEYS/),
    });
    expect(await check({ authorization: `Bearer ${tenant}` }, 'keys')).toEqual({ ok: true });
  });

  it('keeps the dashboard open to the keys of a single tenant, closed to all of several without operators', async () => {
    const single = deps({ API_KEYS: `${tenant},${other}` });
    expect(await check({ authorization: `Bearer ${tenant}` }, 'operators', single)).toEqual({ ok: true });
    const several = deps({ API_KEYS: `a:${tenant},b:${other}` });
    expect(await check({ authorization: `Bearer ${tenant}` }, 'operators', several)).toMatchObject({
      status: 403,
      reason: expect.stringMatching(/without OPERATOR_KEYS/),
    });
  });

  it('accepts an open session cookie; refuses an ended or forged one, saying how to log in', async () => {
    expect(await check({ cookie: `other=1; ${ADMIN_COOKIE}=open-session` })).toEqual({ ok: true });
    expect(await check({ cookie: `${ADMIN_COOKIE}=ended-session` })).toMatchObject({
      ok: false,
      status: 401,
      reason: expect.stringMatching(/ended, expired .*\/admin\/login/),
    });
    expect(await check({})).toMatchObject({
      status: 401,
      reason: expect.stringMatching(/Bearer .*\/admin\/login/),
    });
  });

  it('refuses a wrong key even with a valid cookie: a presented key must be right', async () => {
    const verdict = await check({
      authorization: 'Bearer wrong-key-wrong-key-wrong',
      cookie: `${ADMIN_COOKIE}=open-session`,
    });
    expect(verdict).toEqual({ ok: false, status: 401, reason: 'the API key is not valid', counted: true });
  });

  it('is open when no keys are set', async () => {
    expect(await check({}, 'operators', deps({}))).toEqual({ ok: true });
  });
});
