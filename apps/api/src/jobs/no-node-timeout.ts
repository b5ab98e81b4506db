import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { EncodeJobData, NodeRecord, Pool } from '#contracts';
import { EventLog, JobStore, NodeRegistry } from '#cluster';
import { ClusterChores, type ClusterChore } from '../dispatch/cluster-chores.js';
import { EncodeQueue } from '../dispatch/encode-queue.js';
import { canTake } from '../dispatch/routing.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { InputStorage } from '../submission/input-storage.js';

/** Why a job that waited for a node in vain failed: what was missing, and the setting that decided it. */
export function noNodeReason(data: Pick<EncodeJobData, 'codec' | 'pool'>, waitSeconds: number): string {
  return `no live ${data.pool} node that can encode ${data.codec} started within NO_NODE_WAIT_SECONDS (${waitSeconds} s); start one (npm run worker -- --pool ${data.pool}) or check the autoscaler, then submit again`;
}

/**
 * Scale from zero: with POOL_CODECS a job is queued while its pool has no node, for a node to start.
 * One that has waited NO_NODE_WAIT_SECONDS since it was submitted, with still no live node able to
 * take it, fails with a reason that says so rather than waiting until its frames expire. Jobs waiting
 * behind busy nodes are left alone: a node that can take them is alive. A stream's batches are the
 * stream's to look after (its stall check), and are left alone too. A cluster chore (ClusterChores).
 */
@Injectable()
export class NoNodeTimeout implements ClusterChore, OnModuleInit {
  readonly name = 'no-node-timeout';
  readonly everyMs = 2000;
  private readonly logger = new Logger(NoNodeTimeout.name);

  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly registry: NodeRegistry,
    private readonly queue: EncodeQueue,
    private readonly jobStore: JobStore,
    private readonly events: EventLog,
    private readonly storage: InputStorage,
    private readonly chores: ClusterChores,
  ) {}

  onModuleInit(): void {
    this.chores.register(this);
  }

  async run(): Promise<number> {
    const waitSeconds = this.config.scaleFromZero.noNodeWaitSeconds;
    const submittedBefore = Date.now() - waitSeconds * 1000;
    let nodes: NodeRecord[] | null = null;
    let failed = 0;
    for (const pool of ['cpu', 'gpu'] as const satisfies Pool[]) {
      // The oldest first (of each state); a job left out now is looked at once those before it are gone.
      for (const job of await this.queue.waitingJobs(pool, 200)) {
        if (job.submittedAt >= submittedBefore || job.data.stream) continue;
        nodes ??= await this.registry.list();
        // Gpu work moves to cpu nodes (GpuFallback) when no gpu node is alive: a cpu node will do.
        const takers: Pool[] = pool === 'gpu' ? ['gpu', 'cpu'] : ['cpu'];
        if (nodes.some((node) => takers.some((taker) => canTake(node, taker, job.data.codec)))) continue;
        if (!(await this.queue.removeWaiting(pool, job.id))) continue;
        const reason = noNodeReason(job.data, waitSeconds);
        if (await this.jobStore.fail(job.id, reason, Date.now())) {
          await this.events.append(job.id, { type: 'failed', error: reason });
        }
        await this.storage.deleteInput(job.data).catch(() => undefined);
        failed++;
      }
    }
    if (failed > 0)
      this.logger.warn(`${failed} job(s) failed: no node able to take them started in ${waitSeconds} s`);
    return failed;
  }
}
