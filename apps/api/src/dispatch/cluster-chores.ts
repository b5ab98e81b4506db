import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import type { RedisClient } from '#cluster';
import { KeySpace, LeaderLease } from '#cluster';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { REDIS } from './tokens.js';

/** Work for the whole cluster that one API process does on a timer (moving work off dead nodes...). */
export interface ClusterChore {
  /** For logs and the `encoder_chore_runs_total` metric. */
  readonly name: string;
  readonly everyMs: number;
  /** A number: how many jobs or streams this run moved or failed (`encoder_chore_items_total`). */
  run(): Promise<unknown>;
  /** This process stopped running the chores: drop what earlier runs observed or opened. */
  standDown?(): Promise<void> | void;
}

/**
 * Runs the cluster chores in one API process at a time, whichever holds the chores lease in Redis. The
 * others keep trying to take it, so when the holder dies another one runs the chores about one lease
 * period later; a holder that stops cleanly releases it at once. The chores' moves are idempotent
 * (copy then remove, compare-and-set), so the short overlap a paused holder may cause when it wakes up
 * after losing the lease costs a repeated step, never lost work.
 */
@Injectable()
export class ClusterChores implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ClusterChores.name);
  private readonly lease: LeaderLease;
  private readonly chores: ClusterChore[] = [];
  private readonly runs = new Map<string, number>();
  private readonly items = new Map<string, number>();
  private readonly busy = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private leading = false;
  private renewing = false;
  private stopped = false;

  constructor(@Inject(REDIS) redis: RedisClient, @Inject(API_CONFIG) config: ApiConfig, keys: KeySpace) {
    this.lease = new LeaderLease(redis, keys.choresLease, config.choreLeaseMs);
  }

  /** Called by each chore while the modules start; the timers start once they all have. */
  register(chore: ClusterChore): void {
    this.chores.push(chore);
    this.runs.set(chore.name, 0);
    this.items.set(chore.name, 0);
  }

  onApplicationBootstrap(): void {
    this.every(Math.max(50, Math.floor(this.lease.ttlMs / 3)), () => this.renew());
    for (const chore of this.chores) this.every(chore.everyMs, () => this.tick(chore));
    void this.renew();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    if (!this.leading) return;
    await this.standDown('this API is stopping', 'log');
    await this.lease.release().catch(() => undefined);
  }

  /** Whether this process runs the chores now. */
  isLeading(): boolean {
    return this.leading && this.lease.held();
  }

  /** Completed runs of each chore in this process since it started. */
  runCounts(): ReadonlyMap<string, number> {
    return this.runs;
  }

  /** Jobs or streams each chore moved or failed in this process since it started (failovers, for dashboards). */
  itemCounts(): ReadonlyMap<string, number> {
    return this.items;
  }

  private every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => void task(), ms);
    timer.unref();
    this.timers.push(timer);
  }

  private async renew(): Promise<void> {
    if (this.renewing || this.stopped) return;
    this.renewing = true;
    try {
      const held = await this.lease.acquire();
      if (this.stopped) {
        // Taken while this process was stopping: hand it over now rather than after the lease period.
        if (held) await this.lease.release().catch(() => undefined);
        return;
      }
      if (held && !this.leading) {
        this.leading = true;
        this.logger.log(`this API runs the cluster chores now (lease ${this.lease.token})`);
      } else if (!held && this.leading) {
        await this.standDown('the chores lease was lost (Redis unreachable, or this process stalled)');
      }
    } finally {
      this.renewing = false;
    }
  }

  private async tick(chore: ClusterChore): Promise<void> {
    if (this.stopped || !this.isLeading() || this.busy.has(chore.name)) return;
    this.busy.add(chore.name);
    try {
      const done = await chore.run();
      this.runs.set(chore.name, (this.runs.get(chore.name) ?? 0) + 1);
      if (typeof done === 'number') this.items.set(chore.name, (this.items.get(chore.name) ?? 0) + done);
    } catch (error) {
      this.logger.warn(`cluster chore ${chore.name} failed: ${(error as Error).message}`);
    } finally {
      this.busy.delete(chore.name);
    }
  }

  private async standDown(why: string, level: 'log' | 'warn' = 'warn'): Promise<void> {
    this.leading = false;
    this.logger[level](`this API stops running the cluster chores: ${why}`);
    for (const chore of this.chores) {
      try {
        await chore.standDown?.();
      } catch (error) {
        this.logger.warn(
          `cluster chore ${chore.name} did not stand down cleanly: ${(error as Error).message}`,
        );
      }
    }
  }
}
