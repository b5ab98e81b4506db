import { KeySpace, type RedisClient } from '#cluster';
import type { ApiConfig } from '../config/api-config.js';
import { ClusterChores, type ClusterChore } from './cluster-chores.js';

/** A Redis stand-in that answers the lease's two commands as the test says. */
function fakeRedis() {
  const state = { free: true, released: 0 };
  const redis = {
    defineCommand: () => undefined,
    leaseTakeOrRenew: () => Promise.resolve(state.free ? 1 : 0),
    leaseRelease: () => Promise.resolve(++state.released),
  };
  return { state, redis: redis as unknown as RedisClient };
}

function chore(name: string) {
  const seen = { runs: 0, standDowns: 0 };
  const value: ClusterChore = {
    name,
    everyMs: 5,
    run: () => Promise.resolve(seen.runs++),
    standDown: () => void seen.standDowns++,
  };
  return { seen, value };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 10) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('ClusterChores', () => {
  const config = { choreLeaseMs: 300 } as ApiConfig;

  it('runs the chores only while it holds the lease, stands them down when it is lost, releases it on stop', async () => {
    const { state, redis } = fakeRedis();
    state.free = false;
    const chores = new ClusterChores(redis, config, new KeySpace('test'));
    const a = chore('a');
    const b = chore('b');
    chores.register(a.value);
    chores.register(b.value);
    chores.onApplicationBootstrap();
    try {
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(chores.isLeading()).toBe(false);
      expect([a.seen.runs, b.seen.runs]).toEqual([0, 0]);

      state.free = true;
      await until(() => a.seen.runs > 2 && b.seen.runs > 2, 'both chores to run');
      expect(chores.isLeading()).toBe(true);
      expect(chores.runCounts().get('a')).toBeGreaterThan(2);
      // A run that returns a number adds it to the chore's items (run k of the fake returns k).
      const completed = chores.runCounts().get('a')!;
      expect(chores.itemCounts().get('a')).toBe((completed * (completed - 1)) / 2);

      state.free = false;
      await until(() => !chores.isLeading() && a.seen.standDowns === 1, 'the chores to stand down');
      expect(b.seen.standDowns).toBe(1);
      const runs = a.seen.runs;
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(a.seen.runs).toBe(runs);

      state.free = true;
      await until(() => chores.isLeading(), 'the lease to be taken again');
    } finally {
      await chores.onModuleDestroy();
    }
    expect(state.released).toBe(1);
    expect(a.seen.standDowns).toBe(2);
  });

  it('a chore that fails is logged and tried again on its next tick', async () => {
    const { redis } = fakeRedis();
    const chores = new ClusterChores(redis, config, new KeySpace('test'));
    let calls = 0;
    chores.register({
      name: 'flaky',
      everyMs: 5,
      run: () => (++calls === 1 ? Promise.reject(new Error('Redis away')) : Promise.resolve()),
    });
    chores.onApplicationBootstrap();
    try {
      await until(() => (chores.runCounts().get('flaky') ?? 0) >= 1, 'a run after the failure');
      expect(calls).toBeGreaterThanOrEqual(2);
    } finally {
      await chores.onModuleDestroy();
    }
  });
});
