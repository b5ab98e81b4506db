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

  /** Removes outputs `indexes` of a job at once (one key each; each in the job's slot). */
  async delete(jobId: string, indexes: number[]): Promise<void> {
    if (indexes.length > 0) await this.redis.del(...indexes.map((index) => this.keys.output(jobId, index)));
  }
}
