import type { LoggedStreamEvent, StreamEvent, StreamParams, StreamState } from '#contracts';
import { liveSessionJobId } from '#contracts';
import type { RedisClient } from './redis-connection.js';
import type { KeySpace } from './keys.js';
import { LuaScript } from './lua-script.js';

/** A stream as stored in its Redis hash. */
export interface StreamRecord {
  id: string;
  params: StreamParams;
  state: StreamState;
  /** The seq the next acknowledged batch gets (= batches acknowledged so far). */
  nextSeq: number;
  /** The seq delivered next (= batches delivered so far). */
  cursor: number;
  frames: number;
  lastEventId: number;
  /** Live mode: the node the stream is pinned to, and how many times it moved. */
  node: string | null;
  epoch: number;
  createdAt: number;
  /** The tenant whose key opened the stream (null: opened before tenancy). */
  tenant: string | null;
}

/** `repeat`: the idempotency key was seen before (the API's IdempotencyStore reads its answer). */
export type AllocateResult = { seq: number; firstFrame: number } | 'repeat' | 'closed' | 'missing';

export type CommitResult =
  | { status: 'appended'; delivered: number; ended: boolean }
  | { status: 'duplicate' }
  | { status: 'not-pinned' }
  | { status: 'missing' };

// The retention the stream was created with (the API's), whoever writes.
const EXPIRE_ALL = `
local ttl = redis.call('HGET', KEYS[1], 'ttl') or ARGV[1]
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ttl) end`;

// Appends one event: ids count 1, 2, 3, ... per stream, as stream entry ids 0-N.
const APPEND = `
local function append(event)
  local n = redis.call('HINCRBY', KEYS[1], 'lastEventId', 1)
  redis.call('XADD', KEYS[3], 'MAXLEN', '=', redis.call('HGET', KEYS[1], 'logMax'), '0-' .. n, 'e', event)
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. '|' .. n .. '|' .. event)
end
-- Appends every parked batch from \`cursor\` on, in seq order; stores and returns the new cursor.
local function deliverParked(cursor)
  while true do
    local parked = redis.call('HGET', KEYS[2], tostring(cursor))
    if not parked then break end
    for _, event in ipairs(cjson.decode(parked)) do append(event) end
    redis.call('HDEL', KEYS[2], tostring(cursor))
    redis.call('HDEL', KEYS[1], 'job:' .. cursor, 'key:' .. cursor)
    cursor = cursor + 1
  end
  redis.call('HSET', KEYS[1], 'cursor', cursor)
  return cursor
end
local function endIfDone()
  if redis.call('HGET', KEYS[1], 'state') ~= 'closed' then return false end
  local cursor = tonumber(redis.call('HGET', KEYS[1], 'cursor'))
  if cursor ~= tonumber(redis.call('HGET', KEYS[1], 'nextSeq')) then return false end
  append(cjson.encode({ type = 'end', batches = cursor, reason = redis.call('HGET', KEYS[1], 'closeReason') }))
  redis.call('HSET', KEYS[1], 'state', 'ended')
  return true
end`;

/**
 * The reorder buffer. A batch's events are parked under its seq; then every batch from the cursor on
 * that is complete is appended to the log, in seq order. A seq below the cursor, or already parked, is a
 * repeat (a batch encoded twice) and changes nothing: each batch is delivered exactly once. With a node
 * guard (live mode), only the node the stream is pinned to may commit.
 * KEYS: record, pending, log. ARGV: retention, (unused), channel, streamId, seq, events (JSON array of
 * JSON strings), node guard ('' for none). The log keeps the record's `logMax` newest events.
 * Returns {1, delivered, ended} | {0} duplicate | {-1} missing | {-2} not pinned.
 */
const COMMIT = new LuaScript(
  'encoderStreamCommit',
  `${APPEND}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if ARGV[7] ~= '' and redis.call('HGET', KEYS[1], 'node') ~= ARGV[7] then return {-2} end
local seq = tonumber(ARGV[5])
local cursor = tonumber(redis.call('HGET', KEYS[1], 'cursor'))
if seq < cursor or redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then return {0} end
redis.call('HSET', KEYS[2], ARGV[5], ARGV[6])
cursor = deliverParked(cursor)
local ended = endIfDone()
${EXPIRE_ALL}
return {1, cursor, ended and 1 or 0}`,
  3,
);

/**
 * One frame of a live session, committed as a one-frame batch by the node that holds the stream. Fenced:
 * only while the record is open and names this node at the session's epoch, and only for the stream's
 * next frame. Allocates the batch's seq, stores the output's bytes (the key is in the stream's slot) and
 * hands the `output` and `batch` events to the reorder buffer as COMMIT does (appended at once unless
 * POST batches acknowledged earlier are still being encoded).
 * KEYS: record, pending, log, output. ARGV: retention, (unused), channel, streamId, node, epoch, frame,
 * output bytes, output event before its seq, after it, batch event before its seq, after it.
 * Returns {1, seq} | {0} frame already committed | {-1} missing | {-2} moved | {-3} not open |
 * {-4, frames} not the stream's next frame.
 */
const COMMIT_SESSION_FRAME = new LuaScript(
  'encoderStreamSessionFrame',
  `${APPEND}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local state, node, epoch, frames = unpack(redis.call('HMGET', KEYS[1], 'state', 'node', 'epoch', 'frames'))
if node ~= ARGV[5] or tonumber(epoch) ~= tonumber(ARGV[6]) then return {-2} end
if state ~= 'open' then return {-3} end
local frame = tonumber(ARGV[7])
frames = tonumber(frames)
if frame < frames then return {0} end
if frame > frames then return {-4, frames} end
local seq = redis.call('HINCRBY', KEYS[1], 'nextSeq', 1) - 1
redis.call('HINCRBY', KEYS[1], 'frames', 1)
redis.call('SET', KEYS[4], ARGV[8], 'EX', redis.call('HGET', KEYS[1], 'ttl') or ARGV[1])
local events = { ARGV[9] .. seq .. ARGV[10], ARGV[11] .. seq .. ARGV[12] }
local cursor = tonumber(redis.call('HGET', KEYS[1], 'cursor'))
if seq ~= cursor then
  redis.call('HSET', KEYS[2], tostring(seq), cjson.encode(events))
else
  for _, event in ipairs(events) do append(event) end
  deliverParked(cursor + 1)
end
${EXPIRE_ALL}
return {1, seq}`,
  4,
);

/**
 * KEYS: record, idempotency key. ARGV: frames, job id, whether a key was given, its lifetime, the key, the
 * stream id. Returns {seq, firstFrame}, {-1} closed, {-2} missing, {-3} for a key seen before. The batch's job id
 * (and key) are kept under `job:<seq>` (`key:<seq>`) until the batch is delivered, for the stall check.
 * The key is recorded with the seq in the same step, as pending until the batch is queued (an entry as
 * the API's IdempotencyStore keeps them, its answer the batch): a retry never makes a second batch, and
 * never gets a 202 for one that was not queued.
 */
const ALLOCATE = new LuaScript(
  'encoderStreamAllocate',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {-2} end
if ARGV[3] == '1' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return {-3} end
end
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return {-1} end
local seq = redis.call('HINCRBY', KEYS[1], 'nextSeq', 1) - 1
redis.call('HSET', KEYS[1], 'job:' .. seq, ARGV[2])
local frames = tonumber(ARGV[1])
local first = redis.call('HINCRBY', KEYS[1], 'frames', frames) - frames
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'key:' .. seq, ARGV[5])
  local batch = { streamId = ARGV[6], seq = seq, firstFrame = first, jobId = ARGV[2], frames = frames }
  redis.call('SET', KEYS[2], cjson.encode({ fingerprint = '', state = 'pending', result = batch }), 'EX', ARGV[4])
end
return {seq, first}`,
  2,
);

/** KEYS: record, pending, log. ARGV: retention, maxlen, channel, streamId, reason. 1 closed, 0 was not open, -1 missing. */
const CLOSE = new LuaScript(
  'encoderStreamClose',
  `${APPEND}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'closed', 'closeReason', ARGV[5])
endIfDone()
${EXPIRE_ALL}
return 1`,
  3,
);

/** KEYS: record. ARGV: expected node, new node. 1 when moved. */
const REPIN = new LuaScript(
  'encoderStreamRepin',
  `
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'node', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
return 1`,
  1,
);

export const DEFAULT_MAX_STREAM_LOG_EVENTS = 10_000;

/** One output of a live session, for StreamStore.commitSessionFrame. */
export interface SessionFrameOutput {
  /** The node that holds the stream (its id, as in the record) and the epoch the session started at. */
  node: string;
  epoch: number;
  /** Shown as the `batch` event's `node` (the node's name, as for POST batches). */
  nodeName: string;
  frame: number;
  keyframe: boolean;
  contentType: string;
  data: Buffer;
}

export type SessionCommitResult =
  | { status: 'appended'; seq: number }
  /** This frame is in the log already (a commit whose reply was lost, repeated). */
  | { status: 'duplicate' }
  /** The stream is pinned elsewhere now, or at a later epoch: this node must stop writing. */
  | { status: 'moved' }
  | { status: 'not-open' }
  | { status: 'missing' }
  /** Frames reached the stream some other way (POST /frames): the session's numbering is stale. */
  | { status: 'out-of-order'; frames: number };

/**
 * Streams: their records, the reorder buffer and the ordered, resumable event log. `maxLogEvents` is
 * fixed into a stream's record when it is created (by the API, from its config): nodes that append to
 * the log trim it to that.
 */
export class StreamStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly retentionSeconds: number,
    private readonly maxLogEvents = DEFAULT_MAX_STREAM_LOG_EVENTS,
  ) {}

  private streamKeys(streamId: string): string[] {
    return [
      this.keys.streamRecord(streamId),
      this.keys.streamPending(streamId),
      this.keys.streamLog(streamId),
    ];
  }

  private scriptArgs(streamId: string): string[] {
    return [String(this.retentionSeconds), '', this.keys.streamEventsChannel, streamId];
  }

  async create(
    streamId: string,
    params: StreamParams,
    node: string | null,
    createdAt: number,
    tenant?: string,
  ): Promise<void> {
    const key = this.keys.streamRecord(streamId);
    const results = await this.redis
      .multi()
      .hset(key, {
        params: JSON.stringify(params),
        state: 'open',
        nextSeq: '0',
        cursor: '0',
        frames: '0',
        lastEventId: '0',
        node: node ?? '',
        epoch: '0',
        logMax: String(this.maxLogEvents),
        ttl: String(this.retentionSeconds),
        createdAt: String(createdAt),
        ...(tenant === undefined ? {} : { tenant }),
      })
      .expire(key, this.retentionSeconds)
      .exec();
    const failed = results?.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
  }

  async get(streamId: string): Promise<StreamRecord | null> {
    const hash = await this.redis.hgetall(this.keys.streamRecord(streamId));
    if (!hash.params) return null;
    return {
      id: streamId,
      params: JSON.parse(hash.params) as StreamParams,
      state: hash.state as StreamState,
      nextSeq: Number(hash.nextSeq),
      cursor: Number(hash.cursor),
      frames: Number(hash.frames),
      lastEventId: Number(hash.lastEventId),
      node: hash.node || null,
      epoch: Number(hash.epoch),
      createdAt: Number(hash.createdAt),
      tenant: hash.tenant ?? null,
    };
  }

  /** Where a live stream stands: the seq delivered next and its node; null for an unknown stream. */
  async position(
    streamId: string,
  ): Promise<{ cursor: number; node: string | null; state: StreamState } | null> {
    const [cursor, node, state] = await this.redis.hmget(
      this.keys.streamRecord(streamId),
      'cursor',
      'node',
      'state',
    );
    return cursor === null
      ? null
      : { cursor: Number(cursor), node: node || null, state: state as StreamState };
  }

  /** The job of an acknowledged batch that is not delivered yet. */
  async jobOf(streamId: string, seq: number): Promise<string | null> {
    return this.redis.hget(this.keys.streamRecord(streamId), `job:${seq}`);
  }

  /** The seq the stream delivers next, or null for an unknown stream. */
  async cursor(streamId: string): Promise<number | null> {
    const cursor = await this.redis.hget(this.keys.streamRecord(streamId), 'cursor');
    return cursor === null ? null : Number(cursor);
  }

  /**
   * Gives the next batch its seq and the stream-wide number of its first frame; with an idempotency key
   * seen before, the batch that key got instead.
   */
  async allocate(
    streamId: string,
    frames: number,
    jobId: string,
    idempotencyKey?: string,
  ): Promise<AllocateResult> {
    const [seq, second] = (await ALLOCATE.run(
      this.redis,
      [this.keys.streamRecord(streamId), this.keys.streamBatchKey(streamId, idempotencyKey ?? '')],
      [
        String(frames),
        jobId,
        idempotencyKey ? '1' : '0',
        String(this.retentionSeconds),
        idempotencyKey ?? '',
        streamId,
      ],
    )) as [number, number];
    if (seq === -2) return 'missing';
    if (seq === -1) return 'closed';
    if (seq === -3) return 'repeat';
    return { seq, firstFrame: second };
  }

  /** The idempotency key of an undelivered batch, if it was sent with one. */
  async keyOf(streamId: string, seq: number): Promise<string | null> {
    return this.redis.hget(this.keys.streamRecord(streamId), `key:${seq}`);
  }

  async commit(
    streamId: string,
    seq: number,
    events: StreamEvent[],
    pinnedNode?: string,
  ): Promise<CommitResult> {
    const [code, delivered, ended] = (await COMMIT.run(this.redis, this.streamKeys(streamId), [
      ...this.scriptArgs(streamId),
      String(seq),
      JSON.stringify(events.map((event) => JSON.stringify(event))),
      pinnedNode ?? '',
    ])) as number[];
    switch (code) {
      case 1:
        return { status: 'appended', delivered, ended: ended === 1 };
      case 0:
        return { status: 'duplicate' };
      case -2:
        return { status: 'not-pinned' };
      default:
        return { status: 'missing' };
    }
  }

  /** Logs one live-session frame's output (and stores its bytes), fenced: see COMMIT_SESSION_FRAME. */
  async commitSessionFrame(streamId: string, output: SessionFrameOutput): Promise<SessionCommitResult> {
    const jobId = liveSessionJobId(streamId);
    const outputTail: Omit<Extract<StreamEvent, { type: 'output' }>, 'type' | 'seq'> = {
      jobId,
      index: output.frame,
      frame: output.frame,
      contentType: output.contentType,
      bytes: output.data.length,
      keyframe: output.keyframe,
    };
    const batchTail: Omit<Extract<StreamEvent, { type: 'batch' }>, 'type' | 'seq'> = {
      jobId,
      frames: 1,
      outputs: 1,
      node: output.nodeName,
    };
    const [code, value] = (await COMMIT_SESSION_FRAME.run(
      this.redis,
      [...this.streamKeys(streamId), this.keys.sessionOutput(streamId, output.frame)],
      [
        ...this.scriptArgs(streamId),
        output.node,
        String(output.epoch),
        String(output.frame),
        output.data,
        '{"type":"output","seq":',
        `,${JSON.stringify(outputTail).slice(1)}`,
        '{"type":"batch","seq":',
        `,${JSON.stringify(batchTail).slice(1)}`,
      ],
    )) as number[];
    switch (code) {
      case 1:
        return { status: 'appended', seq: value };
      case 0:
        return { status: 'duplicate' };
      case -2:
        return { status: 'moved' };
      case -3:
        return { status: 'not-open' };
      case -4:
        return { status: 'out-of-order', frames: value };
      default:
        return { status: 'missing' };
    }
  }

  /** The newest logged events, newest first, up to `count`, before `beforeId` (exclusive; omitted: the end). */
  async readBefore(streamId: string, count: number, beforeId?: number): Promise<LoggedStreamEvent[]> {
    const entries = await this.redis.xrevrange(
      this.keys.streamLog(streamId),
      beforeId === undefined ? '+' : `(0-${beforeId}`,
      '-',
      'COUNT',
      count,
    );
    return loggedEvents(streamId, entries);
  }

  /** Stops taking frames; `end` is logged once every acknowledged batch is delivered. */
  async close(streamId: string, reason: string): Promise<'closed' | 'not-open' | 'missing'> {
    const code = (await CLOSE.run(this.redis, this.streamKeys(streamId), [
      ...this.scriptArgs(streamId),
      reason,
    ])) as number;
    return code === 1 ? 'closed' : code === 0 ? 'not-open' : 'missing';
  }

  /** Moves a live stream to another node, unless someone else already did. */
  async repin(streamId: string, fromNode: string, toNode: string): Promise<boolean> {
    return (await REPIN.run(this.redis, [this.keys.streamRecord(streamId)], [fromNode, toNode])) === 1;
  }

  /** Up to `count` logged events after `afterId` (0: from the start), in order. */
  async readAfter(streamId: string, afterId: number, count: number): Promise<LoggedStreamEvent[]> {
    const entries = await this.redis.xrange(
      this.keys.streamLog(streamId),
      `0-${afterId + 1}`,
      '+',
      'COUNT',
      count,
    );
    return loggedEvents(streamId, entries);
  }
}

/** Entries of a stream's event log (ids `0-<n>`, one `event` field of JSON) as LoggedStreamEvents. */
function loggedEvents(streamId: string, entries: [id: string, fields: string[]][]): LoggedStreamEvent[] {
  return entries.map(([id, fields]) => ({
    id: Number(id.slice(2)),
    streamId,
    event: JSON.parse(fields[1]) as StreamEvent,
  }));
}
