import type { AcceptedJob } from '#client';
import { ServiceStack } from '#scripts/lib/stack.js';
import { bgraBatch, tempDir, waitUntil } from './support.js';

/**
 * Pools and routing with real processes. This machine has no encoder hardware, so the gpu node is a
 * test node (--software-gpu: a test flag, never a default) that takes gpu work with software encoders.
 */
const TIMEOUT_S = 2;
// Built before any connection is pooled (PITFALLS.md, "Sockets and tests").
const SMALL_BATCH = bgraBatch('h264', 160, 120, 5);
// Slow enough (640x480 at speed 0) that the gpu node is still inside a batch when it is killed: with
// 320x240 a node could finish its batch between the look and the kill on a loaded CI box.
const SLOW_BATCH = bgraBatch('h264', 640, 480, 30, { speed: 0 });

describe('gpu and cpu pools', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-gpu-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      workers: [{ name: 'cpu-1', concurrency: 1, timeoutSeconds: TIMEOUT_S }],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it('with no gpu node, auto work for a gpu-preferred codec is done by cpu nodes, and explicit gpu work is refused', async () => {
    const { request, body } = SMALL_BATCH;
    const accepted = await stack.client.submitRaw({ ...request, pool: 'auto' }, body);
    expect(accepted.pool).toBe('cpu');
    expect(await stack.client.waitFor(accepted.id)).toMatchObject({
      status: 'completed',
      node: 'cpu-1',
      pool: 'cpu',
    });
    await expect(stack.client.submitRaw({ ...request, pool: 'gpu' }, body)).rejects.toMatchObject({
      status: 422,
    });
  });

  it('a gpu node takes gpu work; when it is killed, the waiting gpu work moves to the cpu pool and completes', async () => {
    await stack.startWorker({
      name: 'gpu-1',
      pool: 'gpu',
      concurrency: 1,
      timeoutSeconds: TIMEOUT_S,
      args: ['--software-gpu'],
    });
    const { request, body } = SLOW_BATCH;
    const jobs: AcceptedJob[] = [];
    for (let index = 0; index < 5; index++)
      jobs.push(await stack.client.submitRaw({ ...request, pool: 'auto' }, body));
    expect(jobs.every((job) => job.pool === 'gpu')).toBe(true);
    await waitUntil(
      async () => {
        const first = await stack.client.job(jobs[0].id);
        return first.node === 'gpu-1' && first.status === 'active' && first.progress < 0.5;
      },
      20_000,
      'the gpu node early in its first batch',
    );

    await stack.signalWorker('gpu-1', 'SIGKILL');
    const finished = await Promise.all(jobs.map((job) => stack.client.waitFor(job.id)));
    expect(finished.map((job) => job.status)).toEqual(jobs.map(() => 'completed'));
    const movedToCpu = finished.filter((job) => job.node === 'cpu-1');
    expect(movedToCpu.length).toBeGreaterThanOrEqual(3);
    expect(movedToCpu.every((job) => job.pool === 'cpu')).toBe(true);
    // The job the gpu node held when it was killed ran again on the cpu node: a failover, on /metrics.
    const metrics = await (await fetch(`${stack.apiUrl}/metrics`)).text();
    const failovers = /^encoder_job_failovers_total\{pool="cpu"\} (\d+)$/m.exec(metrics);
    expect(Number(failovers?.[1])).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
