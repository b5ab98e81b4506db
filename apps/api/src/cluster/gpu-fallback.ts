import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { RedisClient } from '../../../../libs/cluster/src/index.js';
import { JobStore, KeySpace, NodeRegistry } from '../../../../libs/cluster/src/index.js';
import { EncodeQueue } from './encode-queue.js';
import { REDIS } from './tokens.js';

const CHECK_EVERY_MS = 2000;

/**
 * With no gpu node alive, work waiting in the gpu pool would rot (and the jobs of a gpu node that died
 * would stay stalled: only a live worker of a queue recovers its stalled jobs). This moves it to the cpu
 * pool. One API instance at a time does it (a short Redis lock), so replicas do not race.
 */
@Injectable()
export class GpuFallback implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(GpuFallback.name);
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly registry: NodeRegistry,
    private readonly queue: EncodeQueue,
    private readonly jobs: JobStore,
    private readonly keys: KeySpace,
    @Inject(REDIS) private readonly redis: RedisClient,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.check(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async check(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const nodes = await this.registry.list();
      if (nodes.some((node) => node.pool === 'gpu')) return 0;
      const lock = await this.redis.set(
        `${this.keys.prefix}:gpu-fallback`,
        String(process.pid),
        'PX',
        CHECK_EVERY_MS * 2,
        'NX',
      );
      if (lock !== 'OK') return 0;
      const moved = await this.queue.moveGpuWorkToCpu((data) =>
        this.jobs.setPool(data.jobId, 'cpu').then(() => undefined),
      );
      if (moved > 0)
        this.logger.warn(`no gpu node alive: moved ${moved} job(s) from the gpu pool to the cpu pool`);
      return moved;
    } catch (error) {
      this.logger.warn(`gpu fallback check failed: ${(error as Error).message}`);
      return 0;
    } finally {
      this.running = false;
    }
  }
}
