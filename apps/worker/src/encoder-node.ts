import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Codec, EncodeJobData, NodeRecord } from '../../../libs/contracts/src/index.js';
import {
  BufferPool,
  ENCODE_QUEUES,
  EventLog,
  FrameStore,
  DEFAULT_FRAME_STORE_OPTIONS,
  JobStore,
  KeySpace,
  MissingFrameError,
  NodeRegistry,
  OutputStore,
  createRedisConnection,
  lockSettingsFor,
  bullConnectionOptions,
} from '../../../libs/cluster/src/index.js';
import { EncodeJobRunner, PermanentJobError, type EncoderCatalog } from './encode-job-runner.js';
import type { NodeConfig } from './node-config.js';
import { RedisJobStorage } from './redis-job-storage.js';

export interface NodeCapabilities extends EncoderCatalog {
  codecs: Codec[];
  hardware: string[];
  /** Codecs with a proven hardware encoder (all of them for a test node with --software-gpu). */
  gpuCodecs: Codec[];
}

export interface NodeLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const RETENTION_SECONDS = 3600;
const VERSION = '0.1.0';

/** One encoder node: consumes its pool's queue, keeps its registry record alive, drains on shutdown. */
export class EncoderNode {
  readonly id = randomUUID();
  private readonly keys: KeySpace;
  private readonly redis: Redis;
  private readonly registry: NodeRegistry;
  private readonly runner: EncodeJobRunner;
  private workers: Worker<EncodeJobData>[] = [];
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly startedAt = new Date().toISOString();
  private active = 0;
  private processed = 0;
  private failed = 0;
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly config: NodeConfig,
    private readonly capabilities: NodeCapabilities,
    private readonly log: NodeLogger,
  ) {
    this.keys = new KeySpace(config.queuePrefix);
    this.redis = createRedisConnection({
      url: config.redisUrl,
      role: 'worker',
      name: `node:${config.name}`,
      reconnect: { initialMs: config.reconnectDelayMs, maxMs: config.reconnectMaxMs },
    });
    this.registry = new NodeRegistry(this.redis, this.keys);
    const storage = new RedisJobStorage(
      this.keys,
      new FrameStore(this.redis, this.keys, DEFAULT_FRAME_STORE_OPTIONS),
      new OutputStore(this.redis, this.keys, RETENTION_SECONDS),
      new JobStore(this.redis, this.keys, RETENTION_SECONDS),
      new EventLog(this.redis, this.keys, RETENTION_SECONDS),
    );
    // Two frames per job slot in flight (one being encoded, one prefetched).
    const pool = new BufferPool(config.concurrency * 2 * 1920 * 1080 * 4);
    this.runner = new EncodeJobRunner(config.name, storage, capabilities, pool);
  }

  async start(): Promise<void> {
    await this.beat();
    this.heartbeat = setInterval(
      () => void this.beat(),
      Math.max(200, Math.floor(this.config.timeoutMs / 3)),
    );
    this.workers = this.queuesToServe().map((queue) => this.createWorker(queue));
    this.log.info(
      `node ${this.config.name} (${this.id}) serving ${this.queuesToServe().join(', ')} with concurrency ${this.config.concurrency}; codecs: ${this.capabilities.codecs.join(', ')}`,
    );
  }

  private queuesToServe(): string[] {
    return this.config.pool === 'gpu' ? [ENCODE_QUEUES.gpu, ENCODE_QUEUES.cpu] : [ENCODE_QUEUES.cpu];
  }

  private createWorker(queue: string): Worker<EncodeJobData> {
    const worker = new Worker<EncodeJobData>(queue, (job, _token, signal) => this.process(job, signal), {
      // Options, not a connection: BullMQ then owns (and closes) the connections it makes from them.
      connection: bullConnectionOptions({
        url: this.config.redisUrl,
        role: 'worker',
        name: `node:${this.config.name}:${queue}`,
        reconnect: { initialMs: this.config.reconnectDelayMs, maxMs: this.config.reconnectMaxMs },
      }),
      prefix: this.keys.queuePrefix,
      concurrency: this.config.concurrency,
      maxStalledCount: 2,
      ...lockSettingsFor(this.config.timeoutMs),
    });
    worker.on('failed', (job, error) => void this.onFailed(job, error));
    worker.on('error', (error) => this.log.warn(`queue ${queue}: ${error.message}`));
    return worker;
  }

  private async process(job: Job<EncodeJobData>, signal?: AbortSignal): Promise<{ outputs: number }> {
    this.active++;
    try {
      const result = await this.runner.run(job.data, { attempt: job.attemptsMade + 1, signal });
      this.processed++;
      return result;
    } catch (error) {
      if (error instanceof PermanentJobError || error instanceof MissingFrameError) {
        throw new UnrecoverableError(error.message);
      }
      throw error;
    } finally {
      this.active--;
    }
  }

  /** BullMQ's view of a failure: record it on the job when no attempt is left. */
  private async onFailed(job: Job<EncodeJobData> | undefined, error: Error): Promise<void> {
    if (!job) return;
    const attempts = job.opts.attempts ?? 1;
    const final =
      error instanceof UnrecoverableError ||
      error.name === 'UnrecoverableError' ||
      job.attemptsMade >= attempts;
    this.log.warn(`job ${job.data.jobId} attempt ${job.attemptsMade}/${attempts} failed: ${error.message}`);
    if (!final) return;
    this.failed++;
    const reason =
      job.attemptsMade >= attempts && attempts > 1
        ? `${error.message} (after ${job.attemptsMade} attempts)`
        : error.message;
    await this.runner
      .fail(job.data, reason)
      .catch((cause: Error) => this.log.error(`recording failure of ${job.data.jobId}: ${cause.message}`));
  }

  record(): NodeRecord {
    return {
      id: this.id,
      name: this.config.name,
      host: hostname(),
      pid: process.pid,
      pool: this.config.pool,
      codecs: this.capabilities.codecs,
      hardware: this.capabilities.hardware,
      gpuCodecs: this.config.pool === 'gpu' ? this.capabilities.gpuCodecs : [],
      concurrency: this.config.concurrency,
      active: this.active,
      processed: this.processed,
      failed: this.failed,
      version: VERSION,
      startedAt: this.startedAt,
      lastSeen: new Date().toISOString(),
    };
  }

  private async beat(): Promise<void> {
    try {
      await this.registry.beat(this.record(), this.config.timeoutMs);
    } catch (error) {
      this.log.warn(`heartbeat: ${(error as Error).message}`);
    }
  }

  /** Stops taking jobs, lets active ones finish within the drain timeout, deregisters, disconnects. */
  stop(): Promise<void> {
    this.stopping ??= this.drain();
    return this.stopping;
  }

  private async drain(): Promise<void> {
    this.log.info(
      `node ${this.config.name} draining (${this.active} active, up to ${this.config.drainTimeoutMs} ms)`,
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.config.drainTimeoutMs);
    });
    const closed = Promise.all(this.workers.map((worker) => worker.close())).then(() => 'closed' as const);
    if ((await Promise.race([closed, timedOut])) === 'timeout') {
      this.log.warn('drain timeout: leaving active jobs to other nodes');
      await Promise.all(this.workers.map((worker) => worker.close(true)));
    }
    clearTimeout(timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.registry.remove(this.id).catch(() => undefined);
    this.redis.disconnect();
    this.log.info(`node ${this.config.name} stopped`);
  }
}
