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
   * Removes whatever outputs of a job were stored: at most one per frame (images, live packets), and a
   * video batch has only index 0. One key per command: on Redis Cluster they may be on different slots.
   */
  async deleteAll(jobId: string, frames: number): Promise<void> {
    const count = Math.max(1, frames);
    await Promise.all(
      Array.from({ length: count }, (_, index) => this.redis.unlink(this.keys.output(jobId, index))),
    );
  }
}
