import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Queue, type Job, type JobState } from 'bullmq';
import type { RedisClient } from '#cluster';
import type { EncodeJobData, Pool } from '#contracts';
import {
  ENCODE_JOB_NAME,
  ENCODE_QUEUES,
  KeySpace,
  bullConnectionOptions,
  encodeJobOptions,
  nodeQueueName,
  removeFinishedCopy,
} from '#cluster';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { StalledJobRecovery } from './stalled-job-recovery.js';

/** The API's only contact with BullMQ: adding, finding and removing encode jobs. */
@Injectable()
export class EncodeQueue implements OnModuleDestroy {
  private readonly queues: Record<Pool, Queue>;
  /** One queue per node that has live streams, made on first use. */
  private readonly nodeQueues = new Map<string, Queue>();
  /** Stands in for the dead nodes of a queue, so that their jobs come back from `active`. */
  private readonly recovery: StalledJobRecovery;

  constructor(
    @InjectQueue(ENCODE_QUEUES.cpu) cpu: Queue,
    @InjectQueue(ENCODE_QUEUES.gpu) gpu: Queue,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly keys: KeySpace,
  ) {
    this.queues = { cpu, gpu };
    this.recovery = new StalledJobRecovery(
      (name) => bullConnectionOptions({ url: config.redisUrl, role: 'worker', name }),
      keys.queuePrefix,
    );
    // Without a listener BullMQ prints a connection error whole, the AUTH command and its password
    // included; Redis being away is reported by the health checks and answered with 503.
    for (const queue of [cpu, gpu]) queue.on('error', () => undefined);
  }

  async onModuleDestroy(): Promise<void> {
    await this.recovery.unwatchAll();
    await Promise.all([...this.nodeQueues.values()].map((queue) => queue.close().catch(() => undefined)));
  }

  async add(data: EncodeJobData, priority?: number): Promise<void> {
    await this.addTo(this.queues[data.pool], data, priority);
  }

  /** Queues a live stream's batch on the queue of the node the stream is pinned to. */
  async addToNode(nodeId: string, data: EncodeJobData): Promise<void> {
    await this.addTo(this.nodeQueue(nodeId), data);
  }

  private async addTo(queue: Queue, data: EncodeJobData, priority?: number): Promise<void> {
    await queue.add(
      ENCODE_JOB_NAME,
      data,
      encodeJobOptions(
        data.jobId,
        { attempts: this.config.jobAttempts, backoffMs: this.config.jobBackoffMs },
        priority,
      ),
    );
  }

  private nodeQueue(nodeId: string): Queue {
    let queue = this.nodeQueues.get(nodeId);
    if (!queue) {
      queue = new Queue(nodeQueueName(nodeId), {
        connection: bullConnectionOptions({
          url: this.config.redisUrl,
          role: 'producer',
          name: `api:node-queue`,
        }),
        prefix: this.keys.queuePrefix,
      });
      queue.on('error', () => undefined);
      this.nodeQueues.set(nodeId, queue);
    }
    return queue;
  }

  /**
   * Moves the work left on a dead node's queue to the queue that `destination` names for each job, in
   * stream order; `destination` returns null to leave a job where it is for now. Jobs the node had
   * taken come back to `wait` through BullMQ's stalled-job check once their lock expires
   * (StalledJobRecovery), and are moved on a later pass. Copy first, then remove: a crash in between
   * runs a batch twice (the stream delivers it once), never loses it. Returns how many jobs are still
   * on the queue.
   */
  async drainNodeQueue(
    deadNodeId: string,
    destination: (data: EncodeJobData) => Promise<string | null>,
  ): Promise<{ moved: number; left: number }> {
    const queue = this.nodeQueue(deadNodeId);
    await this.recovery.watch(queue.name);
    const jobs = (await queue.getJobs(['waiting', 'prioritized', 'delayed'], 0, 9999)).filter(
      (job) => job?.id,
    );
    jobs.sort((a, b) => (a.data.stream?.seq ?? 0) - (b.data.stream?.seq ?? 0));
    let moved = 0;
    for (const job of jobs) {
      const target = await destination(job.data as EncodeJobData);
      if (!target) continue;
      await this.requeueOnNode(target, job.data as EncodeJobData);
      // 0 when a worker took it meanwhile (locked): it then runs twice, which delivery absorbs.
      await queue.remove(job.id!);
      moved++;
    }
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
    return { moved, left: Object.values(counts).reduce((sum, count) => sum + count, 0) };
  }

  /** A node thought dead is alive again: its own workers look after its queue. */
  async stopRecoveringNode(nodeId: string): Promise<void> {
    await this.recovery.unwatch(nodeQueueName(nodeId));
  }

  /** A node of the pool is alive: its workers look after the pool's stalled jobs. */
  async stopRecoveringPool(pool: Pool): Promise<void> {
    await this.recovery.unwatch(this.queues[pool].name);
  }

  private async requeueOnNode(nodeId: string, data: EncodeJobData): Promise<void> {
    const queue = this.nodeQueue(nodeId);
    await removeFinishedCopy(queue, data.jobId);
    await this.addTo(queue, data);
  }

  /** Deletes the queue of a node that is gone for good (nothing left on it, no stream pinned to it). */
  async forgetNodeQueue(nodeId: string): Promise<void> {
    const queue = this.nodeQueue(nodeId);
    await this.recovery.unwatch(queue.name);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
    this.nodeQueues.delete(nodeId);
  }

  /**
   * Moves gpu work no gpu node will take to the cpu pool: what is waiting, and what a gpu node that died
   * had taken, once BullMQ's stalled-job check (StalledJobRecovery; with no gpu worker alive nothing
   * else would run it) has put it back in `wait`. The copy is added to the cpu queue before the
   * original is removed, so a crash in between runs a job twice (the outputs are idempotent) rather
   * than losing it. Moved jobs never go back.
   */
  async moveGpuWorkToCpu(
    onMoved: (data: EncodeJobData) => Promise<void>,
    submittedBefore = Infinity,
  ): Promise<number> {
    const gpu = this.queues.gpu;
    await this.recovery.watch(gpu.name);
    const jobs = await gpu.getJobs(['waiting', 'prioritized', 'delayed'], 0, 999);
    let moved = 0;
    for (const job of jobs) {
      if (!job?.id) continue;
      // GPU_WAIT_SECONDS: younger gpu work waits for a gpu node to start (and shows on the gpu pool's signal).
      if (submittedOf(job) >= submittedBefore) continue;
      const data: EncodeJobData = { ...(job.data as EncodeJobData), pool: 'cpu', movedFromGpu: true };
      await this.add(data, job.opts.priority);
      await gpu.remove(job.id);
      await onMoved(data);
      moved++;
    }
    return moved;
  }

  /** Whether a job is on a queue, waiting, delayed or active: on a pool's, or on one of these nodes'. */
  async holds(jobId: string, nodeIds: string[]): Promise<boolean> {
    const queues = [...this.all(), ...nodeIds.map((nodeId) => this.nodeQueue(nodeId))];
    for (const queue of queues) {
      const state = await queue.getJobState(jobId);
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'active') {
        return true;
      }
      if (state === 'waiting-children') return true;
    }
    return false;
  }

  /**
   * The jobs of a pool that no node has taken yet (waiting, prioritized, delayed for a retry), at most
   * `limit` of them, with when each was submitted: for the pool's autoscaling signal and the no-node wait.
   */
  async waitingJobs(
    pool: Pool,
    limit = 1000,
  ): Promise<{ id: string; submittedAt: number; data: EncodeJobData }[]> {
    const jobs = await this.queues[pool].getJobs(['waiting', 'prioritized', 'delayed'], 0, limit - 1, true);
    return jobs
      .filter((job) => job?.id)
      .map((job) => ({ id: job.id!, submittedAt: submittedOf(job), data: job.data as EncodeJobData }));
  }

  /**
   * Each pool's demand, for autoscalers: jobs not yet taken (waiting, prioritized, or delayed for a
   * retry), jobs active, and when the oldest waiting job was submitted (null: none waits). The oldest
   * is looked for at the head of the wait list and among the first 100 prioritized and delayed jobs.
   */
  async poolLoad(): Promise<PoolLoad[]> {
    return Promise.all(
      (Object.entries(this.queues) as [Pool, Queue][]).map(async ([pool, queue]) => {
        const counts = await queue.getJobCounts('wait', 'prioritized', 'delayed', 'active');
        const heads = [
          ...(await queue.getJobs(['wait'], 0, 0, true)),
          ...(await queue.getJobs(['prioritized', 'delayed'], 0, 99, true)),
        ].filter((job) => job?.id);
        return {
          pool,
          waiting: (counts.wait ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0),
          active: counts.active ?? 0,
          oldestSubmittedAt: heads.length > 0 ? Math.min(...heads.map(submittedOf)) : null,
        };
      }),
    );
  }

  /** Jobs not yet taken by a node, over all pools. */
  async waitingCount(): Promise<number> {
    let waiting = 0;
    for (const queue of Object.values(this.queues)) {
      const counts = await queue.getJobCounts('wait', 'prioritized', 'delayed');
      waiting += Object.values(counts).reduce((sum, count) => sum + count, 0);
    }
    return waiting;
  }

  /** Removes a job that no node has taken yet; false when it is active or gone. */
  async removeWaiting(pool: Pool, jobId: string): Promise<boolean> {
    const job = await this.queues[pool].getJob(jobId);
    if (!job) return false;
    const state = await job.getState();
    if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
    await job.remove();
    return true;
  }

  all(): Queue[] {
    return Object.values(this.queues);
  }

  /** Job counts per queue and state (for /metrics). */
  async jobCounts(states: JobState[]): Promise<{ queue: string; counts: Record<string, number> }[]> {
    return Promise.all(
      this.all().map(async (queue) => ({ queue: queue.name, counts: await queue.getJobCounts(...states) })),
    );
  }

  /**
   * Readiness: each queue's own connection accepts a write (fails while it is disconnected, on a
   * read-only replica, or when Redis is out of memory under noeviction).
   */
  async probeWritable(): Promise<void> {
    await Promise.all(
      this.all().map(async (queue) => {
        const client = await rawClientOf(queue);
        await client.set(queue.toKey('ready-probe'), String(Date.now()), 'PX', 60_000);
      }),
    );
  }

  /** The queues' Redis connections, once established (for connection metrics). */
  async connections(): Promise<{ queue: string; client: RedisClient }[]> {
    return Promise.all(
      this.all().map(async (queue) => ({ queue: queue.name, client: await rawClientOf(queue) })),
    );
  }
}

export interface PoolLoad {
  pool: Pool;
  waiting: number;
  active: number;
  oldestSubmittedAt: number | null;
}

/** When a job was submitted: its own createdAt (kept when it moves between queues), else BullMQ's. */
function submittedOf(job: Job): number {
  return (job.data as Partial<EncodeJobData>).createdAt ?? job.timestamp;
}

function rawClientOf(queue: Queue): Promise<RedisClient> {
  // The Redis backend's documented escape hatch (typed as BullMQ's client interface, which ioredis
  // implements); used for a readiness write and connection metrics, never for BullMQ's own keys.
  return (queue.getBackend() as unknown as { client: Promise<RedisClient> }).client;
}
