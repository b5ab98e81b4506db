import type { RedisClient } from './redis-connection.js';
import type { KeySpace } from './keys.js';

/**
 * Tells the nodes that a job was cancelled, so that the one encoding it stops. A pub/sub hint only: the
 * job's record (failed) is the truth, and a node that may have missed a message reads it again.
 */
export class JobCancellations {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
  ) {}

  async announce(jobId: string): Promise<void> {
    await this.redis.publish(this.keys.cancelChannel, jobId);
  }

  /**
   * Subscribes `subscriber` (a connection of its own) to cancellations: `onCancel` gets each job id,
   * and `onResync` is called after every reconnect, when messages may have been missed.
   */
  static async listen(
    subscriber: RedisClient,
    keys: KeySpace,
    handlers: { onCancel: (jobId: string) => void; onResync: () => void },
  ): Promise<void> {
    let connectedOnce = subscriber.status === 'ready';
    subscriber.on('message', (channel: string, jobId: string) => {
      if (channel === keys.cancelChannel) handlers.onCancel(jobId);
    });
    subscriber.on('ready', () => {
      if (connectedOnce) handlers.onResync();
      connectedOnce = true;
    });
    await subscriber.subscribe(keys.cancelChannel);
  }
}
