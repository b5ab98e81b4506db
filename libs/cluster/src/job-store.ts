import type { RedisClient } from './redis-connection.js';
import type { EncodeJobData, JobEvent, JobStatus, JobTimings, OutputInfo, Pool } from '#contracts';
import type { KeySpace } from './keys.js';
import { LuaScript } from './lua-script.js';
import { appendArguments, appendEventsLua } from './event-log.js';

/** A job as stored in its Redis hash: the source of truth for `GET /v1/jobs/:id`. */
export interface JobRecord {
  data: EncodeJobData;
  status: JobStatus;
  progress: number;
  node: string | null;
  attempts: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
  outputs: OutputInfo[];
  /** Where the node spent the job's time; recorded on completion. */
  timings: JobTimings | null;
  /** The tenant whose key made the job (null: made before tenancy, or by no one in particular). */
  tenant: string | null;
}

const FINAL: JobStatus[] = ['completed', 'failed'];

// A late run of a job that another node already finished must not move it backwards.
const UPDATE_UNLESS_FINAL = new LuaScript(
  'encoderUpdateUnlessFinal',
  `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'completed' or status == 'failed' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`,
  1,
);

// The same, and the events that say so appended (appendEventsLua) only if the update took: one round
// trip, and no event without its record change nor the reverse. ARGV[1]: how many field arguments follow.
const UPDATE_AND_LOG = new LuaScript(
  'encoderUpdateAndLog',
  `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'completed' or status == 'failed' then return 0 end
local o = tonumber(ARGV[1]) + 1
redis.call('HSET', KEYS[1], unpack(ARGV, 2, o))
${appendEventsLua('KEYS[2]', 'KEYS[3]')}
return 1`,
  3,
);

// The record and its expiry in one command (a MULTI is four on the wire and in the AOF).
const CREATE = new LuaScript(
  'encoderCreateJob',
  `
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1`,
  1,
);

export class JobStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly retentionSeconds: number,
  ) {}

  /** `tenant`: who owns the job: only they (and operators) may see it. */
  async create(data: EncodeJobData, tenant?: string): Promise<void> {
    const fields: Record<string, string> = {
      data: JSON.stringify(data),
      status: 'queued',
      progress: '0',
      attempts: '0',
      createdAt: String(data.createdAt),
      ...(tenant === undefined ? {} : { tenant }),
    };
    await CREATE.run(
      this.redis,
      [this.keys.jobRecord(data.jobId)],
      [String(this.retentionSeconds), ...Object.entries(fields).flat()],
    );
  }

  /** Just the status (cheaper than get), or null for an unknown or expired job. */
  async status(jobId: string): Promise<JobStatus | null> {
    return ((await this.redis.hget(this.keys.jobRecord(jobId), 'status')) as JobStatus | null) ?? null;
  }

  async get(jobId: string): Promise<JobRecord | null> {
    const fields = await this.redis.hgetall(this.keys.jobRecord(jobId));
    if (!fields.data) return null;
    const outputs = Object.entries(fields)
      .filter(([name]) => name.startsWith('out:'))
      .map(([, value]) => JSON.parse(value) as OutputInfo)
      .sort((a, b) => a.index - b.index);
    const numberOrNull = (value: string | undefined) => (value ? Number(value) : null);
    const data = JSON.parse(fields.data) as EncodeJobData;
    return {
      data: fields.pool ? { ...data, pool: fields.pool as Pool } : data,
      status: fields.status as JobStatus,
      progress: Number(fields.progress ?? 0),
      node: fields.node ?? null,
      attempts: Number(fields.attempts ?? 0),
      createdAt: Number(fields.createdAt),
      startedAt: numberOrNull(fields.startedAt),
      finishedAt: numberOrNull(fields.finishedAt),
      error: fields.error ?? null,
      outputs,
      timings: fields.timings ? (JSON.parse(fields.timings) as JobTimings) : null,
      tenant: fields.tenant ?? null,
    };
  }

  /** Removes a finished job's record and event log (its outputs are the OutputStore's). */
  async delete(jobId: string): Promise<void> {
    await this.redis.del(this.keys.jobRecord(jobId), this.keys.events(jobId), this.keys.emitted(jobId));
  }

  /** The pool the job is queued in now (gpu work moved to the cpu pool). */
  setPool(jobId: string, pool: Pool): Promise<boolean> {
    return this.update(jobId, { pool });
  }

  /** `events` are logged in the same step, only if the job was not final (JobStore.update). */
  markActive(
    jobId: string,
    node: string,
    attempt: number,
    now: number,
    events: JobEvent[] = [],
  ): Promise<boolean> {
    return this.update(jobId, { status: 'active', node, attempts: attempt, startedAt: now }, events);
  }

  setProgress(jobId: string, progress: number): Promise<boolean> {
    return this.update(jobId, { progress: Math.round(progress * 1000) / 1000 });
  }

  addOutput(jobId: string, output: OutputInfo): Promise<boolean> {
    return this.update(jobId, { [`out:${output.index}`]: JSON.stringify(output) });
  }

  /**
   * Completes the job and lists `outputs` on it in one step, with `events` logged in the same step: a
   * job that is cancelled (or fails) before this never lists an output, and one that completes lists
   * them all at once and announces them (`output` ..., `completed`) atomically.
   */
  complete(
    jobId: string,
    now: number,
    timings?: JobTimings,
    outputs: OutputInfo[] = [],
    events: JobEvent[] = [],
  ): Promise<boolean> {
    return this.update(
      jobId,
      {
        status: 'completed',
        progress: 1,
        finishedAt: now,
        ...(timings ? { timings: JSON.stringify(timings) } : {}),
        ...Object.fromEntries(outputs.map((output) => [`out:${output.index}`, JSON.stringify(output)])),
      },
      events,
    );
  }

  fail(jobId: string, error: string, now: number): Promise<boolean> {
    return this.update(jobId, { status: 'failed', error, finishedAt: now });
  }

  isFinal(status: JobStatus): boolean {
    return FINAL.includes(status);
  }

  /**
   * True when applied; false when the job already finished (or expired). `events` go to the job's log
   * in the same script, only when the update applies.
   */
  private async update(
    jobId: string,
    fields: Record<string, string | number>,
    events: JobEvent[] = [],
  ): Promise<boolean> {
    const args = Object.entries(fields).flatMap(([name, value]) => [name, String(value)]);
    const result =
      events.length === 0
        ? await UPDATE_UNLESS_FINAL.run(this.redis, [this.keys.jobRecord(jobId)], args)
        : await UPDATE_AND_LOG.run(
            this.redis,
            [this.keys.jobRecord(jobId), this.keys.events(jobId), this.keys.emitted(jobId)],
            [
              String(args.length),
              ...args,
              ...appendArguments(this.keys, this.retentionSeconds, jobId, events),
            ],
          );
    return result === 1;
  }
}
