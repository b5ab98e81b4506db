import { ConfigError, booleanSetting, integerSetting, loadSharedConfig } from './shared-config.js';

describe('loadSharedConfig', () => {
  it('has the defaults the API and the nodes both start with', () => {
    expect(loadSharedConfig({})).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'encoder',
      retentionSeconds: 3600,
      logLevel: 'info',
      logPretty: false,
    });
  });

  it('reads the environment, an empty variable counting as unset', () => {
    expect(
      loadSharedConfig({
        REDIS_URL: 'redis-sentinel://s1:26379,s2:26379/main',
        QUEUE_PREFIX: 'enc.2',
        RETENTION_SECONDS: '120',
        LOG_LEVEL: 'DEBUG',
        LOG_PRETTY: 'yes',
      }),
    ).toEqual({
      redisUrl: 'redis-sentinel://s1:26379,s2:26379/main',
      queuePrefix: 'enc.2',
      retentionSeconds: 120,
      logLevel: 'debug',
      logPretty: true,
    });
    expect(
      loadSharedConfig({
        REDIS_URL: '',
        QUEUE_PREFIX: '',
        RETENTION_SECONDS: '',
        LOG_LEVEL: '',
        LOG_PRETTY: '',
      }),
    ).toEqual(loadSharedConfig({}));
  });

  it("takes a node's --redis and --queue-prefix over the environment", () => {
    const env = { REDIS_URL: 'redis://env:1', QUEUE_PREFIX: 'env' };
    expect(loadSharedConfig(env, { redis: 'redis://flag:2', queuePrefix: 'flag' })).toMatchObject({
      redisUrl: 'redis://flag:2',
      queuePrefix: 'flag',
    });
    expect(loadSharedConfig(env, {})).toMatchObject({ redisUrl: 'redis://env:1', queuePrefix: 'env' });
  });

  it('keeps RETENTION_SECONDS from 10 s to 7 days', () => {
    expect(loadSharedConfig({ RETENTION_SECONDS: '10' }).retentionSeconds).toBe(10);
    expect(loadSharedConfig({ RETENTION_SECONDS: '604800' }).retentionSeconds).toBe(604_800);
  });

  it.each([
    [{ RETENTION_SECONDS: '9' }, {}, 'RETENTION_SECONDS must be an integer from 10 to 604800, got "9"'],
    [
      { RETENTION_SECONDS: '604801' },
      {},
      'RETENTION_SECONDS must be an integer from 10 to 604800, got "604801"',
    ],
    [{ RETENTION_SECONDS: '1h' }, {}, 'RETENTION_SECONDS must be an integer from 10 to 604800, got "1h"'],
    [{ RETENTION_SECONDS: '60.5' }, {}, 'RETENTION_SECONDS must be an integer from 10 to 604800, got "60.5"'],
    [{ QUEUE_PREFIX: 'a b' }, {}, `QUEUE_PREFIX must be 1-64 letters, digits, '_', '.' or '-', got "a b"`],
    [{}, { queuePrefix: 'x'.repeat(65) }, `--queue-prefix must be 1-64 letters, digits, '_', '.' or '-'`],
    [
      { LOG_LEVEL: 'loud' },
      {},
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
    [{ LOG_PRETTY: 'maybe' }, {}, 'LOG_PRETTY must be true or false, got "maybe"'],
  ])('refuses %j %j, naming the setting', (env, flags, message) => {
    expect(() => loadSharedConfig(env, flags)).toThrow(ConfigError);
    expect(() => loadSharedConfig(env, flags)).toThrow(message);
  });

  it('names REDIS_URL, or --redis when the flag gave the URL', () => {
    expect(() => loadSharedConfig({ REDIS_URL: 'http://x' })).toThrow(/^REDIS_URL: .*redis:\/\//);
    expect(() => loadSharedConfig({ REDIS_URL: 'redis://fine:1' }, { redis: 'http://x' })).toThrow(
      /^--redis: .*redis:\/\//,
    );
    // An explicitly empty flag is a mistake, not "unset".
    expect(() => loadSharedConfig({}, { redis: '' })).toThrow(/^--redis: /);
  });
});

describe('integerSetting and booleanSetting', () => {
  it('fall back when unset or empty and name the setting when wrong', () => {
    expect(integerSetting({}, 'N', 7, 1, 9)).toBe(7);
    expect(integerSetting({ N: '' }, 'N', 7, 1, 9)).toBe(7);
    expect(integerSetting({ N: '9' }, 'N', 7, 1, 9)).toBe(9);
    expect(() => integerSetting({ N: '0' }, 'N', 7, 1, 9)).toThrow(
      'N must be an integer from 1 to 9, got "0"',
    );
    for (const yes of ['true', 'TRUE', '1', 'yes', 'on'])
      expect(booleanSetting({ B: yes }, 'B', false)).toBe(true);
    for (const no of ['false', '0', 'No', 'off']) expect(booleanSetting({ B: no }, 'B', true)).toBe(false);
    expect(booleanSetting({ B: '' }, 'B', true)).toBe(true);
    expect(() => booleanSetting({ B: 'maybe' }, 'B', true)).toThrow('B must be true or false, got "maybe"');
  });
});
