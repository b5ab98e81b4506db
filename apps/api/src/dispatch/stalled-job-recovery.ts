import { Worker, type ConnectionOptions } from 'bullmq';
import { MAX_STALLED_COUNT } from '#cluster';

/** How often an abandoned queue is looked at: a dead node's job is back in `wait` within about twice this. */
const RECOVERY_CHECK_MS = 1000;

/**
 * BullMQ returns a dead worker's active jobs to `wait` (once their lock has expired) only from a live
 * worker of the same queue. A queue whose every node died has none, so the API stands in: a worker that
 * never takes a job (no processor, never run) and only runs BullMQ's own stalled-job check. Nothing
 * here reads BullMQ's lock keys; the movers then move what is waiting.
 */
export class StalledJobRecovery {
  private readonly workers = new Map<string, { worker: Worker; connection: ConnectionOptions }>();

  constructor(
    private readonly connection: (name: string) => ConnectionOptions,
    private readonly prefix: string,
  ) {}

  /** Starts looking after a queue (again a no-op while it is looked after). */
  async watch(queueName: string): Promise<void> {
    if (this.workers.has(queueName)) return;
    const connection = this.connection(`api:stalled-recovery`);
    const worker = new Worker(queueName, null, {
      connection,
      prefix: this.prefix,
      name: 'api-stalled-recovery',
      autorun: false,
      stalledInterval: RECOVERY_CHECK_MS,
      maxStalledCount: MAX_STALLED_COUNT,
    });
    // Redis being away is reported by the health checks; the check resumes once it is back.
    worker.on('error', () => undefined);
    this.workers.set(queueName, { worker, connection });
    await worker.startStalledCheckTimer();
  }

  async unwatch(queueName: string): Promise<void> {
    const watched = this.workers.get(queueName);
    if (!watched) return;
    this.workers.delete(queueName);
    await watched.worker.close().catch(() => undefined);
    // On Redis Cluster the connection is an instance handed over, which BullMQ does not close.
    const handedOver = watched.connection as { disconnect?: () => void };
    if (typeof handedOver.disconnect === 'function') handedOver.disconnect();
  }

  async unwatchAll(): Promise<void> {
    await Promise.all([...this.workers.keys()].map((queueName) => this.unwatch(queueName)));
  }
}
