import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
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
}
