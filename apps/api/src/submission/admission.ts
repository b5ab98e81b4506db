import { createHash } from 'node:crypto';
import { HttpException, HttpStatus, Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { Request } from 'express';
import type { RedisClient } from '#cluster';
import { JobStore, KeySpace } from '#cluster';
import { presentedKey } from '../auth/api-key.guard.js';
import { EncodeQueue } from '../dispatch/encode-queue.js';
import { REDIS } from '../dispatch/tokens.js';
import { EventHub } from '../delivery/event-hub.js';
import { RetryLaterException } from '../common/http-errors.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';

/** 429 with Retry-After: this client has too much unfinished work. */
export class TooManyJobsException extends HttpException {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message, HttpStatus.TOO_MANY_REQUESTS);
  }
}

/** Who a request counts against: its API key (hashed), or its address when the API runs without keys. */
export function clientIdOf(request: Pick<Request, 'headers' | 'ip'>): string {
  const key = presentedKey(request);
  if (key) return `key-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
  return `ip-${(request.ip ?? 'unknown').replace(/[^0-9a-fA-F.:]/g, '')}`;
}

const DEPTH_CACHE_MS = 500;
/** Admitted jobs remembered for their release; past this the oldest are looked up in Redis instead. */
const MAX_REMEMBERED = 100_000;
const PRUNE_EVERY_MS = 5000;

/**
 * Backpressure before a byte of the body is read: 503 when the queues are deeper than the cluster can
 * drain (saturated, for everyone), 429 when one client has too many unfinished jobs (its own rate).
 */
@Injectable()
export class Admission implements OnModuleInit {
  private depth: { at: number; waiting: number } | null = null;
  /** Jobs this instance admitted and has not seen finish, with their client (oldest first). */
  private readonly admitted = new Map<string, string>();

  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly queue: EncodeQueue,
    private readonly jobs: JobStore,
    private readonly hub: EventHub,
  ) {}

  /** Finished jobs leave their client's set as their final event passes through the API. */
  onModuleInit(): void {
    this.hub.tap(({ jobId, event }) => {
      if (event.type !== 'completed' && event.type !== 'failed') return;
      void this.release(jobId).catch(() => undefined);
    });
  }

  async check(clientId: string): Promise<void> {
    const waiting = await this.waitingJobs();
    if (waiting >= this.config.maxQueueDepth) {
      throw new RetryLaterException(`the cluster is saturated: ${waiting} jobs are waiting; retry later`, 2);
    }
    const key = this.keys.clientJobs(clientId);
    let unfinished = await this.redis.zcard(key);
    if (unfinished < this.config.maxJobsPerClient) return;
    // Final events missed while this API was away leave finished jobs in the set: sweep it, at most
    // once per PRUNE_EVERY_MS per client, so that a client at its limit cannot make every request do it.
    const lock = await this.redis.set(`${key}:prune`, '1', 'PX', PRUNE_EVERY_MS, 'NX');
    if (lock === 'OK') unfinished = await this.prune(key);
    if (unfinished >= this.config.maxJobsPerClient) {
      throw new TooManyJobsException(
        `this client has ${unfinished} unfinished jobs, the limit is ${this.config.maxJobsPerClient}; retry when some have finished`,
        1,
      );
    }
  }

  async record(clientId: string, jobId: string): Promise<void> {
    this.admitted.set(jobId, clientId);
    if (this.admitted.size > MAX_REMEMBERED) this.admitted.delete(this.admitted.keys().next().value!);
    const key = this.keys.clientJobs(clientId);
    // Sent together: one round trip (the keys may be on different slots of a Redis Cluster).
    await Promise.all([
      this.redis.zadd(key, String(Date.now()), jobId),
      this.redis.expire(key, this.config.retentionSeconds),
      this.redis.set(this.keys.jobClient(jobId), clientId, 'EX', this.config.retentionSeconds),
    ]);
  }

  private async release(jobId: string): Promise<void> {
    // Jobs admitted here are known without asking Redis; another instance's are looked up.
    const clientId = this.admitted.get(jobId) ?? (await this.redis.get(this.keys.jobClient(jobId)));
    this.admitted.delete(jobId);
    if (clientId) await this.redis.zrem(this.keys.clientJobs(clientId), jobId);
  }

  private async prune(key: string): Promise<number> {
    const members = await this.redis.zrange(key, '0', '-1');
    const statuses = await Promise.all(members.map((jobId) => this.jobs.status(jobId)));
    const finished = members.filter(
      (_, index) => statuses[index] === null || this.jobs.isFinal(statuses[index]),
    );
    if (finished.length > 0) await this.redis.zrem(key, ...finished);
    return members.length - finished.length;
  }

  private async waitingJobs(): Promise<number> {
    const now = Date.now();
    if (!this.depth || now - this.depth.at > DEPTH_CACHE_MS)
      this.depth = { at: now, waiting: await this.queue.waitingCount() };
    return this.depth.waiting;
  }
}
