import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { LuaScript } from './lua-script.js';
import type { RedisClient } from './redis-connection.js';

/** Takes the key when it is free, or extends it when this holder's token is in it. */
const TAKE_OR_RENEW = new LuaScript(
  'leaseTakeOrRenew',
  `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`,
  1,
);

/** Deletes the key only while it still holds this holder's token (never a successor's). */
const RELEASE = new LuaScript(
  'leaseRelease',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  1,
);

/**
 * One holder at a time for a Redis key: whoever takes it (SET NX PX with a token of its own) holds it
 * while it renews, and loses it when it stops renewing for `ttlMs` (a killed process) or releases it.
 * The holder counts its hold from the moment it sent the command, so it stops thinking it holds the
 * lease before Redis lets the key expire (clock drift between the two aside).
 */
export class LeaderLease {
  /** Who holds it, readable in Redis: host, process id, and a random part unique to this instance. */
  readonly token = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private heldUntil = 0;

  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
    readonly ttlMs: number,
  ) {
    if (!(Number.isInteger(ttlMs) && ttlMs > 0)) throw new Error(`lease ttlMs must be a positive integer`);
  }

  /** Takes or renews the lease; true while this instance holds it. A Redis error counts as not taken. */
  async acquire(): Promise<boolean> {
    const sentAt = performance.now();
    try {
      const taken = (await TAKE_OR_RENEW.run(this.redis, [this.key], [this.token, String(this.ttlMs)])) === 1;
      this.heldUntil = taken ? sentAt + this.ttlMs : 0;
    } catch {
      // Unreachable Redis: keep the hold counted from the last renewal; it runs out by itself.
    }
    return this.held();
  }

  /** Whether this instance holds the lease now (as of its last successful renewal). */
  held(now = performance.now()): boolean {
    return now < this.heldUntil;
  }

  /** Lets go, so that another holder can take it at once rather than after the ttl. */
  async release(): Promise<void> {
    this.heldUntil = 0;
    await RELEASE.run(this.redis, [this.key], [this.token]);
  }

  /** The token of whoever holds the key now, if anyone. */
  async holder(): Promise<string | null> {
    return this.redis.get(this.key);
  }
}
