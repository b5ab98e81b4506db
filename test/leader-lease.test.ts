import {
  EmbeddedRedis,
  LeaderLease,
  createRedisConnection,
  type RedisClient,
  waitUntilReady,
} from '#cluster';
import { tempDir, waitUntil } from './support.js';

/** The chores lease against a real Redis: one holder at a time, handed over on release or on expiry. */
describe('LeaderLease', () => {
  const dir = tempDir('encoder-lease-');
  let redis: EmbeddedRedis;
  let a: RedisClient;
  let b: RedisClient;

  beforeAll(async () => {
    redis = new EmbeddedRedis({ port: 0, dataDir: dir.path });
    const url = await redis.start();
    a = createRedisConnection({ url, role: 'worker', name: 'lease-a' });
    b = createRedisConnection({ url, role: 'worker', name: 'lease-b' });
  });

  afterAll(async () => {
    a?.disconnect();
    b?.disconnect();
    await redis?.stop();
    dir.remove();
  });

  it('one holder at a time; renewing keeps it; releasing hands it over at once', async () => {
    const first = new LeaderLease(a, 'test:lease:1', 10_000);
    const second = new LeaderLease(b, 'test:lease:1', 10_000);
    expect(await first.acquire()).toBe(true);
    expect(await second.acquire()).toBe(false);
    expect(await first.acquire()).toBe(true);
    expect(second.held()).toBe(false);
    expect(await second.holder()).toBe(first.token);

    await first.release();
    expect(first.held()).toBe(false);
    expect(await second.acquire()).toBe(true);
    expect(await first.acquire()).toBe(false);
    // A release by a former holder never deletes its successor's lease.
    await first.release();
    expect(await first.holder()).toBe(second.token);
  });

  it('a holder that stops renewing (a killed process) loses the lease after its ttl, to the next taker', async () => {
    const dead = new LeaderLease(a, 'test:lease:2', 300);
    const next = new LeaderLease(b, 'test:lease:2', 300);
    expect(await dead.acquire()).toBe(true);
    expect(await next.acquire()).toBe(false);
    await waitUntil(() => next.acquire(), 10_000, 'the lease to expire and be taken');
    expect(await next.holder()).toBe(next.token);
    await waitUntil(() => !dead.held(), 10_000, 'the old holder to count its hold as over');
    expect(await dead.acquire()).toBe(false);
  });

  it('counts its hold as over while Redis is unreachable, once the ttl has passed', async () => {
    const url = redis.url;
    const lonely = createRedisConnection({ url, role: 'producer', name: 'lease-c' });
    try {
      await waitUntilReady(lonely, 10_000);
      const lease = new LeaderLease(lonely, 'test:lease:3', 400);
      expect(await lease.acquire()).toBe(true);
      lonely.disconnect();
      // The failed renewal keeps the hold counted from the last success, then it runs out.
      await lease.acquire();
      await waitUntil(async () => !(await lease.acquire()), 10_000, 'the hold to run out');
    } finally {
      lonely.disconnect();
    }
  });
});
