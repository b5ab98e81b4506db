import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { RedisClient } from '#cluster';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LoggedJobEvent, NodeRecord } from '#contracts';
import { JobStore, KeySpace, NodeRegistry } from '#cluster';
import { ClusterChores } from '../dispatch/cluster-chores.js';
import { EncodeQueue, type PoolLoad } from '../dispatch/encode-queue.js';
import { REDIS, SUBSCRIBER } from '../dispatch/tokens.js';
import { EventHub } from '../delivery/event-hub.js';
import { QUEUE_STATES, jobSample, metricName, type JobSample } from './metric-labels.js';
import { RestartTracker } from './restart-tracker.js';

const POOLS = ['cpu', 'gpu'] as const;
/** Why live streams move (LiveMoveReason, and a draining node's hand-over). */
const LIVE_MOVE_REASONS = ['unreachable', 'expired', 'drain'] as const;

interface Snapshot {
  queues: { queue: string; counts: Record<string, number> }[] | Error;
  nodes: NodeRecord[] | Error;
  pools: PoolLoad[] | Error;
}
const COLLECT_TIMEOUT_MS = 2000;
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Makers of the per-job metrics of `registry`: labelled by codec and pool, fed by observeJob. */
function jobMetrics(registry: Registry) {
  const labelNames = ['codec', 'pool'] as const;
  return {
    counter: (name: string, help: string) =>
      new Counter({ name: metricName(name), help, labelNames, registers: [registry] }),
    histogram: (name: string, help: string) =>
      new Histogram({
        name: metricName(name),
        help,
        labelNames,
        buckets: DURATION_BUCKETS,
        registers: [registry],
      }),
  };
}

/**
 * The API's Prometheus registry (its own, not prom-client's global one).
 *
 * - Queue depths and live nodes are read from Redis when Prometheus scrapes.
 * - Job outcomes happen in the worker processes: the API counts them from the `completed`/`failed`
 *   events that every worker already publishes on the one job-events channel (EventHub's subscription),
 *   reading the job record for codec, pool, timings and sizes. The event log records a job's final event
 *   once, so a job is counted once per API instance.
 */
@Injectable()
export class MetricsService implements OnModuleInit, OnModuleDestroy {
  readonly registry = new Registry();
  private readonly logger = new Logger('Metrics');
  private untap: (() => void) | null = null;
  private scrape: { at: number; snapshot: Promise<Snapshot> } | null = null;
  private readonly connections = new Map<string, { status: string }>();
  private readonly job = jobMetrics(this.registry);

  readonly jobsCompleted = this.job.counter('jobs_completed_total', 'Jobs completed by the encoder nodes');

  readonly jobsFailed = this.job.counter(
    'jobs_failed_total',
    'Jobs that failed for good (attempts used up, bad input, or cancelled by the client)',
  );

  private readonly processing = this.job.histogram(
    'job_processing_seconds',
    "A node's time on a finished job: start of its last attempt to its end (completed and failed jobs)",
  );

  private readonly encodeDuration = this.job.histogram(
    'job_encode_duration_seconds',
    'Time inside the encoder (sharp, ffmpeg) of completed jobs, as the node timed it',
  );

  private readonly queueWait = this.job.histogram(
    'job_queue_wait_seconds',
    'Time completed jobs waited from submission until a node started them, as the node timed it',
  );

  private readonly latency = this.job.histogram(
    'job_latency_seconds',
    'End-to-end time of completed jobs, from submission (createdAt) to the last output (finishedAt)',
  );

  private readonly frames = this.job.counter('frames_encoded_total', 'Frames of completed jobs');

  private readonly inputBytes = this.job.counter(
    'input_bytes_total',
    'Raw frame bytes of completed jobs (as stored in Redis)',
  );

  private readonly outputs = this.job.counter(
    'outputs_total',
    'Encoded outputs of completed jobs (one per frame for images, one per job for video)',
  );

  private readonly outputBytes = this.job.counter('output_bytes_total', 'Encoded bytes of completed jobs');

  private readonly restarts = new RestartTracker();

  private readonly failovers = new Counter({
    name: metricName('job_failovers_total'),
    help: 'Jobs started again on a node after the node running them was lost (killed or hung: BullMQ stalled-job recovery), by the pool that ran them again',
    labelNames: ['pool'],
    registers: [this.registry],
  });

  private readonly redisReconnects = new Counter({
    name: metricName('redis_reconnects_total'),
    help: "Reconnect attempts of the API's Redis connections (ioredis 'reconnecting' events)",
    labelNames: ['connection'],
    registers: [this.registry],
  });

  /** The API's probes of a node's data port that a client reported unreachable, by result. */
  readonly nodeProbes = new Histogram({
    name: metricName('session_node_probe_seconds'),
    help: "Time of the API's health probes of a reported node's data port, by result (answered, silent)",
    labelNames: ['result'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  /** Live sessions this instance relays now (SessionRelay keeps it). */
  readonly sessionRelays = new Gauge({
    name: metricName('session_relays'),
    help: 'Live sessions this API instance relays now (GET /v1/streams/:id/session)',
    registers: [this.registry],
  });

  readonly httpRequests = new Counter({
    name: metricName('http_requests_total'),
    help: 'HTTP requests answered, by route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: metricName('http_request_duration_seconds'),
    help: 'HTTP response time, by route pattern (SSE streams count until they end)',
    labelNames: ['method', 'route'],
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });

  constructor(
    private readonly queue: EncodeQueue,
    private readonly nodeRegistry: NodeRegistry,
    private readonly hub: EventHub,
    private readonly jobs: JobStore,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(SUBSCRIBER) private readonly subscriber: RedisClient,
    chores: ClusterChores,
    keys: KeySpace,
  ) {
    // Collected on scrape, all from one snapshot of Redis per scrape (so that the success gauge and the
    // values agree); `this` inside prom-client's collect() is the metric.
    const snapshot = () => this.snapshot();
    const connections = this.connections;
    new Gauge({
      name: metricName('metrics_collect_success'),
      help: '1 when this scrape could read the collector from Redis (within 2 s), 0 when its gauges are left out',
      labelNames: ['collector'],
      registers: [this.registry],
      async collect() {
        const { queues, nodes, pools } = await snapshot();
        this.set({ collector: 'queues' }, queues instanceof Error ? 0 : 1);
        this.set({ collector: 'nodes' }, nodes instanceof Error ? 0 : 1);
        this.set({ collector: 'pools' }, pools instanceof Error ? 0 : 1);
      },
    });
    new Gauge({
      name: metricName('queue_jobs'),
      help: 'Jobs in each encode queue, by BullMQ state (completed/failed: those still kept, see removeOnComplete)',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const { queues } = await snapshot();
        if (queues instanceof Error) return;
        for (const { queue, counts } of queues)
          for (const state of QUEUE_STATES) this.set({ queue, state }, counts[state] ?? 0);
      },
    });
    const nodeGauge = (name: string, help: string, value: (nodes: NodeRecord[]) => number) =>
      new Gauge({
        name: metricName(name),
        help,
        labelNames: ['pool'],
        registers: [this.registry],
        async collect() {
          this.reset();
          const { nodes } = await snapshot();
          if (nodes instanceof Error) return;
          for (const pool of POOLS) this.set({ pool }, value(nodes.filter((node) => node.pool === pool)));
        },
      });
    nodeGauge('nodes', 'Live encoder nodes (registry records not expired), by pool', (nodes) => nodes.length);
    nodeGauge('node_slots', 'Job slots of the live nodes (sum of their concurrency), by pool', (nodes) =>
      nodes.reduce((sum, node) => sum + node.concurrency, 0),
    );
    nodeGauge(
      'node_active_jobs',
      'Jobs the live nodes report as active at their last heartbeat, by pool',
      (nodes) => nodes.reduce((sum, node) => sum + node.active, 0),
    );
    nodeGauge(
      'node_encode_fps',
      'Frames per second the live nodes encoded over their last minute (their own report), by pool',
      (nodes) => nodes.reduce((sum, node) => sum + (node.encodeFps ?? 0), 0),
    );
    nodeGauge(
      'node_live_capacity',
      'Live encoder contexts the live nodes may keep (sum of their --live-max-contexts), by pool',
      (nodes) => nodes.reduce((sum, node) => sum + (node.liveCapacity ?? 0), 0),
    );
    nodeGauge(
      'node_live_contexts',
      'Live encoder contexts (ffmpeg processes) the live nodes report at their last heartbeat, by pool',
      (nodes) => nodes.reduce((sum, node) => sum + (node.liveStreams ?? 0), 0),
    );
    // The autoscaling signals, per pool (README, "From one machine to a fleet"): the same values in every
    // API instance, read from Redis, so a scaler takes max() over instances, not sum().
    const poolGauge = (name: string, help: string, value: (load: PoolLoad, now: number) => number) =>
      new Gauge({
        name: metricName(name),
        help,
        labelNames: ['pool'],
        registers: [this.registry],
        async collect() {
          this.reset();
          const { pools } = await snapshot();
          if (pools instanceof Error) return;
          const now = Date.now();
          for (const load of pools) this.set({ pool: load.pool }, value(load, now));
        },
      });
    poolGauge(
      'pool_jobs_waiting',
      "Jobs queued for the pool that no node has taken yet (waiting, prioritized, delayed for a retry): the pool's demand, and what scales it from zero",
      (load) => load.waiting,
    );
    poolGauge(
      'pool_oldest_wait_seconds',
      "Age of the pool's oldest waiting job (since submission), 0 when none waits",
      (load, now) =>
        load.oldestSubmittedAt === null ? 0 : Math.max(0, (now - load.oldestSubmittedAt) / 1000),
    );
    poolGauge(
      'pool_jobs_active',
      "Jobs of the pool's queue that nodes are encoding now",
      (load) => load.active,
    );
    nodeGauge(
      'pool_free_slots',
      "Job slots of the pool's live nodes not busy at their last heartbeat (concurrency minus active)",
      (nodes) => nodes.reduce((sum, node) => sum + Math.max(0, node.concurrency - node.active), 0),
    );
    new Gauge({
      name: metricName('chore_leader'),
      help: '1 while this API process holds the chores lease and runs the cluster chores, else 0',
      registers: [this.registry],
      collect() {
        this.set(chores.isLeading() ? 1 : 0);
      },
    });
    new Counter({
      name: metricName('chore_runs_total'),
      help: 'Completed runs of each cluster chore in this API process (only the lease holder runs them)',
      labelNames: ['chore'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [chore, runs] of chores.runCounts()) this.inc({ chore }, runs);
      },
    });
    new Counter({
      name: metricName('chore_items_total'),
      help: 'Jobs the cluster chores of this API process acted on: gpu-fallback moved gpu work to the cpu pool, no-node-timeout failed jobs no node started for',
      labelNames: ['chore'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [chore, items] of chores.itemCounts()) this.inc({ chore }, items);
      },
    });
    const moveCounts = () =>
      withTimeout(this.redis.hgetall(keys.liveMoveCounts), COLLECT_TIMEOUT_MS, 'live move counts');
    const logger = this.logger;
    new Counter({
      name: metricName('live_stream_moves_total'),
      help: 'Live streams moved to another node, cluster-wide (every API instance reports the same totals, from Redis), by reason: unreachable (a client reported the node and its data port did not answer the probe), expired (its registry record expired), drain (a draining node handed it over)',
      labelNames: ['reason'],
      registers: [this.registry],
      async collect() {
        const counts = await moveCounts().catch((error: Error) => {
          logger.warn(`metrics: live move counts not collected: ${error.message}`);
          return null;
        });
        if (!counts) return;
        this.reset();
        for (const reason of LIVE_MOVE_REASONS) this.inc({ reason }, Number(counts[reason] ?? 0));
      },
    });
    new Gauge({
      name: metricName('redis_connection_up'),
      help: '1 while an API Redis connection is ready, else 0',
      labelNames: ['connection'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [connection, client] of connections)
          this.set({ connection }, client.status === 'ready' ? 1 : 0);
      },
    });
  }

  onModuleInit(): void {
    collectDefaultMetrics({ register: this.registry });
    this.untap = this.hub.tap((event) => this.onJobEvent(event));
    this.watch('api', this.redis);
    this.watch('api:events', this.subscriber);
    this.queue
      .connections()
      .then((connections) => connections.forEach(({ queue, client }) => this.watch(`queue:${queue}`, client)))
      .catch((error: Error) => this.logger.warn(`queue connections not watched: ${error.message}`));
  }

  onModuleDestroy(): void {
    this.untap?.();
  }

  private watch(connection: string, client: RedisClient): void {
    this.connections.set(connection, client);
    this.redisReconnects.inc({ connection }, 0);
    client.on('reconnecting', () => this.redisReconnects.inc({ connection }));
  }

  /** Queue counts and live nodes, read once per scrape (shared by the gauges, reused for 1 s). */
  private snapshot(): Promise<Snapshot> {
    const now = Date.now();
    if (!this.scrape || now - this.scrape.at > 1000) {
      const settle = <T>(read: Promise<T>, what: string) =>
        withTimeout(read, COLLECT_TIMEOUT_MS, what).catch((error: Error) => {
          this.logger.warn(`metrics: ${what} not collected: ${error.message}`);
          return error;
        });
      const snapshot = Promise.all([
        settle(this.queue.jobCounts([...QUEUE_STATES]), 'queue counts'),
        settle(this.nodeRegistry.list(), 'node registry'),
        settle(this.queue.poolLoad(), 'pool load'),
      ]).then(([queues, nodes, pools]) => ({ queues, nodes, pools }));
      this.scrape = { at: now, snapshot };
    }
    return this.scrape.snapshot;
  }

  private onJobEvent({ jobId, event }: LoggedJobEvent): void {
    if (event.type === 'active') {
      if (this.restarts.started(jobId, event.attempt)) this.countFailover(jobId);
      return;
    }
    if (event.type !== 'completed' && event.type !== 'failed') return;
    this.restarts.finished(jobId);
    void this.jobs
      .get(jobId)
      .then((record) => {
        const sample = record ? jobSample(record) : null;
        if (sample) this.observeJob(sample);
      })
      .catch((error: Error) => this.logger.warn(`metrics: job ${jobId} not counted: ${error.message}`));
  }

  private countFailover(jobId: string): void {
    void this.jobs
      .get(jobId)
      .then((record) => this.failovers.inc({ pool: record?.data.pool ?? 'cpu' }))
      .catch((error: Error) =>
        this.logger.warn(`metrics: failover of ${jobId} not counted: ${error.message}`),
      );
  }

  observeJob(sample: JobSample): void {
    const { labels } = sample;
    if (sample.processingSeconds !== null) this.processing.observe(labels, sample.processingSeconds);
    if (sample.status === 'failed') {
      this.jobsFailed.inc(labels);
      return;
    }
    this.jobsCompleted.inc(labels);
    if (sample.encodeSeconds !== null) this.encodeDuration.observe(labels, sample.encodeSeconds);
    if (sample.queueWaitSeconds !== null) this.queueWait.observe(labels, sample.queueWaitSeconds);
    if (sample.latencySeconds !== null) this.latency.observe(labels, sample.latencySeconds);
    this.frames.inc(labels, sample.frames);
    this.inputBytes.inc(labels, sample.inputBytes);
    this.outputs.inc(labels, sample.outputs);
    this.outputBytes.inc(labels, sample.outputBytes);
  }
}
