import type { RedisClient } from './redis-connection.js';
import { LuaScript } from './lua-script.js';

describe('LuaScript', () => {
  it('runs by SHA, and sends the text only when the server answers NOSCRIPT', async () => {
    const calls: string[] = [];
    let loaded = false;
    const redis = {
      evalsha: async (sha: string, keys: number, ...rest: string[]) => {
        calls.push(`evalsha ${sha.length} ${keys} ${rest.join(' ')}`);
        if (!loaded) throw new Error('NOSCRIPT No matching script. Please use EVAL.');
        return 'ran';
      },
      eval: async (lua: string, keys: number, ...rest: string[]) => {
        calls.push(`eval ${lua} ${keys} ${rest.join(' ')}`);
        loaded = true;
        return 'ran';
      },
    } as unknown as RedisClient;
    const script = new LuaScript('return 1', 1);
    expect(await script.run(redis, ['k'], ['a'])).toBe('ran');
    expect(await script.run(redis, ['k'], ['b'])).toBe('ran');
    expect(calls).toEqual(['evalsha 40 1 k a', 'eval return 1 1 k a', 'evalsha 40 1 k b']);
  });

  it('passes other errors through and checks the key count', async () => {
    const redis = { evalsha: async () => Promise.reject(new Error('WRONGTYPE')) } as unknown as RedisClient;
    await expect(new LuaScript('return 1', 1).run(redis, ['k'], [])).rejects.toThrow('WRONGTYPE');
    await expect(new LuaScript('return 1', 2).run(redis, ['k'], [])).rejects.toThrow(/takes 2 keys/);
  });
});
