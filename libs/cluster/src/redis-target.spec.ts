import { RedisTargetError, parseRedisTarget, redact } from './redis-target.js';

describe('parseRedisTarget', () => {
  it('reads one server, a cluster and a sentinel set', () => {
    expect(parseRedisTarget('redis://127.0.0.1:6379/0')).toEqual({
      kind: 'single',
      url: 'redis://127.0.0.1:6379/0',
    });
    expect(parseRedisTarget('rediss://:pw@cache:6380')).toMatchObject({ kind: 'single' });
    expect(parseRedisTarget('redis-cluster://a:7000,b.example:7001,[::1]:7002')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b.example', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
    expect(parseRedisTarget('redis-sentinel://user:p%40ss@s1:26379,s2:26379/my-primary')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      name: 'my-primary',
      username: 'user',
      password: 'p@ss',
    });
  });

  it.each([
    ['http://x:1', /must be one of/],
    ['redis-cluster://a:7000,b', /"b" .* is not host:port/],
    ['redis-cluster://a:99999', /is not host:port/],
    ['redis-sentinel://s1:26379', /needs the master name/],
    ['', /must be one of/],
  ])('refuses %j clearly', (url, message) => {
    expect(() => parseRedisTarget(url)).toThrow(RedisTargetError);
    expect(() => parseRedisTarget(url)).toThrow(message);
  });

  it('never shows a password in messages', () => {
    expect(redact('redis://user:secret@h:1')).toBe('redis://user:***@h:1');
    expect(() => parseRedisTarget('redis-cluster://u:secret@a:7000,b')).toThrow(/^(?!.*secret)/);
  });
});
