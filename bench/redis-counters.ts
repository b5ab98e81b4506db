import type { RedisClient } from '#cluster';
import { createRedisConnection, waitUntilReady } from '#cluster';

/** Redis's own counters (INFO): bytes through its sockets and append-only-file rewrites. */
export interface RedisCounters {
  netInputBytes: number;
  netOutputBytes: number;
  aofRewrites: number;
}

function field(info: string, name: string): number {
  const match = new RegExp(`^${name}:(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : NaN;
}

export class RedisCounterReader {
  private constructor(private readonly redis: RedisClient) {}

  static async connect(url: string): Promise<RedisCounterReader> {
    const redis = createRedisConnection({ url, role: 'worker', name: 'bench-counters' });
    await waitUntilReady(redis, 5000);
    return new RedisCounterReader(redis);
  }

  async read(): Promise<RedisCounters> {
    const [stats, persistence] = await Promise.all([
      this.redis.info('stats'),
      this.redis.info('persistence'),
    ]);
    return {
      netInputBytes: field(stats, 'total_net_input_bytes'),
      netOutputBytes: field(stats, 'total_net_output_bytes'),
      aofRewrites: field(persistence, 'aof_rewrites'),
    };
  }

  /** What Redis counted while `work` ran. */
  async measure<T>(work: () => Promise<T>): Promise<{ result: T; counters: RedisCounters }> {
    const before = await this.read();
    const result = await work();
    const after = await this.read();
    return {
      result,
      counters: {
        netInputBytes: after.netInputBytes - before.netInputBytes,
        netOutputBytes: after.netOutputBytes - before.netOutputBytes,
        aofRewrites: after.aofRewrites - before.aofRewrites,
      },
    };
  }

  close(): void {
    this.redis.disconnect();
  }
}
