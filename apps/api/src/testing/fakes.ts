import { Readable } from 'node:stream';
import {
  BufferPool,
  EventLog,
  FrameStore,
  JobCancellations,
  JobStore,
  OutputStore,
  type FrameEncoding,
  type JobRecord,
} from '#cluster';
import type { Codec, EncodeJobData, JobEvent, NodeRecord, Pool } from '#contracts';
import { nodeRecord } from '#contracts/testing/node-record.js';
import { EncodeQueue } from '../dispatch/encode-queue.js';
import { CachedNodeList } from '../dispatch/cached-node-list.js';
import { API_CONFIG, loadApiConfig } from '../config/api-config.js';
import { InputStorage } from '../submission/input-storage.js';
import { SubmissionPipeline } from '../submission/submission-pipeline.js';
import { UploadLimits, type Upload } from '../submission/upload-limits.js';

/**
 * In-memory stand-ins for what the API's services reach through Redis and BullMQ: each implements
 * only the methods the services call, and records what was asked of it so a test can check it.
 */

export function liveNode(name: string, pool: Pool, codecs: Codec[], gpuCodecs: Codec[] = []): NodeRecord {
  return nodeRecord({ name, pool, codecs, gpuCodecs });
}

export class FakeCachedNodeList implements Pick<CachedNodeList, 'live'> {
  constructor(public nodes: NodeRecord[] = []) {}
  live(): Promise<NodeRecord[]> {
    return Promise.resolve(this.nodes);
  }
}

type JobStoreUsed = Pick<JobStore, 'create' | 'get' | 'delete' | 'fail' | 'isFinal'>;

export class FakeJobStore implements JobStoreUsed {
  readonly records = new Map<string, JobRecord>();
  /** Errors thrown by the next create() calls, one each. */
  readonly createFailures: Error[] = [];
  creates = 0;

  create(data: EncodeJobData, tenant?: string): Promise<void> {
    this.creates++;
    const failure = this.createFailures.shift();
    if (failure) return Promise.reject(failure);
    if (!this.records.has(data.jobId)) this.records.set(data.jobId, jobRecord(data, tenant ?? null));
    return Promise.resolve();
  }
  get(jobId: string): Promise<JobRecord | null> {
    return Promise.resolve(this.records.get(jobId) ?? null);
  }
  delete(jobId: string): Promise<void> {
    this.records.delete(jobId);
    return Promise.resolve();
  }
  fail(jobId: string, error: string, now: number): Promise<boolean> {
    const record = this.records.get(jobId);
    if (!record || this.isFinal(record.status)) return Promise.resolve(false);
    this.records.set(jobId, { ...record, status: 'failed', error, finishedAt: now });
    return Promise.resolve(true);
  }
  isFinal(status: JobRecord['status']): boolean {
    return status === 'completed' || status === 'failed';
  }
}

export function jobRecord(
  data: EncodeJobData,
  tenant: string | null,
  extra: Partial<JobRecord> = {},
): JobRecord {
  return {
    data,
    status: 'queued',
    progress: 0,
    node: null,
    attempts: 0,
    createdAt: data.createdAt,
    startedAt: null,
    finishedAt: null,
    error: null,
    outputs: [],
    timings: null,
    tenant,
    ...extra,
  };
}

export class FakeEncodeQueue implements Pick<EncodeQueue, 'add' | 'addToNode' | 'removeWaiting'> {
  readonly added: { jobId: string; priority?: number }[] = [];
  readonly addedToNode: { node: string; jobId: string }[] = [];
  readonly removed: { pool: Pool; jobId: string }[] = [];
  /** Errors thrown by the next add()/addToNode() calls, one each. */
  readonly failures: Error[] = [];

  add(data: EncodeJobData, priority?: number): Promise<void> {
    const failure = this.failures.shift();
    if (failure) return Promise.reject(failure);
    this.added.push({ jobId: data.jobId, priority });
    return Promise.resolve();
  }
  addToNode(node: string, data: EncodeJobData): Promise<void> {
    const failure = this.failures.shift();
    if (failure) return Promise.reject(failure);
    this.addedToNode.push({ node, jobId: data.jobId });
    return Promise.resolve();
  }
  removeWaiting(pool: Pool, jobId: string): Promise<boolean> {
    this.removed.push({ pool, jobId });
    return Promise.resolve(true);
  }
}

type FrameStoreUsed = Pick<
  FrameStore,
  | 'writeFrames'
  | 'writeEncodedFrames'
  | 'writeInputChunks'
  | 'writeFrame'
  | 'deleteFrames'
  | 'deleteInputChunks'
>;

export class FakeFrameStore implements FrameStoreUsed {
  /** Stored frames (identity input) per job. */
  readonly frames = new Map<string, Buffer[]>();
  readonly deleted: string[] = [];
  /** Bodies read and stored, whether or not they were deleted since. */
  writes = 0;

  async writeFrames(jobId: string, chunks: AsyncIterable<Buffer>, frameBytes: number): Promise<number> {
    this.writes++;
    const body: Buffer[] = [];
    for await (const chunk of chunks) body.push(chunk);
    const all = Buffer.concat(body);
    const frames: Buffer[] = [];
    for (let at = 0; at < all.length; at += frameBytes) frames.push(all.subarray(at, at + frameBytes));
    this.frames.set(jobId, frames);
    return all.length;
  }
  /** The values frames were stored as, for jobs whose frames the API encoded (its LZ4 blocks). */
  readonly encoded = new Map<string, Buffer[]>();

  async writeEncodedFrames(
    jobId: string,
    chunks: AsyncIterable<Buffer>,
    frameBytes: number,
    _frames: number,
    encoding: FrameEncoding,
    _buffers: BufferPool,
  ): Promise<number> {
    await this.writeFrames(jobId, chunks, frameBytes);
    const values = await Promise.all(
      (this.frames.get(jobId) ?? []).map(
        async (frame) =>
          (await encoding.encode(frame)) ?? Buffer.concat([encoding.header(frameBytes), frame]),
      ),
    );
    this.encoded.set(jobId, values);
    return values.reduce((sum, value) => sum + value.length, 0);
  }
  writeInputChunks(): Promise<number> {
    return Promise.reject(new Error('compressed input is not used by these tests'));
  }
  writeFrame(jobId: string, index: number, frame: Buffer): Promise<void> {
    const frames = this.frames.get(jobId) ?? [];
    frames[index] = frame;
    this.frames.set(jobId, frames);
    return Promise.resolve();
  }
  deleteFrames(jobId: string): Promise<void> {
    this.frames.delete(jobId);
    this.deleted.push(jobId);
    return Promise.resolve();
  }
  deleteInputChunks(jobId: string): Promise<void> {
    this.deleted.push(jobId);
    return Promise.resolve();
  }
}

export class FakeOutputStore implements Pick<OutputStore, 'get' | 'deleteAll'> {
  readonly outputs = new Map<string, Buffer>();
  readonly deletedAll: string[] = [];
  get(jobId: string, index: number): Promise<Buffer | null> {
    return Promise.resolve(this.outputs.get(`${jobId}/${index}`) ?? null);
  }
  deleteAll(jobId: string): Promise<void> {
    for (const key of [...this.outputs.keys()]) if (key.startsWith(`${jobId}/`)) this.outputs.delete(key);
    this.deletedAll.push(jobId);
    return Promise.resolve();
  }
}

export class FakeEventLog implements Pick<EventLog, 'append'> {
  readonly appended: { jobId: string; event: JobEvent }[] = [];
  append(jobId: string, event: JobEvent): Promise<string | null> {
    this.appended.push({ jobId, event });
    return Promise.resolve(`${this.appended.length}-0`);
  }
}

export class FakeCancellations implements Pick<JobCancellations, 'announce'> {
  readonly announced: string[] = [];
  announce(jobId: string): Promise<void> {
    this.announced.push(jobId);
    return Promise.resolve();
  }
}

/**
 * The fakes behind the submission pipeline (and the services over it: JobsService, JobSubmission,
 * StreamsService), and the providers that put them in a testing module.
 */
export function submissionFakes(nodes: NodeRecord[] = [], env: Record<string, string> = {}) {
  const fakes = {
    nodes: new FakeCachedNodeList(nodes),
    jobs: new FakeJobStore(),
    queue: new FakeEncodeQueue(),
    frames: new FakeFrameStore(),
    outputs: new FakeOutputStore(),
    events: new FakeEventLog(),
    cancellations: new FakeCancellations(),
  };
  const providers = [
    SubmissionPipeline,
    InputStorage,
    UploadLimits,
    { provide: API_CONFIG, useValue: loadApiConfig(env) },
    { provide: CachedNodeList, useValue: fakes.nodes },
    { provide: JobStore, useValue: fakes.jobs },
    { provide: EncodeQueue, useValue: fakes.queue },
    { provide: FrameStore, useValue: fakes.frames },
    { provide: OutputStore, useValue: fakes.outputs },
    { provide: EventLog, useValue: fakes.events },
    { provide: JobCancellations, useValue: fakes.cancellations },
  ];
  return { fakes, providers };
}

/** A raw upload whose body is `body`, sent in pieces of `piece` bytes. */
export function rawUpload(body: Buffer, piece = 1000): Upload {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let at = 0; at < body.length; at += piece) yield body.subarray(at, at + piece);
  }
  // Only what the services touch: the body's pieces, and the request to drain on an early answer.
  return { chunks, request: Readable.from([]) } as unknown as Upload;
}

/**
 * The few Redis commands the API's small stores use (strings with expiry, sorted sets), in memory.
 * Expiry is recorded, not enforced: tests that need a key gone delete it.
 */
export class FakeRedis {
  readonly strings = new Map<string, string>();
  readonly ttls = new Map<string, number>();
  readonly sets = new Map<string, Map<string, number>>();

  set(key: string, value: string, ...options: (string | number)[]): Promise<'OK' | null> {
    const words = options.map((option) => String(option).toUpperCase());
    if (words.includes('NX') && this.strings.has(key)) return Promise.resolve(null);
    if (words.includes('XX') && !this.strings.has(key)) return Promise.resolve(null);
    this.strings.set(key, value);
    const ttlAt = words.findIndex((word) => word === 'EX' || word === 'PX');
    if (ttlAt >= 0) this.ttls.set(key, Number(options[ttlAt + 1]) * (words[ttlAt] === 'EX' ? 1000 : 1));
    return Promise.resolve('OK');
  }
  get(key: string): Promise<string | null> {
    return Promise.resolve(this.strings.get(key) ?? null);
  }
  exists(...keys: string[]): Promise<number> {
    return Promise.resolve(keys.filter((key) => this.strings.has(key) || this.sets.has(key)).length);
  }
  expire(key: string, seconds: number): Promise<number> {
    if (!this.strings.has(key) && !this.sets.has(key)) return Promise.resolve(0);
    this.ttls.set(key, seconds * 1000);
    return Promise.resolve(1);
  }
  del(...keys: string[]): Promise<number> {
    let deleted = 0;
    for (const key of keys) if (this.strings.delete(key) || this.sets.delete(key)) deleted++;
    return Promise.resolve(deleted);
  }
  zadd(key: string, score: string, member: string): Promise<number> {
    const set = this.sets.get(key) ?? new Map<string, number>();
    const added = set.has(member) ? 0 : 1;
    set.set(member, Number(score));
    this.sets.set(key, set);
    return Promise.resolve(added);
  }
  zcard(key: string): Promise<number> {
    return Promise.resolve(this.sets.get(key)?.size ?? 0);
  }
  zrange(key: string): Promise<string[]> {
    return Promise.resolve([...(this.sets.get(key)?.keys() ?? [])]);
  }
  zrem(key: string, ...members: string[]): Promise<number> {
    const set = this.sets.get(key);
    return Promise.resolve(members.filter((member) => set?.delete(member)).length);
  }
}
