import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { JobState, Queue } from 'bullmq';
import type { RedisClient } from '../../../../libs/cluster/src/index.js';
import type { EncodeJobData, Pool } from '../../../../libs/contracts/src/index.js';
import { ENCODE_JOB_NAME, ENCODE_QUEUES, encodeJobOptions } from '../../../../libs/cluster/src/index.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';

/** The API's only contact with BullMQ: adding, finding and removing encode jobs. */
@Injectable()
export class EncodeQueue {
  private readonly queues: Record<Pool, Queue>;

  constructor(
    @InjectQueue(ENCODE_QUEUES.cpu) cpu: Queue,
    @InjectQueue(ENCODE_QUEUES.gpu) gpu: Queue,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {
    this.queues = { cpu, gpu };
  }

  async add(data: EncodeJobData, priority?: number): Promise<void> {
    await this.queues[data.pool].add(
      ENCODE_JOB_NAME,
      data,
      encodeJobOptions(
        data.jobId,
        { attempts: this.config.jobAttempts, backoffMs: this.config.jobBackoffMs },
        priority,
      ),
    );
  }

  /**
   * Moves gpu work no gpu node will take to the cpu pool: waiting jobs, and active ones whose node died
   * (their lock expired; with no gpu worker alive nothing else would notice them stalled). The copy is
   * added to the cpu queue before the original is removed, so a crash in between runs a job twice (the
   * outputs are idempotent) rather than losing it. Moved jobs never go back.
   */
  async moveGpuWorkToCpu(onMoved: (data: EncodeJobData) => Promise<void>): Promise<number> {
    const gpu = this.queues.gpu;
    const jobs = await gpu.getJobs(['waiting', 'prioritized', 'delayed', 'active'], 0, 999);
    let moved = 0;
    for (const job of jobs) {
      if (!job?.id) continue;
      if ((await job.getState()) === 'active' && (await this.isLocked(gpu, job.id))) continue;
      const data: EncodeJobData = { ...(job.data as EncodeJobData), pool: 'cpu', movedFromGpu: true };
      await this.add(data, job.opts.priority);
      await job.remove().catch(() => undefined);
      await onMoved(data);
      moved++;
    }
    return moved;
  }

  private async isLocked(queue: Queue, jobId: string): Promise<boolean> {
    return (await (await rawClientOf(queue)).exists(queue.toKey(`${jobId}:lock`))) === 1;
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

function rawClientOf(queue: Queue): Promise<RedisClient> {
  // bullmq 6 keeps the raw client on the Redis backend, outside its public interface.
  return (queue.getBackend() as unknown as { client: Promise<RedisClient> }).client;
}
