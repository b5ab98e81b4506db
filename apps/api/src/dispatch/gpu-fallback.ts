import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { JobStore, NodeRegistry } from '#cluster';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { ClusterChores, type ClusterChore } from './cluster-chores.js';
import { EncodeQueue } from './encode-queue.js';

/**
 * With no gpu node alive, work waiting in the gpu pool would rot (and the jobs of a gpu node that died
 * would stay stalled: only a live worker of a queue recovers its stalled jobs). This moves it to the cpu
 * pool once it has waited GPU_WAIT_SECONDS for a gpu node to start. A cluster chore: one API process at
 * a time does it (ClusterChores).
 */
@Injectable()
export class GpuFallback implements ClusterChore, OnModuleInit {
  readonly name = 'gpu-fallback';
  readonly everyMs = 2000;
  private readonly logger = new Logger(GpuFallback.name);

  constructor(
    private readonly registry: NodeRegistry,
    private readonly queue: EncodeQueue,
    private readonly jobs: JobStore,
    private readonly chores: ClusterChores,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  onModuleInit(): void {
    this.chores.register(this);
  }

  async run(): Promise<number> {
    const nodes = await this.registry.list();
    if (nodes.some((node) => node.pool === 'gpu')) {
      await this.queue.stopRecoveringPool('gpu');
      return 0;
    }
    const moved = await this.queue.moveGpuWorkToCpu(
      (data) => this.jobs.setPool(data.jobId, 'cpu').then(() => undefined),
      Date.now() - this.config.scaleFromZero.gpuWaitSeconds * 1000,
    );
    if (moved > 0)
      this.logger.warn(`no gpu node alive: moved ${moved} job(s) from the gpu pool to the cpu pool`);
    return moved;
  }

  async standDown(): Promise<void> {
    await this.queue.stopRecoveringPool('gpu');
  }
}
