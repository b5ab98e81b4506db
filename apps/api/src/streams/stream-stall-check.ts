import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { RedisClient } from '#cluster';
import { JobStore, KeySpace, StreamStore, batchEvents } from '#cluster';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { ClusterChores, type ClusterChore } from '../dispatch/cluster-chores.js';
import { EncodeQueue } from '../dispatch/encode-queue.js';
import { REDIS } from '../dispatch/tokens.js';
import { IdempotencyStore } from '../submission/idempotency.js';

/**
 * A stream delivers in order, so one batch that never finishes would hold back every later one. A batch
 * the stream has waited on for STREAM_STALL_MS is looked at: on a queue (waiting for a node, or being
 * encoded), it is left alone; finished but not handed to the stream (its node died in between), it is
 * delivered from its job record; on no queue at all (the API that acknowledged it died before queueing
 * it), it is delivered as `batch-failed`, and the stream goes on. A cluster chore: one API process at a
 * time runs it (ClusterChores), so each stream is watched by one observer.
 */
@Injectable()
export class StreamStallCheck implements ClusterChore, OnModuleInit {
  readonly name = 'stream-stall-check';
  readonly everyMs: number;
  private readonly logger = new Logger(StreamStallCheck.name);
  /** Per stream, the cursor last seen and since when. */
  private readonly seen = new Map<string, { cursor: number; since: number }>();

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly keys: KeySpace,
    private readonly streams: StreamStore,
    private readonly jobs: JobStore,
    private readonly queue: EncodeQueue,
    private readonly chores: ClusterChores,
    private readonly idempotency: IdempotencyStore,
  ) {
    this.everyMs = Math.max(100, Math.floor(config.streamStallMs / 4));
  }

  onModuleInit(): void {
    this.chores.register(this);
  }

  run(): Promise<number> {
    return this.check();
  }

  /** Another API process watches the streams now; what this one saw would be stale if it leads again. */
  standDown(): void {
    this.seen.clear();
  }

  async check(now = Date.now()): Promise<number> {
    let repaired = 0;
    const open = await this.redis.smembers(this.keys.openStreams);
    for (const id of [...this.seen.keys()]) if (!open.includes(id)) this.seen.delete(id);
    for (const streamId of open) {
      if (await this.checkStream(streamId, now)) repaired++;
    }
    return repaired;
  }

  private async checkStream(streamId: string, now: number): Promise<boolean> {
    const record = await this.streams.get(streamId);
    if (!record || record.state === 'ended') {
      await this.redis.srem(this.keys.openStreams, streamId);
      return false;
    }
    const last = this.seen.get(streamId);
    if (record.cursor >= record.nextSeq || !last || last.cursor !== record.cursor) {
      this.seen.set(streamId, { cursor: record.cursor, since: now });
      return false;
    }
    if (now - last.since < this.config.streamStallMs) return false;
    const seq = record.cursor;
    const jobId = await this.streams.jobOf(streamId, seq);
    const nodeIds = record.params.mode === 'live' ? await this.redis.smembers(this.keys.liveNodes) : [];
    // Either pool: gpu work may have been moved to the cpu pool.
    if (jobId && (await this.queue.holds(jobId, nodeIds))) return false;
    const job = jobId ? await this.jobs.get(jobId) : null;
    if (job && (job.status === 'completed' || job.status === 'failed')) {
      await this.streams.commit(streamId, seq, batchEvents(job.data, job));
      this.logger.warn(`stream ${streamId}: batch ${seq} was finished but not delivered; delivered it now`);
    } else {
      const error = 'lost before it was queued (the API that acknowledged it stopped)';
      if (jobId) await this.jobs.fail(jobId, error, now);
      await this.streams.commit(streamId, seq, [
        { type: 'batch-failed', seq, jobId: jobId ?? '', frames: job?.data.frames ?? 0, error },
      ]);
      // A client still retrying that batch with its key makes a new one.
      const key = await this.streams.keyOf(streamId, seq);
      if (key) await this.idempotency.abandon({ streamId }, key);
      this.logger.warn(`stream ${streamId}: batch ${seq} ${error}`);
    }
    this.seen.delete(streamId);
    return true;
  }
}
