import { loadSharedConfig } from '#cluster/shared-config.js';
import { ConfigError, adminCookieSecret, loadApiConfig } from './api-config.js';

describe('operations settings', () => {
  const key = 'k'.repeat(32);

  it('has defaults: info logs, metrics on, docs and dashboard behind the key, read-only board', () => {
    const config = loadApiConfig({});
    expect(config).toMatchObject({
      logLevel: 'info',
      logPretty: false,
      metricsEnabled: true,
      docsPublic: false,
    });
    expect(config.admin).toMatchObject({ sessionTtlSeconds: 43_200, cookieSecure: false, readOnly: true });
  });

  it('reads booleans strictly and says which setting is wrong', () => {
    expect(
      loadApiConfig({ METRICS_ENABLED: 'false', DOCS_PUBLIC: '1', ADMIN_READ_ONLY: 'no' }),
    ).toMatchObject({
      metricsEnabled: false,
      docsPublic: true,
      admin: { readOnly: false },
    });
    expect(() => loadApiConfig({ METRICS_ENABLED: 'maybe' })).toThrow(
      new ConfigError('METRICS_ENABLED must be true or false, got "maybe"'),
    );
  });

  it('reads the settings it shares with the nodes as they do (the same values, the same errors)', () => {
    const env = { REDIS_URL: 'redis://r:1', QUEUE_PREFIX: 'p', RETENTION_SECONDS: '120', LOG_PRETTY: 'on' };
    expect(loadApiConfig(env)).toMatchObject(loadSharedConfig(env));
    expect(() => loadApiConfig({ RETENTION_SECONDS: '5' })).toThrow(
      new ConfigError('RETENTION_SECONDS must be an integer from 10 to 604800, got "5"'),
    );
  });

  it('reads the chores lease period, 5 s by default, and refuses one too short to renew', () => {
    expect(loadApiConfig({}).choreLeaseMs).toBe(5000);
    expect(loadApiConfig({ CHORE_LEASE_MS: '1500' }).choreLeaseMs).toBe(1500);
    expect(() => loadApiConfig({ CHORE_LEASE_MS: '100' })).toThrow(
      new ConfigError('CHORE_LEASE_MS must be an integer from 300 to 600000, got "100"'),
    );
  });

  it('validates LOG_LEVEL and the session settings', () => {
    expect(loadApiConfig({ LOG_LEVEL: 'DEBUG' }).logLevel).toBe('debug');
    expect(() => loadApiConfig({ LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL must be one of fatal, error/);
    expect(() => loadApiConfig({ ADMIN_SESSION_TTL_SECONDS: '5' })).toThrow(
      /ADMIN_SESSION_TTL_SECONDS must be an integer from 60/,
    );
    expect(() => loadApiConfig({ ADMIN_COOKIE_SECRET: 'short' })).toThrow(
      /ADMIN_COOKIE_SECRET must be at least 32/,
    );
  });

  it('derives the cookie secret from the keys unless given; a key change ends old sessions', () => {
    const given = 'g'.repeat(32);
    expect(loadApiConfig({ ADMIN_COOKIE_SECRET: given }).admin.cookieSecret).toBe(given);
    const derived = adminCookieSecret({}, [key, 'm'.repeat(32)]);
    expect(derived).toBe(adminCookieSecret({}, ['m'.repeat(32), key]));
    expect(derived).not.toContain(key);
    expect(derived).not.toBe(adminCookieSecret({}, [key]));
    expect(loadApiConfig({ API_KEYS: key }).admin.cookieSecret).toBe(adminCookieSecret({}, [key]));
  });

  it('reads tenants and operator keys, and the limit on wrong keys', () => {
    const config = loadApiConfig({
      API_KEYS: `team-a:${key}, ${key}b`,
      OPERATOR_KEYS: `${key}op`,
      AUTH_FAILURE_LIMIT: '5',
      AUTH_WINDOW_SECONDS: '30',
    });
    expect(config.tenantKeys).toEqual([
      { tenant: 'team-a', key },
      { tenant: 'default', key: `${key}b` },
    ]);
    expect(config.operatorKeys).toEqual([{ tenant: 'operator', key: `${key}op` }]);
    expect(config.apiKeys).toEqual([key, `${key}b`, `${key}op`]);
    expect(config).toMatchObject({ authFailureLimit: 5, authFailureWindowSeconds: 30 });
    expect(loadApiConfig({})).toMatchObject({ authFailureLimit: 20, authFailureWindowSeconds: 60 });
    expect(() => loadApiConfig({ AUTH_FAILURE_LIMIT: '0' })).toThrow(/AUTH_FAILURE_LIMIT must be an integer/);
    expect(() => loadApiConfig({ OPERATOR_KEYS: 'ops:short' })).toThrow(/^OPERATOR_KEYS entries/);
  });

  it('refuses one key for two tenants, or as both an API and an operator key', () => {
    expect(() => loadApiConfig({ API_KEYS: `a:${key},b:${key}` })).toThrow(/a key is given twice/);
    expect(() => loadApiConfig({ API_KEYS: key, OPERATOR_KEYS: key })).toThrow(ConfigError);
    expect(loadApiConfig({ API_KEYS: `${key},${key}` }).apiKeys).toEqual([key]);
  });
});
