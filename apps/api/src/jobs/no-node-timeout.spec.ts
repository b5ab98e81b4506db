import type { EventLog, JobStore, NodeRegistry } from '#cluster';
import type { Codec, EncodeJobData, NodeRecord, Pool } from '#contracts';
import { nodeRecord } from '#contracts/testing/node-record.js';
import type { ClusterChores } from '../dispatch/cluster-chores.js';
import type { EncodeQueue } from '../dispatch/encode-queue.js';
import type { ApiConfig } from '../config/api-config.js';
import type { InputStorage } from '../submission/input-storage.js';
import { NoNodeTimeout } from './no-node-timeout.js';

const WAIT_SECONDS = 60;

function job(
  jobId: string,
  pool: Pool,
  codec: Codec,
  ageSeconds: number,
  extra: Partial<EncodeJobData> = {},
) {
  const data = { jobId, pool, codec, createdAt: Date.now() - ageSeconds * 1000, ...extra } as EncodeJobData;
  return { id: jobId, submittedAt: data.createdAt, data };
}

/** The chore over fakes: queues holding `waiting`, a registry of `nodes`; records what it failed. */
function chore(waiting: ReturnType<typeof job>[], nodes: NodeRecord[]) {
  const failed: { jobId: string; reason: string }[] = [];
  const events: string[] = [];
  const deleted: string[] = [];
  const queue = {
    waitingJobs: (pool: Pool) => Promise.resolve(waiting.filter((entry) => entry.data.pool === pool)),
    removeWaiting: (_pool: Pool, jobId: string) => Promise.resolve(jobId !== 'taken-meanwhile'),
  };
  const jobStore = {
    fail: (jobId: string, reason: string) => {
      failed.push({ jobId, reason });
      return Promise.resolve(true);
    },
  };
  const eventLog = { append: (jobId: string) => Promise.resolve(void events.push(jobId)) };
  const storage = { deleteInput: (data: EncodeJobData) => Promise.resolve(void deleted.push(data.jobId)) };
  const config = { scaleFromZero: { poolCodecs: null, noNodeWaitSeconds: WAIT_SECONDS, gpuWaitSeconds: 0 } };
  const timeout = new NoNodeTimeout(
    config as unknown as ApiConfig,
    { list: () => Promise.resolve(nodes) } as unknown as NodeRegistry,
    queue as unknown as EncodeQueue,
    jobStore as unknown as JobStore,
    eventLog as unknown as EventLog,
    storage as unknown as InputStorage,
    { register: () => undefined } as unknown as ClusterChores,
  );
  return { timeout, failed, events, deleted };
}

describe('NoNodeTimeout', () => {
  it('fails a job that waited NO_NODE_WAIT_SECONDS with no live node able to take it, saying so', async () => {
    const { timeout, failed, events, deleted } = chore(
      [job('old', 'cpu', 'vp8', 61), job('young', 'cpu', 'vp8', 50)],
      [],
    );
    expect(await timeout.run()).toBe(1);
    expect(failed).toEqual([
      {
        jobId: 'old',
        reason:
          'no live cpu node that can encode vp8 started within NO_NODE_WAIT_SECONDS (60 s); start one (npm run worker -- --pool cpu) or check the autoscaler, then submit again',
      },
    ]);
    expect(events).toEqual(['old']);
    expect(deleted).toEqual(['old']);
  });

  it('leaves jobs a live node can take (busy nodes are not missing nodes), and stream batches', async () => {
    const cpu = nodeRecord({ name: 'c', pool: 'cpu', codecs: ['jpeg', 'h264'] });
    const { timeout, failed } = chore(
      [
        job('cpu-jpeg', 'cpu', 'jpeg', 600),
        job('gpu-h264', 'gpu', 'h264', 600), // moves to the cpu node (GpuFallback)
        job('batch', 'cpu', 'vp9', 600, { stream: { streamId: 's', seq: 0, mode: 'batch', firstFrame: 0 } }),
        job('cpu-vp9', 'cpu', 'vp9', 600),
        job('taken-meanwhile', 'cpu', 'vp9', 600),
      ],
      [cpu],
    );
    expect(await timeout.run()).toBe(1);
    expect(failed.map((entry) => entry.jobId)).toEqual(['cpu-vp9']);
  });
});
