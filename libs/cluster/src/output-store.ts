import type { RedisClient } from './redis-connection.js';
import type { KeySpace } from './keys.js';
import { sendDirect } from './zero-copy-command.js';

/** Encoded outputs, one binary value per (job, index): a re-run overwrites, never duplicates. */
export class OutputStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly retentionSeconds: number,
  ) {}

  async put(jobId: string, index: number, data: Buffer): Promise<void> {
    await sendDirect(this.redis, 'set', [this.keys.output(jobId, index), data, 'EX', this.retentionSeconds]);
  }

  get(jobId: string, index: number): Promise<Buffer | null> {
    return this.redis.getBuffer(this.keys.output(jobId, index));
  }

  /**
   * Removes whatever outputs of a job were stored, `count` at most (maxOutputsOf the job), in one
   * command: a job's keys share its hash tag, so they are in one slot on Redis Cluster too.
   */
  async deleteAll(jobId: string, count: number): Promise<void> {
    const keys = Array.from({ length: Math.max(1, count) }, (_, index) => this.keys.output(jobId, index));
    await this.redis.unlink(...keys);
  }
}
