import { probeVideo } from '#codecs/testing/media-check.js';
import type { AcceptedJob, JobEventWithId } from '#client';
import type { JobView } from '#contracts';
import { ServiceStack } from '#scripts/lib/stack.js';
import { bgraBatch, tempDir, waitUntil } from './support.js';

/**
 * Fault tests with real processes: several encoder nodes on one redis-server, killed, drained, and the
 * Redis restarted under them. Every acknowledged job must complete, each output delivered once.
 */
const TIMEOUT_S = 2;
const FRAMES = 30;
// Built before any connection is pooled (PITFALLS.md, "Sockets and tests").
/**
 * Slow H.264 batches (640x480, speed 0 = slowest preset), so that nodes are busy when the fault comes:
 * at 320x240 a node could finish a batch between a look at it and its kill on a loaded CI box.
 */
const SLOW_BATCH = bgraBatch('h264', 640, 480, FRAMES, { speed: 0, quality: 70 });
const SMALL_JPEG = bgraBatch('jpeg', 64, 48, 1);

describe('encoder cluster under faults', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-faults-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      workers: [
        { name: 'node-a', concurrency: 1, timeoutSeconds: TIMEOUT_S },
        { name: 'node-b', concurrency: 1, timeoutSeconds: TIMEOUT_S },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  async function submitBatches(count: number): Promise<AcceptedJob[]> {
    const { request, body } = SLOW_BATCH;
    const accepted: AcceptedJob[] = [];
    for (let index = 0; index < count; index++) accepted.push(await stack.client.submitRaw(request, body));
    return accepted;
  }

  /** Follows every job to its end, counting output events per job and index. */
  async function expectAllCompleted(jobs: AcceptedJob[]): Promise<Map<string, JobEventWithId[]>> {
    const eventsByJob = new Map<string, JobEventWithId[]>();
    await Promise.all(
      jobs.map(async ({ id }) => {
        const events: JobEventWithId[] = [];
        const job = await stack.client.waitFor(id, (event) => events.push(event));
        eventsByJob.set(id, events);
        expect({ id, status: job.status, error: job.error }).toEqual({
          id,
          status: 'completed',
          error: null,
        });
        expect(events.filter((event) => event.type === 'output')).toHaveLength(1);
        const { data } = await stack.client.output(id, 0);
        const probe = await probeVideo(data);
        expect({ id, frames: probe.frames, keyFrame: probe.firstFrame.keyFrame }).toEqual({
          id,
          frames: FRAMES,
          keyFrame: true,
        });
      }),
    );
    return eventsByJob;
  }

  const nodeNames = async () => (await stack.client.nodes()).map((node) => node.name).sort();
  const activeOn = async (name: string) =>
    (await stack.client.nodes()).find((node) => node.name === name && node.active > 0) !== undefined;

  it('kill -9 of a node mid-batch: its jobs finish elsewhere, each output once, and it leaves /v1/nodes', async () => {
    let killed = false;
    try {
      const jobs = await submitBatches(6);
      await waitUntil(() => activeOn('node-a'), 20_000, 'node-a to be busy');
      // Killed early in a batch (less than half of it encoded), so that it cannot finish the batch in the
      // moment between this look and the kill; one that did anyway (a loaded machine) is told apart by
      // its finish time.
      const onA = async () =>
        (await Promise.all(jobs.map(({ id }) => stack.client.job(id)))).filter(
          (job) => job.status === 'active' && job.node === 'node-a' && job.progress < 0.5,
        );
      let interrupted: JobView[] = [];
      await waitUntil(async () => (interrupted = await onA()).length > 0, 20_000, 'node-a early in a batch');
      const code = await stack.signalWorker('node-a', 'SIGKILL');
      const killedAt = Date.now();
      killed = true;
      expect(code).toBeNull();
      const goneAfter = await waitUntil(
        async () => !(await nodeNames()).includes('node-a'),
        TIMEOUT_S * 3000,
        'node-a to leave the registry',
      );
      expect(goneAfter).toBeLessThanOrEqual(TIMEOUT_S * 1000 + 1500);
      await expectAllCompleted(jobs);
      let moved = 0;
      for (const { id } of interrupted) {
        const job = await stack.client.job(id);
        const finishedBeforeKill = job.node === 'node-a' && Date.parse(job.finishedAt ?? '') <= killedAt;
        if (job.node === 'node-b') moved++;
        else
          expect({ id, node: job.node, finishedBeforeKill }).toEqual({
            id,
            node: 'node-a',
            finishedBeforeKill: true,
          });
      }
      expect(moved).toBeGreaterThan(0);
    } finally {
      // The next tests expect both nodes, whatever happened here.
      if (killed) await stack.startWorker({ name: 'node-a', concurrency: 1, timeoutSeconds: TIMEOUT_S });
    }
  }, 120_000);

  it('SIGTERM drains: the active job completes on the draining node, which exits 0 and deregisters at once', async () => {
    const jobs = await submitBatches(2);
    // Wait on the job records themselves: the drained job must be known, not guessed from a heartbeat.
    const activeOnB = async () =>
      (await Promise.all(jobs.map(({ id }) => stack.client.job(id)))).find(
        (job) => job.node === 'node-b' && job.status === 'active',
      );
    await waitUntil(async () => (await activeOnB()) !== undefined, 20_000, 'a job active on node-b');
    const draining = await activeOnB();
    expect(draining).toBeDefined();
    const code = await stack.signalWorker('node-b', 'SIGTERM');
    expect(code).toBe(0);
    expect(await nodeNames()).not.toContain('node-b');
    await expectAllCompleted(jobs);
    expect((await stack.client.job(draining!.id)).node).toBe('node-b');
    await stack.startWorker({ name: 'node-b', concurrency: 1, timeoutSeconds: TIMEOUT_S });
  }, 120_000);

  it('Redis shut down and restarted mid-run: 503 + Retry-After meanwhile, every acknowledged job completes', async () => {
    const jobs = await submitBatches(4);
    await waitUntil(
      async () => (await activeOn('node-a')) || (await activeOn('node-b')),
      20_000,
      'a node to be busy',
    );
    await stack.redis!.stop();
    const { request, body } = SMALL_JPEG;
    const refused = await fetch(`${stack.apiUrl}/v1/jobs?codec=jpeg&width=64&height=48&format=bgra`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await fetch(`${stack.apiUrl}/health/ready`)).status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await stack.redis!.start();
    await waitUntil(() => stack.client.ready(), 20_000, 'the API to see Redis again');
    await expectAllCompleted(jobs);
    const after = await stack.client.submitRaw(request, body);
    expect((await stack.client.waitFor(after.id)).status).toBe('completed');
  }, 180_000);
});
