import { EncoderApiClient, type AcceptedJob } from '#client';
import { KeySpace, createRedisConnection } from '#cluster';
import { ServiceStack } from '#scripts/lib/stack.js';
import { bgraBatch, tempDir, waitUntil } from './support.js';

/**
 * The cluster chores (gpu fallback, live supervisor, stream stall check) with two API processes on one
 * Redis: one runs them, the other does not; killed with -9, its chores move to the other, which then
 * does what they are for (here: gpu work of a gpu node that died at the same moment moves to the cpu
 * pool). Who runs them is read from each API's /metrics.
 */
const TIMEOUT_S = 2;
const CHORE_LEASE_MS = 1500;
const CHORES = ['gpu-fallback', 'live-supervisor', 'stream-stall-check'];
// Built before any connection is pooled (PITFALLS.md, "Sockets and tests").
const SLOW_BATCH = bgraBatch('h264', 320, 240, 30, { speed: 0 });

interface ChoreMetrics {
  leader: number;
  runs: Record<string, number>;
}

async function choreMetrics(apiUrl: string): Promise<ChoreMetrics> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const leader = /^encoder_chore_leader (\d+)$/m.exec(text);
  if (!leader) throw new Error(`no encoder_chore_leader in ${apiUrl}/metrics`);
  const runs: Record<string, number> = {};
  for (const chore of CHORES) {
    const line = new RegExp(`^encoder_chore_runs_total\\{chore="${chore}"\\} (\\d+)$`, 'm').exec(text);
    runs[chore] = line ? Number(line[1]) : 0;
  }
  return { leader: Number(leader[1]), runs };
}

describe('cluster chores with two API processes', () => {
  let stack: ServiceStack;
  let replica: string;
  const dir = tempDir('encoder-chores-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      env: { CHORE_LEASE_MS: String(CHORE_LEASE_MS) },
      workers: [
        { name: 'cpu-1', concurrency: 1, timeoutSeconds: TIMEOUT_S },
        { name: 'gpu-1', pool: 'gpu', concurrency: 1, timeoutSeconds: TIMEOUT_S, args: ['--software-gpu'] },
      ],
    });
    replica = await stack.startApiReplica();
  }, 90_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it('one API runs the chores at a time; killed with -9, the other takes over and gpu work still moves to cpu', async () => {
    const apis = [stack.apiUrl, replica];
    const leading = async () =>
      (await Promise.all(apis.map(choreMetrics))).findIndex(
        (metrics) => metrics.leader === 1 && CHORES.every((chore) => metrics.runs[chore] > 0),
      );
    await waitUntil(async () => (await leading()) >= 0, 30_000, 'one API to run the chores');
    const leaderIndex = await leading();
    const [leader, follower] = [apis[leaderIndex], apis[1 - leaderIndex]];

    const before = await choreMetrics(leader);
    await waitUntil(
      async () => {
        const now = await choreMetrics(leader);
        return CHORES.every((chore) => now.runs[chore] >= before.runs[chore] + 2);
      },
      30_000,
      'the leader to run every chore again',
    );
    const holder = async () => {
      const redis = createRedisConnection({ url: stack.redisUrl, role: 'worker', name: 'test' });
      try {
        return await redis.get(new KeySpace('encoder').choresLease);
      } finally {
        redis.disconnect();
      }
    };
    const firstHolder = await holder();
    expect(firstHolder).toMatch(/^.+:\d+:[0-9a-f]{8}$/);
    const idle = await choreMetrics(follower);
    expect(idle.leader).toBe(0);
    expect(idle.runs).toEqual(Object.fromEntries(CHORES.map((chore) => [chore, 0])));
    expect((await choreMetrics(leader)).leader).toBe(1);

    const client = new EncoderApiClient(follower, stack.apiKey);
    const { request, body } = SLOW_BATCH;
    const jobs: AcceptedJob[] = [];
    for (let index = 0; index < 3; index++)
      jobs.push(await client.submitRaw({ ...request, pool: 'auto' }, body));
    expect(jobs.every((job) => job.pool === 'gpu')).toBe(true);
    await waitUntil(
      async () => (await client.job(jobs[0].id)).node === 'gpu-1',
      20_000,
      'the gpu node to take gpu work',
    );

    const [apiExit, nodeExit] = await Promise.all([
      stack.signalApi(leader, 'SIGKILL'),
      stack.signalWorker('gpu-1', 'SIGKILL'),
    ]);
    expect([apiExit, nodeExit]).toEqual([null, null]);

    const finished = await Promise.all(jobs.map((job) => client.waitFor(job.id)));
    expect(finished.map((job) => job.status)).toEqual(jobs.map(() => 'completed'));
    const movedToCpu = finished.filter((job) => job.node === 'cpu-1');
    expect(movedToCpu.length).toBeGreaterThanOrEqual(2);
    expect(movedToCpu.every((job) => job.pool === 'cpu')).toBe(true);
    const after = await choreMetrics(follower);
    expect(after.leader).toBe(1);
    expect(after.runs['gpu-fallback']).toBeGreaterThan(0);
    const secondHolder = await holder();
    expect(secondHolder).toMatch(/^.+:\d+:[0-9a-f]{8}$/);
    expect(secondHolder).not.toBe(firstHolder);
  }, 180_000);
});
