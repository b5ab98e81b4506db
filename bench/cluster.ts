import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import type { AcceptedJob } from '#client';
import { ENCODE_QUEUES, KeySpace } from '#cluster';
import { ServiceStack, repoRoot, type WorkerSpec } from '#scripts/lib/stack.js';
import { CpuMeter, PROCESS_ROLES, type CpuTimes } from './cpu.js';
import { postParts } from './http.js';
import { currentLoad, finish, machineInfo } from './machine.js';
import { BENCH_OUT, markdownTable, textTable, type MachineInfo } from './report.js';
import { median, percentile, round } from './stats.js';

/**
 * The cluster bench: what the service's own dispatch (HTTP, Redis, BullMQ, events) costs and how it
 * scales with job slots, and how long a killed node's job takes to move to another node. The nodes run
 * the test-only synthetic codec (`--synthetic-cost-ms`): a frame costs a fixed time without using the
 * CPU, so the 2 cores go to the API, Redis, the nodes' bookkeeping and this bench's clients only.
 */

export interface ClusterBenchOptions {
  /** Fewer slot counts, shorter windows and 3 failover runs: under a minute. */
  quick: boolean;
  /** Only the Redis round trips per job (one node of 2 slots; no scaling points, no failover). */
  roundTripsOnly?: boolean;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
}

export interface ScalingPoint {
  slots: number;
  processes: number;
  /** Job slots per process (`--concurrency`). */
  concurrency: number;
  /** Closed-loop clients: each submits a job, follows its events to `completed`, then submits the next. */
  clients: number;
  /** Jobs completed inside the measurement window. */
  jobs: number;
  window_s: number;
  jobs_per_s: number;
  /** slots * 1000 / cost: every slot always busy with nothing but the synthetic cost. */
  ideal_jobs_per_s: number;
  efficiency: number;
  /** Medians over the window's jobs (a sample of their records for the server-side stamps), ms. */
  latency_ms: { p50: number; p95: number };
  /** POST /v1/jobs round trip (upload, admission, store, enqueue). */
  submit_ms: number;
  /** Job stored -> a node marked it active (waiting for a free slot, then BullMQ's fetch). */
  queued_ms: number;
  /** Node active -> node finished (the synthetic cost, storing the output, events). */
  on_node_ms: number;
  /** Node finished -> the client read `completed` on SSE (pub/sub, API fan-out). */
  notify_ms: number;
  /** jobs/s * on_node_ms / slots: the share of slot time spent on a job. */
  slot_busy: number;
  /** CPU per process role during the window, in % of one core (the machine has `machine.cpus`). */
  cpu_percent: CpuTimes & { total: number };
  /** CPU milliseconds per job per process role: what the ceiling below is made of. */
  cpu_ms_per_job: CpuTimes & { service: number };
  /** cores * 1000 / the service's CPU ms per job (API + nodes + Redis): jobs/s with the cores to itself. */
  cpu_ceiling_jobs_per_s: number;
  /** Commands Redis executed per job (its `total_commands_processed`: Lua scripts' inner calls included). */
  redis_commands_per_job: number;
  /** Script calls (EVALSHA/EVAL) per job: each is one round trip that runs many commands inside Redis. */
  redis_scripts_per_job: number;
  /** The commands Redis ran most per job (commandstats, inner script calls included). */
  redis_top_commands: Record<string, number>;
  /** 429/503 answers (admission); retried by the client after a short pause. */
  rejected: number;
  /** Event streams that ended without the final event (see LightClient.streamsEndedEarly). */
  sse_ended_early: number;
  load_1m: number;
}

/** Round trips to Redis per job, counted with MONITOR on a short separate run (it slows Redis down). */
export interface RoundTrips {
  jobs: number;
  /** Commands sent by each kind of client, per job (heartbeats and other background work included). */
  per_job: { api: number; worker: number; other: number; total: number };
  /** Commands run inside Lua scripts (BullMQ's), per job: no round trip of their own. */
  inside_scripts_per_job: number;
  /**
   * Reads Redis made from client sockets per job (INFO `total_reads_processed`): requests that arrive
   * together (a pipeline, commands sent in the same turn) are one read, so this counts round trips
   * where `per_job` counts commands. Includes the nodes' blocking fetches and heartbeats.
   */
  reads_per_job: number;
  /** Client commands per job by name, most frequent first. */
  by_command: Record<string, number>;
  /** Client commands per second with the node idle (heartbeats, blocking fetches, stalled checks). */
  idle_per_s: number;
}

export interface FailoverRun {
  run: number;
  killed: string;
  took_over: string;
  /** kill -9 -> BullMQ's stalled check put the job back to wait (its `stalled` event in Redis). */
  kill_to_requeued_ms: number | null;
  /** kill -9 -> the other node took the job (BullMQ's second `active` event in Redis). */
  kill_to_taken_ms: number | null;
  /** kill -9 -> the job's second `active` event (on the other node) at the client. */
  kill_to_active_ms: number;
  /** kill -9 -> the job's `completed` event (includes the job's own cost). */
  kill_to_completed_ms: number;
}

export interface FailoverResult {
  timeout_s: number;
  job_cost_ms: number;
  lock_ms: number;
  lock_renew_ms: number;
  stalled_check_ms: number;
  /** Lock duration + stalled-check interval: the latest a killed node's job goes back to wait. */
  bound_ms: number;
  /**
   * Where kill -> requeued falls here: the node is killed right after it took the job, so the lock has
   * its whole duration left; it goes back to wait at the first stalled check after the lock expires.
   * (A kill at any other time finds the lock renewed up to `lock_renew_ms` earlier: from lock - renew.)
   */
  expected_ms: [number, number];
  runs: FailoverRun[];
  kill_to_active_ms: { median: number; min: number; max: number };
  kill_to_completed_ms: { median: number; max: number };
}

export interface ClusterBenchResult {
  profile: 'quick' | 'full' | 'round-trips';
  started_at: string;
  duration_s: number;
  machine: MachineInfo;
  setup: {
    codec: string;
    frame: string;
    synthetic_cost_ms: number;
    clients_per_slot: number;
    warmup_s: number;
    window_s: number;
    node_rss_mib: number | null;
    note: string;
  };
  scaling: ScalingPoint[];
  round_trips: RoundTrips | null;
  failover: FailoverResult | null;
}

interface Shape {
  processes: number;
  concurrency: number;
}

/**
 * Slots 1..32. Processes stop at 4: a node is a whole Node.js process (~60-100 MB RSS, its own heartbeat,
 * lock renewals, stalled checks and 2-3 Redis connections), and 2 cores cannot run more than a few
 * usefully; the synthetic codec awaits a timer, so slots within a process are nearly free.
 */
const FULL_SHAPES: Shape[] = [
  { processes: 1, concurrency: 1 },
  { processes: 1, concurrency: 2 },
  { processes: 2, concurrency: 2 },
  { processes: 2, concurrency: 4 },
  { processes: 4, concurrency: 4 },
  { processes: 4, concurrency: 8 },
];
const QUICK_SHAPES: Shape[] = [
  { processes: 1, concurrency: 1 },
  { processes: 2, concurrency: 2 },
  { processes: 4, concurrency: 8 },
];

const COST_MS = 50;
const CLIENTS_PER_SLOT = 2;
const FRAME = { width: 16, height: 16, format: 'bgra' } as const;
const FRAME_BODY = Buffer.alloc(FRAME.width * FRAME.height * 4, 0x80);
const JOB_QUERY = new URLSearchParams({
  codec: 'jpeg',
  width: String(FRAME.width),
  height: String(FRAME.height),
  format: FRAME.format,
  frames: '1',
}).toString();
/** Job records read per point for the server-side stamps (reading all of them would add load). */
const RECORD_SAMPLE = 60;
const ROUND_TRIP_JOBS = 30;

/** The stack's queue prefix (the default: it sets no QUEUE_PREFIX). */
const QUEUE_PREFIX = 'encoder';
const FAILOVER_TIMEOUT_S = 2;
/** Long enough that the job is still running when its node is killed, whatever the kill's delay. */
const FAILOVER_COST_MS = { full: 3000, quick: 1500 };
/** The same formulas as lockSettingsFor (libs/cluster/src/queues.ts). */
const LOCK_MS = FAILOVER_TIMEOUT_S * 1000;
const LOCK_RENEW_MS = Math.max(250, Math.floor(LOCK_MS / 3));
const STALLED_CHECK_MS = Math.max(500, Math.floor(LOCK_MS / 2));

function syntheticNode(name: string, concurrency: number, costMs: number, timeoutSeconds = 10): WorkerSpec {
  return {
    name,
    concurrency,
    timeoutSeconds,
    // --codecs jpeg: nothing to probe, so a node starts in about a second.
    args: ['--synthetic-cost-ms', String(costMs), '--codecs', 'jpeg'],
  };
}

/**
 * A client that costs as little CPU as it can, since it shares the 2 cores with what it measures:
 * node:http with keep-alive, the upload written as is, SSE scanned for the final event only.
 */
class LightClient {
  private readonly agent = new http.Agent({ keepAlive: true });

  constructor(private readonly apiUrl: string) {}

  async submit(): Promise<{ status: number; id: string | null; body: string }> {
    const reply = await postParts(
      `${this.apiUrl}/v1/jobs?${JOB_QUERY}`,
      [FRAME_BODY],
      { 'content-type': 'application/octet-stream' },
      this.agent,
    );
    const id = reply.status === 202 ? (JSON.parse(reply.body) as AcceptedJob).id : null;
    return { ...reply, id };
  }

  /**
   * Event streams the API ended without the job's final event. The API's SseSession ends a stream when
   * the job record is final, but a node writes that record a round trip before it logs `completed`:
   * a stream that starts in between replays the log without the final event and ends.
   */
  streamsEndedEarly = 0;

  /** Follows the job's events to its final one (asking the job record when a stream ends early). */
  async waitFinal(id: string): Promise<'completed' | 'failed'> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const final = await this.finalEvent(id);
      if (final) return final;
      this.streamsEndedEarly++;
      const status = await this.status(id);
      if (status === 'completed' || status === 'failed') return status;
    }
    throw new Error(`the event stream of job ${id} keeps ending before the job does`);
  }

  /** The final event type, or null when the stream ended without one. */
  private finalEvent(id: string): Promise<'completed' | 'failed' | null> {
    return new Promise((resolveFinal, reject) => {
      const request = http.get(`${this.apiUrl}/v1/jobs/${id}/events`, { agent: this.agent }, (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          reject(new Error(`GET events of ${id}: HTTP ${response.statusCode}`));
          return;
        }
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          const final = /^event: (completed|failed)$/m.exec(text)?.[1];
          resolveFinal(final === 'completed' || final === 'failed' ? final : null);
        });
        response.on('error', reject);
      });
      request.on('error', reject);
    });
  }

  private status(id: string): Promise<string> {
    return new Promise((resolveStatus, reject) => {
      const request = http.get(`${this.apiUrl}/v1/jobs/${id}`, { agent: this.agent }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          try {
            resolveStatus((JSON.parse(text) as { status: string }).status);
          } catch {
            reject(new Error(`GET job ${id}: HTTP ${response.statusCode}: ${text}`));
          }
        });
        response.on('error', reject);
      });
      request.on('error', reject);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

interface JobStamp {
  id: string;
  postAt: number;
  acceptedAt: number;
  completedAt: number;
}

/** Redis's counters: commands executed, in total and per command (inner script calls included). */
async function redisCommandCounts(redis: Redis): Promise<{ total: number; byCommand: Map<string, number> }> {
  const [stats, commandStats] = await Promise.all([redis.info('stats'), redis.info('commandstats')]);
  const total = Number(/^total_commands_processed:(\d+)/m.exec(stats)?.[1] ?? NaN);
  const byCommand = new Map<string, number>();
  for (const match of commandStats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    byCommand.set(match[1], Number(match[2]));
  }
  return { total, byCommand };
}

function topEntries(counts: Map<string, number>, divisor: number, limit: number): Record<string, number> {
  return Object.fromEntries(
    [...counts.entries()]
      .filter(([, count]) => count > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, count]) => [name, round(count / divisor)]),
  );
}

/** Median resident memory of this process's worker children (Linux /proc), MiB; null elsewhere. */
function workerRssMib(): number | null {
  const values: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) !== process.pid) continue;
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('apps/worker/src/main.js')) continue;
      values.push(Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024);
    } catch {
      // gone meanwhile
    }
  }
  return values.length > 0 ? round(median(values)) : null;
}

class ClusterBench {
  private readonly log: (line: string) => void;
  private readonly meter = new CpuMeter();
  private readonly warmupMs: number;
  private readonly windowMs: number;
  private readonly failoverCostMs: number;
  private stack: ServiceStack | null = null;
  private redis: Redis | null = null;
  private readonly dataDir = mkdtempSync(join(tmpdir(), 'encoder-cluster-bench-'));
  private nodeSerial = 0;
  private nodeRssMib: number | null = null;

  constructor(private readonly options: ClusterBenchOptions) {
    this.log = options.log ?? ((line) => console.log(line));
    this.warmupMs = options.quick ? 750 : 2000;
    this.windowMs = options.quick ? 2500 : 8000;
    this.failoverCostMs = options.quick ? FAILOVER_COST_MS.quick : FAILOVER_COST_MS.full;
  }

  async run(): Promise<ClusterBenchResult> {
    const startedAt = new Date();
    const machine = machineInfo();
    const quick = this.options.quick;
    this.log(`cluster bench (${quick ? 'quick' : 'full'}): starting redis-server and the API`);
    const stack = await ServiceStack.start({ dataDir: this.dataDir });
    this.stack = stack;
    this.redis = new Redis(stack.redisUrl, { connectionName: 'bench-cluster', maxRetriesPerRequest: 3 });
    this.redis.on('error', () => undefined);

    const scaling: ScalingPoint[] = [];
    let roundTrips: RoundTrips | null = null;
    if (this.options.roundTripsOnly) {
      const names = await this.startNodes(1, 2, COST_MS);
      try {
        roundTrips = await this.countRoundTrips();
      } finally {
        await this.stopNodes(names);
      }
    }
    for (const shape of this.options.roundTripsOnly ? [] : quick ? QUICK_SHAPES : FULL_SHAPES) {
      const names = await this.startNodes(shape.processes, shape.concurrency, COST_MS);
      try {
        const point = await this.measureScaling(shape);
        const rss = workerRssMib();
        if (rss !== null) this.nodeRssMib = Math.max(this.nodeRssMib ?? 0, rss);
        scaling.push(point);
        this.log(
          `  ${point.slots} slots (${shape.processes}x${shape.concurrency}): ${point.jobs_per_s} jobs/s of ${point.ideal_jobs_per_s} ideal (${Math.round(point.efficiency * 100)}%)`,
        );
        if (!quick && roundTrips === null) roundTrips = await this.countRoundTrips();
      } finally {
        await this.stopNodes(names);
      }
    }

    const failover = this.options.roundTripsOnly ? null : await this.measureFailover(quick ? 3 : 5);
    return {
      profile: this.options.roundTripsOnly ? 'round-trips' : quick ? 'quick' : 'full',
      started_at: startedAt.toISOString(),
      duration_s: round((Date.now() - startedAt.getTime()) / 1000),
      machine: finish(machine),
      setup: {
        codec: 'jpeg (synthetic)',
        frame: `${FRAME.width}x${FRAME.height} ${FRAME.format}, 1 frame a job`,
        synthetic_cost_ms: COST_MS,
        clients_per_slot: CLIENTS_PER_SLOT,
        warmup_s: this.warmupMs / 1000,
        window_s: this.windowMs / 1000,
        node_rss_mib: this.nodeRssMib,
        note:
          'redis-server, the API, the nodes and this bench share the machine (and whatever else runs on ' +
          'it: see the load averages); the synthetic codec uses no CPU, so what falls short of the ideal ' +
          'is the service dispatching jobs.',
      },
      scaling,
      round_trips: roundTrips,
      failover,
    };
  }

  async stop(): Promise<void> {
    this.redis?.disconnect();
    this.redis = null;
    await this.stack?.stop();
    this.stack = null;
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private requireRedis(): Redis {
    if (!this.redis) throw new Error('the bench is not connected to Redis');
    return this.redis;
  }

  private requireStack(): ServiceStack {
    if (!this.stack) throw new Error('the stack is not running');
    return this.stack;
  }

  private async startNodes(processes: number, concurrency: number, costMs: number): Promise<string[]> {
    const stack = this.requireStack();
    const names = Array.from({ length: processes }, () => `bench-node-${++this.nodeSerial}`);
    await Promise.all(names.map((name) => stack.startWorker(syntheticNode(name, concurrency, costMs))));
    return names;
  }

  private async stopNodes(names: string[]): Promise<void> {
    const stack = this.requireStack();
    await Promise.all(names.map((name) => stack.signalWorker(name, 'SIGTERM')));
  }

  /**
   * A closed loop of 2 clients per slot for warm-up + window; only the jobs that complete inside the
   * window count, and the clients go on submitting until its end, so the window sees a full pipeline.
   */
  private async measureScaling(shape: Shape): Promise<ScalingPoint> {
    const stack = this.requireStack();
    const redis = this.requireRedis();
    const slots = shape.processes * shape.concurrency;
    const clients = slots * CLIENTS_PER_SLOT;
    const client = new LightClient(stack.apiUrl);
    const stamps: JobStamp[] = [];
    let rejected = 0;
    const startAt = Date.now();
    const stopAt = startAt + this.warmupMs + this.windowMs;

    const lane = async () => {
      while (Date.now() < stopAt) {
        const postAt = Date.now();
        const reply = await client.submit();
        if (reply.status === 429 || reply.status === 503) {
          rejected++;
          await sleep(50);
          continue;
        }
        if (!reply.id) throw new Error(`POST /v1/jobs answered ${reply.status}: ${reply.body}`);
        const acceptedAt = Date.now();
        const final = await client.waitFinal(reply.id);
        if (final !== 'completed') throw new Error(`job ${reply.id} failed`);
        stamps.push({ id: reply.id, postAt, acceptedAt, completedAt: Date.now() });
      }
    };
    const sampleAt = async (at: number) => {
      await sleep(Math.max(0, at - Date.now()));
      const cpu = this.meter.snapshot();
      const time = Date.now();
      return { time, cpu, redis: await redisCommandCounts(redis) };
    };

    let windowStart: Awaited<ReturnType<typeof sampleAt>>;
    let windowEnd: Awaited<ReturnType<typeof sampleAt>>;
    try {
      [, windowStart, windowEnd] = await Promise.all([
        Promise.all(Array.from({ length: clients }, lane)),
        sampleAt(startAt + this.warmupMs),
        sampleAt(stopAt),
      ]);
    } finally {
      client.close();
    }

    const seconds = (windowEnd.time - windowStart.time) / 1000;
    const inWindow = stamps.filter(
      (stamp) => stamp.completedAt > windowStart.time && stamp.completedAt <= windowEnd.time,
    );
    const jobsPerSecond = inWindow.length / seconds;
    const ideal = (slots * 1000) / COST_MS;

    // Server-side stamps from a spread sample of the window's job records (read after the window).
    const step = Math.max(1, Math.floor(inWindow.length / RECORD_SAMPLE));
    const sample = inWindow.filter((_, index) => index % step === 0).slice(0, RECORD_SAMPLE);
    const records = await Promise.all(sample.map((stamp) => stack.client.job(stamp.id)));
    const ms = (iso: string | null) => (iso ? Date.parse(iso) : NaN);
    const stage = (pick: (stamp: JobStamp, index: number) => number) =>
      round(median(sample.map(pick).filter(Number.isFinite)));
    const onNode = stage((_, index) => ms(records[index].finishedAt) - ms(records[index].startedAt));

    const jobs = Math.max(1, inWindow.length);
    const cpu = { ...windowEnd.cpu, total: 0 };
    const cpuPerJob = { ...windowEnd.cpu, service: 0 };
    for (const role of PROCESS_ROLES) {
      const used = windowEnd.cpu[role] - windowStart.cpu[role];
      cpu[role] = round((used / (seconds * 1000)) * 100);
      cpu.total += cpu[role];
      cpuPerJob[role] = round(used / jobs);
      if (role !== 'bench') cpuPerJob.service += used / jobs;
    }
    cpu.total = round(cpu.total);
    cpuPerJob.service = round(cpuPerJob.service);
    const commandDeltas = new Map<string, number>();
    for (const [name, calls] of windowEnd.redis.byCommand) {
      commandDeltas.set(name, calls - (windowStart.redis.byCommand.get(name) ?? 0));
    }
    const latencies = inWindow.map((stamp) => stamp.completedAt - stamp.postAt);
    return {
      slots,
      processes: shape.processes,
      concurrency: shape.concurrency,
      clients,
      jobs: inWindow.length,
      window_s: round(seconds),
      jobs_per_s: round(jobsPerSecond),
      ideal_jobs_per_s: ideal,
      efficiency: round(jobsPerSecond / ideal),
      latency_ms: { p50: round(median(latencies)), p95: round(percentile(latencies, 95)) },
      submit_ms: round(median(inWindow.map((stamp) => stamp.acceptedAt - stamp.postAt))),
      queued_ms: stage((_, index) => ms(records[index].startedAt) - ms(records[index].createdAt)),
      on_node_ms: onNode,
      notify_ms: stage((stamp, index) => stamp.completedAt - ms(records[index].finishedAt)),
      slot_busy: round((jobsPerSecond * onNode) / 1000 / slots),
      cpu_percent: cpu,
      cpu_ms_per_job: cpuPerJob,
      cpu_ceiling_jobs_per_s: round((availableParallelism() * 1000) / cpuPerJob.service),
      redis_commands_per_job: round((windowEnd.redis.total - windowStart.redis.total) / jobs),
      redis_scripts_per_job: round(
        ((commandDeltas.get('evalsha') ?? 0) + (commandDeltas.get('eval') ?? 0)) / jobs,
      ),
      redis_top_commands: topEntries(commandDeltas, jobs, 8),
      rejected,
      sse_ended_early: client.streamsEndedEarly,
      load_1m: currentLoad(),
    };
  }

  private async readsProcessed(): Promise<number> {
    const stats = await this.requireRedis().info('stats');
    return Number(/^total_reads_processed:(\d+)/m.exec(stats)?.[1] ?? NaN);
  }

  /**
   * Counts the commands each client sends to Redis (MONITOR shows the client's address, or "lua" for
   * commands a script runs), first with the node idle, then over a few jobs two at a time.
   */
  private async countRoundTrips(): Promise<RoundTrips> {
    const stack = this.requireStack();
    const names = new Map<string, string>();
    const readClientNames = async () => {
      const list = (await this.requireRedis().client('LIST')) as string;
      for (const line of list.split('\n')) {
        const addr = /\baddr=(\S+)/.exec(line)?.[1];
        if (addr) names.set(addr, /\bname=(\S*)/.exec(line)?.[1] ?? '');
      }
    };
    // MONITOR runs on a connection of its own, which ioredis opens for it.
    const monitor = await this.requireRedis().monitor();
    monitor.on('error', () => undefined);
    const bySource = new Map<string, number>();
    const byCommand = new Map<string, number>();
    let inside = 0;
    let counting = false;
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (!counting) return;
      if (source === 'lua') {
        inside++;
        return;
      }
      bySource.set(source, (bySource.get(source) ?? 0) + 1);
      const command = (args[0] ?? '?').toLowerCase();
      byCommand.set(`${source}|${command}`, (byCommand.get(`${source}|${command}`) ?? 0) + 1);
    });
    const roleOf = (source: string) => {
      const name = names.get(source) ?? '';
      if (name.startsWith('bench')) return 'bench';
      if (name.startsWith('api')) return 'api';
      if (name.startsWith('node:')) return 'worker';
      return 'other';
    };
    try {
      // Idle: what the node does with no work (heartbeats, blocking fetches, stalled checks).
      const idleMs = 2000;
      counting = true;
      await sleep(idleMs);
      counting = false;
      await readClientNames();
      let idle = 0;
      for (const [source, count] of bySource) if (roleOf(source) !== 'bench') idle += count;
      bySource.clear();
      byCommand.clear();
      inside = 0;

      const client = new LightClient(stack.apiUrl);
      let next = 0;
      const readsBefore = await this.readsProcessed();
      counting = true;
      await Promise.all(
        Array.from({ length: 2 }, async () => {
          while (next++ < ROUND_TRIP_JOBS) {
            const reply = await client.submit();
            if (!reply.id) throw new Error(`POST /v1/jobs answered ${reply.status}: ${reply.body}`);
            await client.waitFinal(reply.id);
          }
        }),
      );
      counting = false;
      // Less this bench's own INFO call.
      const reads = (await this.readsProcessed()) - readsBefore - 1;
      client.close();
      await readClientNames();

      const perJob = { api: 0, worker: 0, other: 0, total: 0 };
      for (const [source, count] of bySource) {
        const role = roleOf(source);
        if (role === 'bench') continue;
        perJob[role] += count / ROUND_TRIP_JOBS;
        perJob.total += count / ROUND_TRIP_JOBS;
      }
      const commands = new Map<string, number>();
      for (const [key, count] of byCommand) {
        const [source, command] = key.split('|');
        const role = roleOf(source);
        if (role === 'bench') continue;
        commands.set(`${role} ${command}`, (commands.get(`${role} ${command}`) ?? 0) + count);
      }
      return {
        jobs: ROUND_TRIP_JOBS,
        per_job: {
          api: round(perJob.api),
          worker: round(perJob.worker),
          other: round(perJob.other),
          total: round(perJob.total),
        },
        inside_scripts_per_job: round(inside / ROUND_TRIP_JOBS),
        reads_per_job: round(reads / ROUND_TRIP_JOBS),
        by_command: topEntries(commands, ROUND_TRIP_JOBS, 16),
        idle_per_s: round(idle / (idleMs / 1000)),
      };
    } finally {
      monitor.disconnect();
    }
  }

  /**
   * Two nodes (timeout 2 s, concurrency 1) and one long job: the node that takes it is killed with
   * SIGKILL as soon as its `active` event arrives; the other must take the job over once BullMQ's
   * stalled check finds its lock gone. A fresh node replaces the killed one before the next run.
   */
  private async measureFailover(runs: number): Promise<FailoverResult> {
    const stack = this.requireStack();
    this.log(`  failover: ${runs} runs of kill -9 with a ${this.failoverCostMs} ms job on 2 nodes`);
    let nodes = await this.startFailoverNodes(2);
    const results: FailoverRun[] = [];
    try {
      for (let run = 1; run <= runs; run++) {
        // A node's stalled checks start when it does, and a fresh node has just started: submitting at
        // a random point of the check period keeps the runs from all landing on the same phase.
        await sleep(500 + Math.random() * STALLED_CHECK_MS);
        const accepted = await stack.client.submitRaw(
          { codec: 'jpeg', width: FRAME.width, height: FRAME.height, format: FRAME.format, frames: 1 },
          FRAME_BODY,
        );
        let killed = '';
        let killAt = 0;
        let killedAtWall = 0;
        let exited: Promise<unknown> = Promise.resolve();
        let tookOver = '';
        let activeAt = 0;
        let completedAt = 0;
        const signal = AbortSignal.timeout(this.failoverCostMs * 2 + LOCK_MS * 5 + 10_000);
        // A stream may end just before `completed` (see LightClient.streamsEndedEarly): resume it.
        let lastEventId: string | undefined;
        for (let stream = 0; stream < 5 && !completedAt; stream++) {
          for await (const event of stack.client.events(accepted.id, lastEventId, signal)) {
            lastEventId = event.id;
            if (event.type === 'active' && !killed) {
              killed = event.node;
              killAt = performance.now();
              killedAtWall = Date.now();
              exited = stack.signalWorker(killed, 'SIGKILL');
            } else if (event.type === 'active' && !tookOver) {
              activeAt = performance.now();
              tookOver = event.node;
            } else if (event.type === 'completed') {
              completedAt = performance.now();
            } else if (event.type === 'failed') {
              throw new Error(`failover run ${run}: job ${accepted.id} failed: ${event.error}`);
            }
          }
        }
        await exited;
        if (!tookOver || !completedAt || tookOver === killed)
          throw new Error(`failover run ${run}: job ${accepted.id} was not taken over (node ${tookOver})`);
        results.push({
          run,
          killed,
          took_over: tookOver,
          ...(await this.queueEventsAfter(accepted.id, killedAtWall)),
          kill_to_active_ms: Math.round(activeAt - killAt),
          kill_to_completed_ms: Math.round(completedAt - killAt),
        });
        this.log(
          `    run ${run}: ${killed} killed; ${tookOver} active after ${Math.round(activeAt - killAt)} ms (requeued after ${results[results.length - 1].kill_to_requeued_ms} ms), done after ${Math.round(completedAt - killAt)} ms`,
        );
        nodes = nodes.filter((name) => name !== killed);
        if (run < runs) nodes.push(...(await this.startFailoverNodes(1)));
      }
    } finally {
      await this.stopNodes(nodes);
    }
    const active = results.map((result) => result.kill_to_active_ms);
    const completed = results.map((result) => result.kill_to_completed_ms);
    return {
      timeout_s: FAILOVER_TIMEOUT_S,
      job_cost_ms: this.failoverCostMs,
      lock_ms: LOCK_MS,
      lock_renew_ms: LOCK_RENEW_MS,
      stalled_check_ms: STALLED_CHECK_MS,
      bound_ms: LOCK_MS + STALLED_CHECK_MS,
      expected_ms: [LOCK_MS, LOCK_MS + STALLED_CHECK_MS],
      runs: results,
      kill_to_active_ms: { median: median(active), min: Math.min(...active), max: Math.max(...active) },
      kill_to_completed_ms: { median: median(completed), max: Math.max(...completed) },
    };
  }

  /**
   * When BullMQ moved the job back to wait and when a node took it again, from the queue's event stream
   * (entry ids are Redis's clock in ms, the same host's clock as Date.now()).
   */
  private async queueEventsAfter(
    jobId: string,
    since: number,
  ): Promise<Pick<FailoverRun, 'kill_to_requeued_ms' | 'kill_to_taken_ms'>> {
    const stream = `${new KeySpace(QUEUE_PREFIX).queuePrefix}:${ENCODE_QUEUES.cpu}:events`;
    const entries = await this.requireRedis().xrange(stream, String(since), '+');
    const at = (event: string) => {
      for (const [id, fields] of entries) {
        const value = (name: string) => fields[fields.indexOf(name) + 1];
        if (value('event') === event && value('jobId') === jobId) return Number(id.split('-')[0]) - since;
      }
      return null;
    };
    return { kill_to_requeued_ms: at('stalled'), kill_to_taken_ms: at('active') };
  }

  private async startFailoverNodes(count: number): Promise<string[]> {
    const stack = this.requireStack();
    const names = Array.from({ length: count }, () => `bench-failover-${++this.nodeSerial}`);
    await Promise.all(
      names.map((name) => stack.startWorker(syntheticNode(name, 1, this.failoverCostMs, FAILOVER_TIMEOUT_S))),
    );
    return names;
  }
}

/**
 * Runs the cluster bench on a stack of its own (redis-server on a free port, the API, synthetic nodes),
 * stopped at the end, also on SIGINT/SIGTERM (this process then exits with 130).
 */
export async function runClusterBench(options: ClusterBenchOptions): Promise<ClusterBenchResult> {
  const bench = new ClusterBench(options);
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`\ncluster bench: ${signal}, stopping its stack`);
    void bench.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await bench.run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await bench.stop();
  }
}

const SCALING_HEADERS = [
  'slots',
  'nodes x conc',
  'clients',
  'jobs/s',
  'ideal',
  'eff.',
  'p50 ms',
  'submit',
  'queued',
  'on node',
  'notify',
  'slot busy',
  'cpu %',
  'cpu ms/job: api',
  'nodes',
  'redis',
  'bench',
  'ceiling jobs/s',
  'redis cmds/job',
];

function scalingRows(result: ClusterBenchResult): (string | number)[][] {
  return result.scaling.map((point) => [
    point.slots,
    `${point.processes}x${point.concurrency}`,
    point.clients,
    point.jobs_per_s,
    point.ideal_jobs_per_s,
    `${Math.round(point.efficiency * 100)}%`,
    point.latency_ms.p50,
    point.submit_ms,
    point.queued_ms,
    point.on_node_ms,
    point.notify_ms,
    `${Math.round(point.slot_busy * 100)}%`,
    point.cpu_percent.total,
    point.cpu_ms_per_job.api,
    point.cpu_ms_per_job.worker,
    point.cpu_ms_per_job.redis,
    point.cpu_ms_per_job.bench,
    point.cpu_ceiling_jobs_per_s,
    point.redis_commands_per_job,
  ]);
}

function failoverLines(failover: FailoverResult | null): string[] {
  if (!failover) return [];
  const active = failover.kill_to_active_ms;
  const completed = failover.kill_to_completed_ms;
  return [
    `failover after kill -9 (2 nodes, timeout ${failover.timeout_s} s, concurrency 1, a ${failover.job_cost_ms} ms job), ${failover.runs.length} runs:`,
    `  kill -> active on the other node: median ${active.median} ms, min ${active.min} ms, max ${active.max} ms` +
      ` (bound: lock ${failover.lock_ms} + stalled check ${failover.stalled_check_ms} = ${failover.bound_ms} ms;` +
      ` killed just after taking the job, the lock is fresh: expected ${failover.expected_ms[0]}-${failover.expected_ms[1]} ms)`,
    `  kill -> completed: median ${completed.median} ms, max ${completed.max} ms` +
      ` (bound ${failover.bound_ms} + ${failover.job_cost_ms} ms of work)`,
    ...failover.runs.map(
      (run) =>
        `  run ${run.run}: requeued by the stalled check +${run.kill_to_requeued_ms ?? '?'} ms, taken +${run.kill_to_taken_ms ?? '?'} ms,` +
        ` active at the client +${run.kill_to_active_ms} ms, completed +${run.kill_to_completed_ms} ms`,
    ),
  ];
}

/** The report as text: the scaling table, Redis round trips and failover. */
export function renderClusterText(result: ClusterBenchResult): string {
  const { machine, setup } = result;
  const lines = [
    `cluster bench (${result.profile}, ${result.duration_s} s): ${setup.codec}, ${setup.synthetic_cost_ms} ms a frame, ${setup.frame}, ${setup.clients_per_slot} closed-loop clients per slot, ${setup.window_s} s windows`,
    `machine: ${machine.cpus} x ${machine.model}, load ${machine.load_avg_start[0]} -> ${machine.load_avg_end[0]}; node RSS ~${setup.node_rss_mib ?? '?'} MiB`,
    '',
    textTable(SCALING_HEADERS, scalingRows(result)),
    "(latencies: medians in ms; cpu %: all the bench's processes, of one core; ceiling: cores / service cpu per job)",
  ];
  const early = result.scaling.reduce((sum, point) => sum + point.sse_ended_early, 0);
  const jobs = result.scaling.reduce((sum, point) => sum + point.jobs, 0);
  if (early > 0) {
    lines.push(
      `warning: ${early} event streams (for about ${jobs} jobs measured) ended without the job's final event: the API ends a stream once the job record is final, which a node writes before it logs \`completed\`; the client then read the record`,
    );
  }
  const trips = result.round_trips;
  if (trips) {
    const commands = Object.entries(trips.by_command)
      .map(([name, count]) => `${name} ${count}`)
      .join(', ');
    lines.push(
      '',
      `Redis commands per job (MONITOR, ${trips.jobs} jobs on 1 node): ${trips.per_job.total} (API ${trips.per_job.api}, node ${trips.per_job.worker}, other ${trips.per_job.other}), plus ${trips.inside_scripts_per_job} commands inside scripts; round trips (reads by Redis) per job: ${trips.reads_per_job}; an idle node sends ${trips.idle_per_s}/s`,
      `  ${commands}`,
    );
  }
  lines.push('', ...failoverLines(result.failover));
  return lines.join('\n');
}

/** The scaling table and failover summary as Markdown (README). */
export function renderClusterMarkdown(result: ClusterBenchResult): string {
  const headers = ['slots', 'nodes x concurrency', 'jobs/s', 'ideal', 'efficiency', 'p50 ms', 'slot busy'];
  const rows = result.scaling.map((point) => [
    point.slots,
    `${point.processes}x${point.concurrency}`,
    point.jobs_per_s,
    point.ideal_jobs_per_s,
    `${Math.round(point.efficiency * 100)}%`,
    point.latency_ms.p50,
    `${Math.round(point.slot_busy * 100)}%`,
  ]);
  return [markdownTable(headers, rows), '', ...failoverLines(result.failover)].join('\n');
}

const USAGE = `Usage: npm run bench:cluster [-- --quick]

Measures the cluster itself, with nodes running the test-only synthetic codec (--synthetic-cost-ms: a
fixed ${COST_MS} ms a frame, no CPU): throughput of 1-frame ${FRAME.width}x${FRAME.height} jpeg jobs for 1 to 32 job slots
(nodes x concurrency), and the time a killed node's job takes to resume on another node (kill -9).
Runs on a stack of its own (redis-server on a free port, the API, the nodes), stopped at the end.

  --quick   3 slot counts (1, 4, 32), 2.5 s windows, 3 failover runs with a 1.5 s job (under a minute)
  --round-trips  only the Redis round trips per job, by process and command (seconds)
  --help    this text

Writes bench/out/cluster.json (cluster-quick.json with --quick); bench/out/ is ignored by git.`;

async function main(): Promise<void> {
  let values: { help?: boolean; quick?: boolean; 'round-trips'?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        help: { type: 'boolean', short: 'h' },
        quick: { type: 'boolean' },
        'round-trips': { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new Error(`${(error as Error).message.split('\n')[0]}\n\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const quick = values.quick === true;
  const roundTripsOnly = values['round-trips'] === true;
  const result = await runClusterBench({ quick, roundTripsOnly });
  console.log(`\n${renderClusterText(result)}\n`);
  const file = roundTripsOnly ? 'cluster-round-trips.json' : quick ? 'cluster-quick.json' : 'cluster.json';
  const path = join(repoRoot(), BENCH_OUT, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${path}`);
}

/** True when this file is the script node was started with (not imported, e.g. by bench/run.ts). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(resolve(entry)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
