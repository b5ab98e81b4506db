import type { RedisClient } from './redis-connection.js';

type ScriptCommand = (...keysAndArgs: (string | Buffer)[]) => Promise<unknown>;

/**
 * A Lua script run as an ioredis custom command (`defineCommand`), defined on each connection at its
 * first use: ioredis sends the text once per socket, then only its SHA (EVALSHA), and the text again
 * after a NOSCRIPT (a restarted or flushed server, another node of a cluster). These scripts run on
 * every job event and record update, so their text should not travel with each call.
 */
export class LuaScript {
  private readonly definedOn = new WeakSet<RedisClient>();

  /** `name`: the command's name on the connection; it must not be one of Redis's own. */
  constructor(
    private readonly name: string,
    private readonly lua: string,
    private readonly numberOfKeys: number,
  ) {}

  async run(redis: RedisClient, keys: string[], args: (string | Buffer)[]): Promise<unknown> {
    if (keys.length !== this.numberOfKeys)
      throw new Error(`script takes ${this.numberOfKeys} keys, got ${keys.length}`);
    if (!this.definedOn.has(redis)) {
      redis.defineCommand(this.name, { lua: this.lua, numberOfKeys: this.numberOfKeys });
      this.definedOn.add(redis);
    }
    return (redis as unknown as Record<string, ScriptCommand>)[this.name](...keys, ...args);
  }
}
