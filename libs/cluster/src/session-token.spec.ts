import { ConfigError } from './shared-config.js';
import { SessionTokens, clusterSecretsSetting, generateClusterSecret } from './session-token.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(40);
const claims = { stream: 's-1', node: 'n-1', epoch: 2 };

describe('SessionTokens', () => {
  it('verifies what it issued, until it expires', () => {
    let now = 1_000;
    const tokens = new SessionTokens([A], () => now);
    const { token, expiresAt } = tokens.issue(claims, 60_000);
    expect(expiresAt).toBe(61_000);
    expect(tokens.verify(token)).toEqual({ ...claims, exp: 61_000 });
    now = 61_000;
    expect(tokens.verify(token)).toBe('expired');
  });

  it('refuses a token signed with another secret, or altered', () => {
    const token = new SessionTokens([A]).issue(claims, 60_000).token;
    expect(new SessionTokens([B]).verify(token)).toBe('forged');
    const [version, body, signature] = token.split('.');
    const altered = Buffer.from(JSON.stringify({ ...claims, stream: 's-2', exp: Date.now() + 1e6 })).toString(
      'base64url',
    );
    expect(new SessionTokens([A]).verify(`${version}.${altered}.${signature}`)).toBe('forged');
    expect(new SessionTokens([A]).verify(`${version}.${body}`)).toBe('malformed');
    expect(new SessionTokens([A]).verify(undefined)).toBe('malformed');
    expect(new SessionTokens([A]).verify('x'.repeat(5000))).toBe('malformed');
  });

  it('accepts both secrets during a rotation, and signs with the first', () => {
    const old = new SessionTokens([A]).issue(claims, 60_000).token;
    const rotating = new SessionTokens([B, A]);
    expect(rotating.verify(old)).toMatchObject(claims);
    expect(new SessionTokens([B]).verify(rotating.issue(claims, 60_000).token)).toMatchObject(claims);
  });
});

describe('clusterSecretsSetting', () => {
  it('reads one or two secrets and refuses short or too many', () => {
    expect(clusterSecretsSetting({})).toBeUndefined();
    expect(clusterSecretsSetting({ CLUSTER_SECRETS: `${A}, ${B}` })).toEqual([A, B]);
    expect(() => clusterSecretsSetting({ CLUSTER_SECRETS: 'short' })).toThrow(ConfigError);
    expect(() => clusterSecretsSetting({ CLUSTER_SECRETS: [A, A, A].join(',') })).toThrow(/one or two/);
    expect(generateClusterSecret().length).toBeGreaterThanOrEqual(32);
  });
});
