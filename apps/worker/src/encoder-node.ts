import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { RedisClient } from '#cluster';
import type { Codec, EncodeJobData, NodeRecord, StreamEvent, StreamParams } from '#contracts';
import {
  BufferPool,
  ENCODE_JOB_NAME,
  ENCODE_QUEUES,
  encodeJobOptions,
  EventLog,
  FrameStore,
  DEFAULT_FRAME_STORE_OPTIONS,
  JobCancellations,
  JobStore,
  KeySpace,
  MissingFrameError,
  NodeRegistry,
  OutputStore,
  StreamStore,
  commitStreamBatch,
  createRedisConnection,
  MAX_STALLED_COUNT,
  lockSettingsFor,
  bullConnectionOptions,
  nodeQueueName,
  removeFinishedCopy,
  RedisOutageLog,
  credentialsErrorFor,
  isConnectionError,
  isCredentialsError,
  SessionTokens,
  handOverLiveStream,
  resolveClusterSecrets,
} from '#cluster';
import { EncodeJobRunner, isPermanentFailure, type EncoderCatalog } from './encode-job-runner.js';
import { isBeyondLoopback, type NodeConfig } from './node-config.js';
import { FrameRate } from './frame-rate.js';
import { RedisEncodeJobIO } from './redis-encode-job-io.js';
import { LiveHandBack, LiveStreamSequencer } from './live/live-stream-sequencer.js';
import { CancelWatch } from './cancel-watch.js';
import { DataPort } from './session/data-port.js';
import { LiveSessionServer } from './session/live-session-server.js';
import { SessionFrameLog } from './session/session-frame-log.js';

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

const WATCHDOG_EVERY_MS = 5000;
const HAND_BACK_DELAY_MS = 250;
const IDLE_CLOSE_MS = 3000;
const VERSION = '0.1.0';
/** A live batch that is not the stream's next one yet is handed back for this long. */
const LIVE_WAIT_MS = 20;
const FORWARD_RETRY = { attempts: 3, backoffMs: 1000 };
/** Live-session outputs a node queues at most while Redis is away (then its sessions close with 1013). */
const SESSION_BACKLOG_FRAMES = 4096;
const SESSION_BACKLOG_BYTES = 256 * 1024 * 1024;
/** A drain lets session frames in flight settle this long before it moves their streams. */
const SESSION_SETTLE_MS = 3000;
/** How often the streams with an open session are marked active (well inside any idle timeout). */
const SESSION_ACTIVITY_MS = 1000;

/** One encoder node: consumes its pool's queue, keeps its registry record alive, drains on shutdown. */
export class EncoderNode {
  readonly id = randomUUID();
  private readonly keys: KeySpace;
  private readonly redis: RedisClient;
  /** Its own connection: a subscribed connection can run nothing else. */
  private readonly cancelSubscriber: RedisClient;
  private readonly cancels: CancelWatch;
  private readonly registry: NodeRegistry;
  private readonly runner: EncodeJobRunner;
  private readonly live: LiveStreamSequencer;
  private readonly streams: StreamStore;
  private readonly jobRecords: JobStore;
  private liveSweeper: NodeJS.Timeout | null = null;
  /** The heartbeat in flight, if any: a drain waits for it, or it would put the record back. */
  private beating: Promise<void> = Promise.resolve();
  private readonly forwardQueues = new Map<string, Queue>();
  private readonly workers = new Map<string, Worker<EncodeJobData>>();
  private readonly queues = new Map<string, Queue>();
  private heartbeat: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private idleWithWork = 0;
  private lastTakenAt = Date.now();
  private readonly throughput = new FrameRate();
  private readonly startedAt = new Date().toISOString();
  private active = 0;
  private processed = 0;
  private failed = 0;
  private stopping: Promise<void> | null = null;
  private readonly outage: RedisOutageLog;
  /**
   * Live sessions log through their own fail-fast connection: while Redis is away a commit must fail
   * at once (the output is queued on the node and sent `durable: false`), not wait for the reconnect.
   */
  private readonly sessionRedis: RedisClient | null = null;
  private readonly sessions: LiveSessionServer | null = null;
  private readonly dataPort: DataPort<unknown> | null = null;
  private dataUrl: string | undefined;
  private tokens: SessionTokens | null = null;
  private sessionActivity: NodeJS.Timeout | null = null;

  /** `onConfigError`: Redis refused the node's credentials; retrying cannot help (the process exits). */
  constructor(
    private readonly config: NodeConfig,
    private readonly capabilities: NodeCapabilities,
    private readonly log: NodeLogger,
    private readonly onConfigError: (message: string) => void = (message) => log.error(message),
  ) {
    this.keys = new KeySpace(config.queuePrefix);
    this.outage = new RedisOutageLog(config.redisUrl, log);
    this.redis = createRedisConnection({
      url: config.redisUrl,
      role: 'worker',
      name: `node:${config.name}`,
      reconnect: { initialMs: config.reconnectDelayMs, maxMs: config.reconnectMaxMs },
      onReconnect: (attempt, delayMs) => this.outage.retrying(attempt, delayMs),
    });
    this.redis.on('error', (error: Error) => this.onRedisError(error));
    this.redis.on('ready', () => this.outage.ready());
    this.cancelSubscriber = createRedisConnection({
      url: config.redisUrl,
      role: 'subscriber',
      name: `node:${config.name}:cancel`,
      reconnect: { initialMs: config.reconnectDelayMs, maxMs: config.reconnectMaxMs },
      onReconnect: (attempt, delayMs) => this.outage.retrying(attempt, delayMs),
    });
    this.cancelSubscriber.on('error', (error: Error) => this.onRedisError(error, 'cancellations'));
    this.registry = new NodeRegistry(this.redis, this.keys);
    this.jobRecords = new JobStore(this.redis, this.keys, config.retentionSeconds);
    this.cancels = new CancelWatch((jobId) => this.jobRecords.status(jobId));
    this.streams = new StreamStore(this.redis, this.keys, config.retentionSeconds);
    const storage = new RedisEncodeJobIO(
      this.keys,
      new FrameStore(this.redis, this.keys, {
        ...DEFAULT_FRAME_STORE_OPTIONS,
        ttlSeconds: config.retentionSeconds,
        // A slow upload holds a job slot at most this long without a frame landing.
        arrivalWaitMs: config.timeoutMs,
      }),
      new OutputStore(this.redis, this.keys, config.retentionSeconds),
      this.jobRecords,
      new EventLog(this.redis, this.keys, config.retentionSeconds),
    );
    // Two frames per job slot in flight (one being encoded, one prefetched), for jobs and live batches;
    // shared, so that LZ4 blocks are decompressed into them on threads of their own.
    const pool = new BufferPool(config.concurrency * 2 * 1920 * 1080 * 4, true);
    this.live = new LiveStreamSequencer(
      this.id,
      config.name,
      storage,
      this.streams,
      {
        start: (data, layout, keyframeInterval) => {
          const encoder = capabilities.encoderFor(data.codec);
          if (encoder?.kind !== 'video') return null;
          return encoder.startLive(layout, data.settings, keyframeInterval);
        },
      },
      Date.now,
      config.liveMaxContexts,
      pool,
    );
    if (config.dataPort) {
      const sessionRedis = createRedisConnection({
        url: config.redisUrl,
        role: 'producer',
        name: `node:${config.name}:sessions`,
        reconnect: { initialMs: config.reconnectDelayMs, maxMs: Math.min(config.reconnectMaxMs, 2000) },
      });
      sessionRedis.on('error', (error: Error) => this.onRedisError(error, 'sessions'));
      this.sessionRedis = sessionRedis;
      const sessionStreams = new StreamStore(sessionRedis, this.keys, config.retentionSeconds);
      const sessionOutputs = new OutputStore(sessionRedis, this.keys, config.retentionSeconds);
      const sessions: LiveSessionServer = new LiveSessionServer({
        nodeId: this.id,
        nodeName: config.name,
        window: config.liveWindow,
        verify: (token) => (this.tokens ? this.tokens.verify(token) : 'forged'),
        streams: sessionStreams,
        outputs: sessionOutputs,
        sequencer: this.live,
        startEncoder: (params) => this.startLiveEncoder(params),
        log: (): SessionFrameLog => frameLog,
        warn: (message) => log.warn(message),
      });
      const frameLog: SessionFrameLog = new SessionFrameLog(
        sessionStreams,
        {
          isReady: () => sessionRedis.status === 'ready',
          whenReady: () => readyOf(sessionRedis),
          maxQueuedFrames: SESSION_BACKLOG_FRAMES,
          maxQueuedBytes: SESSION_BACKLOG_BYTES,
        },
        sessions,
      );
      this.sessions = sessions;
      this.dataPort = new DataPort(config.dataPort, sessions) as DataPort<unknown>;
    }
    this.runner = new EncodeJobRunner(config.name, storage, capabilities, pool);
  }

  /** A live stream's encoder for its session (null: this node has no video encoder for the codec). */
  private startLiveEncoder(params: StreamParams) {
    const encoder = this.capabilities.encoderFor(params.codec);
    if (encoder?.kind !== 'video') return null;
    return encoder.startLive(
      { width: params.width, height: params.height, format: params.format },
      { quality: params.quality, speed: params.speed, fps: params.fps, oddSize: params.oddSize },
      params.keyframeInterval,
    );
  }

  /**
   * Session tokens are checked with the cluster secret: CLUSTER_SECRETS, required when the data port is
   * bound or advertised beyond loopback; on loopback, the one the cluster shares through Redis.
   */
  private async openDataPort(): Promise<void> {
    const port = this.config.dataPort;
    if (!port || !this.dataPort) return;
    const secrets = await resolveClusterSecrets(
      this.config.clusterSecrets,
      isBeyondLoopback(port),
      this.redis,
      this.keys,
    );
    this.tokens = new SessionTokens(secrets);
    this.dataUrl = await this.dataPort.listen();
    this.sessionActivity = setInterval(() => void this.markSessionsActive(), SESSION_ACTIVITY_MS);
    this.log.info(`data port for live sessions at ${this.dataUrl} (window ${this.config.liveWindow})`);
  }

  /**
   * The API counts a live stream as holding an encoder context while it had activity within the node's
   * idle timeout (placement by capacity); a session sends no batches through the API, so the node says so.
   */
  private async markSessionsActive(): Promise<void> {
    const streams = this.sessions?.openStreams ?? [];
    if (streams.length === 0 || this.sessionRedis?.status !== 'ready') return;
    const now = Date.now();
    await this.sessionRedis
      .zadd(this.keys.liveActivity, ...streams.flatMap((streamId) => [now, streamId]))
      .catch(() => undefined);
  }

  async start(): Promise<void> {
    await this.openDataPort();
    // Not awaited: like the rest of the node, it connects (and subscribes) whenever Redis is there.
    JobCancellations.listen(this.cancelSubscriber, this.keys, {
      onCancel: (jobId) => {
        if (this.cancels.cancel(jobId)) this.log.info(`job ${jobId} cancelled: stopping its encode`);
      },
      onResync: () => void this.cancels.recheck(),
    }).catch((error: Error) => this.log.warn(`cancellations not followed: ${error.message}`));
    await this.beat();
    this.heartbeat = setInterval(
      () => void this.beat(),
      Math.max(200, Math.floor(this.config.timeoutMs / 3)),
    );
    for (const queue of this.queuesToServe()) {
      this.workers.set(queue, this.createWorker(queue));
      const watch = new Queue(queue, {
        connection: this.connectionOptions(`${queue}:watch`),
        prefix: this.keys.queuePrefix,
      });
      watch.on('error', (error) => this.onRedisError(error, `queue ${queue}`));
      this.queues.set(queue, watch);
    }
    this.watchdog = setInterval(() => void this.checkWedged(), WATCHDOG_EVERY_MS);
    this.liveSweeper = setInterval(
      () => void this.live.closeIdle(this.config.liveIdleTimeoutMs),
      Math.min(5000, Math.max(250, this.config.liveIdleTimeoutMs / 2)),
    );
    this.log.info(
      `node ${this.config.name} (${this.id}) serving ${this.queuesToServe().join(', ')} with concurrency ${this.config.concurrency}, at most ${this.config.liveMaxContexts} live encoder contexts; codecs: ${this.capabilities.codecs.join(', ')}`,
    );
  }

  /** Its pool's queue (a gpu node helps the cpu pool too), and its own: the live streams pinned to it. */
  private queuesToServe(): string[] {
    const pools = this.config.pool === 'gpu' ? [ENCODE_QUEUES.gpu, ENCODE_QUEUES.cpu] : [ENCODE_QUEUES.cpu];
    return [...pools, nodeQueueName(this.id)];
  }

  /**
   * Every Redis error of the node's connections comes here: an outage is logged once for all of them
   * (and on each reconnect step), a refused password stops the node, anything else is logged with
   * where it came from. Only messages are written: an error's fields can hold the AUTH command.
   */
  private onRedisError(error: Error, source?: string): void {
    if (isCredentialsError(error))
      this.onConfigError(credentialsErrorFor(this.config.redisUrl, error).message);
    else if (isConnectionError(error)) this.outage.error(error);
    else if (source) this.log.warn(`${source}: ${error.message}`);
  }

  /** Options, not a connection: BullMQ then owns (and closes) the connections it makes from them. */
  private connectionOptions(name: string) {
    return bullConnectionOptions({
      url: this.config.redisUrl,
      role: 'worker',
      name: `node:${this.config.name}:${name}`,
      reconnect: { initialMs: this.config.reconnectDelayMs, maxMs: this.config.reconnectMaxMs },
    });
  }

  private createWorker(queue: string): Worker<EncodeJobData> {
    // A gpu node lends one slot to the cpu pool; its own pool gets its full concurrency.
    const helping = this.config.pool === 'gpu' && queue === ENCODE_QUEUES.cpu;
    const worker = new Worker<EncodeJobData>(
      queue,
      (job, token, signal) => this.process(job, token, signal),
      {
        connection: this.connectionOptions(queue),
        prefix: this.keys.queuePrefix,
        concurrency: helping ? 1 : this.config.concurrency,
        maxStalledCount: MAX_STALLED_COUNT,
        ...lockSettingsFor(this.config.timeoutMs),
      },
    );
    worker.on('failed', (job, error) => void this.onFailed(job, error));
    worker.on('error', (error) => this.onRedisError(error, `queue ${queue}`));
    return worker;
  }

  private async process(
    job: Job<EncodeJobData>,
    token?: string,
    signal?: AbortSignal,
  ): Promise<{ outputs: number }> {
    this.lastTakenAt = Date.now();
    if (!this.capabilities.encoderFor(job.data.codec)) {
      // A node restricted with --codecs shares the pool's queue: hand the job back for a node that can
      // encode it, without using up an attempt.
      await job.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
      throw new DelayedError();
    }
    this.active++;
    const cancellable = this.cancels.track(job.data.jobId, signal);
    try {
      const result =
        job.data.stream?.mode === 'live'
          ? await this.runLive(job, token, signal)
          : await this.runner.run(job.data, { attempt: job.attemptsMade + 1, signal: cancellable.signal });
      if (job.data.stream?.mode === 'batch') await commitStreamBatch(this.streamStores(), job.data);
      this.processed++;
      this.throughput.add(job.data.frames);
      return result;
    } catch (error) {
      if (error instanceof DelayedError) throw error;
      if (isPermanentFailure(error) || error instanceof MissingFrameError) {
        throw new UnrecoverableError(error.message);
      }
      throw error;
    } finally {
      cancellable.release();
      this.active--;
    }
  }

  private async runLive(job: Job<EncodeJobData>, token?: string, signal?: AbortSignal) {
    try {
      return await this.live.run(job.data, job.attemptsMade + 1, signal);
    } catch (error) {
      if (!(error instanceof LiveHandBack)) throw error;
      if (error.forwardTo && error.forwardTo !== this.id) {
        await this.forward(error.forwardTo, job.data);
        return { outputs: 0, forwarded: error.forwardTo };
      }
      await job.moveToDelayed(Date.now() + LIVE_WAIT_MS, token);
      throw new DelayedError();
    }
  }

  /** A live batch that reached this node after its stream moved: on to the stream's node. */
  private async forward(nodeId: string, data: EncodeJobData): Promise<void> {
    let queue = this.forwardQueues.get(nodeId);
    if (!queue) {
      queue = new Queue(nodeQueueName(nodeId), {
        connection: this.connectionOptions('forward'),
        prefix: this.keys.queuePrefix,
      });
      queue.on('error', (error) => this.onRedisError(error, `forward queue ${nodeId}`));
      this.forwardQueues.set(nodeId, queue);
    }
    await removeFinishedCopy(queue, data.jobId);
    await queue.add(ENCODE_JOB_NAME, data, encodeJobOptions(data.jobId, FORWARD_RETRY));
  }

  private streamStores() {
    return {
      jobRecord: (jobId: string) => this.jobRecords.get(jobId),
      commit: (streamId: string, seq: number, events: StreamEvent[]) =>
        this.streams.commit(streamId, seq, events),
    };
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
      .then(() => commitStreamBatch(this.streamStores(), job.data))
      .catch((cause: Error) => this.log.error(`recording failure of ${job.data.jobId}: ${cause.message}`));
  }

  /**
   * BullMQ workers have wedged after Redis restarts (issues 2964, 4479, 4585): connected, idle, with
   * jobs waiting, nothing taken. Two checks in a row like that and the worker is replaced.
   */
  private async checkWedged(): Promise<void> {
    if (this.stopping || this.active > 0 || Date.now() - this.lastTakenAt < WATCHDOG_EVERY_MS) {
      this.idleWithWork = 0;
      return;
    }
    try {
      let waiting = 0;
      for (const queue of this.queues.values()) {
        const counts = await queue.getJobCounts('wait', 'prioritized');
        waiting += (counts.wait ?? 0) + (counts.prioritized ?? 0);
      }
      this.idleWithWork = waiting > 0 ? this.idleWithWork + 1 : 0;
      if (this.idleWithWork < 2) return;
      this.idleWithWork = 0;
      this.log.warn(`watchdog: ${waiting} job(s) waiting and this node idle: recreating its queue workers`);
      for (const [queue, worker] of this.workers) {
        this.workers.set(queue, this.createWorker(queue));
        await worker.close(true).catch(() => undefined);
      }
    } catch {
      // Redis away: nothing to judge until it is back.
    }
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
      encodeFps: this.throughput.perSecond(),
      liveStreams: this.live.activeStreams,
      liveCapacity: this.config.liveMaxContexts,
      liveIdleTimeoutMs: this.config.liveIdleTimeoutMs,
      ...(this.dataUrl ? { dataUrl: this.dataUrl } : {}),
      version: VERSION,
      startedAt: this.startedAt,
      lastSeen: new Date().toISOString(),
    };
  }

  private beat(): Promise<void> {
    this.beating = this.registry
      .beat(this.record(), this.config.timeoutMs)
      .catch((error: Error) => this.onRedisError(error, 'heartbeat'));
    return this.beating;
  }

  /** Stops taking jobs, lets active ones finish within the drain timeout, deregisters, disconnects. */
  stop(): Promise<void> {
    this.stopping ??= this.drain();
    return this.stopping;
  }

  private async drain(): Promise<void> {
    // Idle, there is nothing to wait for: a BullMQ worker that wedged after a Redis restart may never
    // finish close(), so it only gets a moment.
    const drainMs = this.active > 0 ? this.config.drainTimeoutMs : IDLE_CLOSE_MS;
    this.log.info(`node ${this.config.name} draining (${this.active} active, up to ${drainMs} ms)`);
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.liveSweeper) clearInterval(this.liveSweeper);
    if (this.sessionActivity) clearInterval(this.sessionActivity);
    // Session streams are handed to other nodes before their sockets close (1012): the clients ask the
    // API again and find the new node at once.
    await within(
      this.sessions?.drain(
        (streamId) =>
          handOverLiveStream(this.redis, this.keys, this.registry, this.streams, streamId, this.id),
        SESSION_SETTLE_MS,
      ) ?? Promise.resolve(),
      SESSION_SETTLE_MS + IDLE_CLOSE_MS,
    );
    // Out of the registry first: the API moves this node's live streams now, not when the record expires.
    await within(this.beating, IDLE_CLOSE_MS);
    await within(
      this.registry.remove(this.id).catch(() => undefined),
      IDLE_CLOSE_MS,
    );
    if (this.heartbeat) clearInterval(this.heartbeat);
    const workers = [...this.workers.values()];
    if ((await within(Promise.all(workers.map((worker) => worker.close())), drainMs)) === TIMED_OUT) {
      if (this.active > 0) this.log.warn('drain timeout: leaving active jobs to other nodes');
      await within(Promise.all(workers.map((worker) => worker.close(true))), IDLE_CLOSE_MS);
    }
    await within(this.live.closeAll(), IDLE_CLOSE_MS);
    const queues = [...this.queues.values(), ...this.forwardQueues.values()];
    await within(Promise.all(queues.map((queue) => queue.close())), IDLE_CLOSE_MS);
    await within(this.dataPort?.close() ?? Promise.resolve(), IDLE_CLOSE_MS);
    this.cancelSubscriber.disconnect();
    this.sessionRedis?.disconnect();
    this.redis.disconnect();
    this.log.info(`node ${this.config.name} stopped`);
  }
}

const TIMED_OUT = Symbol('timed out');

/** Resolves when the connection is ready, or after a second (the caller tries again either way). */
function readyOf(redis: RedisClient): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, 1000);
    function done() {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    }
    redis.once('ready', done);
  });
}

/** The promise's value, or TIMED_OUT after `ms` (the promise keeps running). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
