import type { RedisClient } from './redis-connection.js';
import { LuaScript } from './lua-script.js';

/** A connection that records defineCommand and the calls of the commands it defined. */
function fakeConnection() {
  const definitions: Array<{ name: string; lua: string; numberOfKeys: number }> = [];
  const calls: string[] = [];
  const connection: Record<string, unknown> = {
    defineCommand(name: string, definition: { lua: string; numberOfKeys: number }) {
      definitions.push({ name, ...definition });
      connection[name] = async (...keysAndArgs: string[]) => {
        calls.push(`${name} ${keysAndArgs.join(' ')}`);
        return 'ran';
      };
    },
  };
  return { redis: connection as unknown as RedisClient, definitions, calls };
}

describe('LuaScript', () => {
  it('defines itself as an ioredis command once per connection, then runs keys then arguments', async () => {
    const script = new LuaScript('encoderTest', 'return 1', 1);
    const first = fakeConnection();
    const second = fakeConnection();
    expect(await script.run(first.redis, ['k'], ['a'])).toBe('ran');
    expect(await script.run(first.redis, ['k'], ['b', 'c'])).toBe('ran');
    expect(await script.run(second.redis, ['j'], [])).toBe('ran');
    expect(first.definitions).toEqual([{ name: 'encoderTest', lua: 'return 1', numberOfKeys: 1 }]);
    expect(first.calls).toEqual(['encoderTest k a', 'encoderTest k b c']);
    expect(second.definitions).toHaveLength(1);
    expect(second.calls).toEqual(['encoderTest j']);
  });

  it('checks the key count before sending anything', async () => {
    const { redis, calls } = fakeConnection();
    await expect(new LuaScript('encoderTest', 'return 1', 2).run(redis, ['k'], [])).rejects.toThrow(
      /takes 2 keys/,
    );
    expect(calls).toEqual([]);
  });
});
