import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { Codec, EncodeJobData, Pool } from '#contracts';
import type { RedisClient } from '#cluster';
import { KeySpace, NodeRegistry, StreamStore, type StreamRecord } from '#cluster';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { ClusterChores, type ClusterChore } from '../dispatch/cluster-chores.js';
import { EncodeQueue } from '../dispatch/encode-queue.js';
import { REDIS } from '../dispatch/tokens.js';
import {
  DEFAULT_LIVE_IDLE_MS,
  canHostLive,
  chooseLiveNode,
  type LivePlacementOptions,
} from './live-placement.js';

/**
 * Why the API moves a live stream off its node: `unreachable`, a client reported it and its data port
 * did not answer the API's probe; `expired`, its registry record expired (the supervisor's backstop, or
 * a batch submitted to a stream whose node is gone). (A draining node moves its own streams: `drain`.)
 * Counted cluster-wide in Redis (keys.liveMoveCounts), read by /metrics.
 */
export type LiveMoveReason = 'unreachable' | 'expired';

export interface LivePlace {
  node: string | null;
  atCapacity: boolean;
}

/** How long a dead node's empty queue is kept before it is deleted. */
const FORGET_DEAD_NODE_MS = 30_000;

/**
 * How long a node whose data port did not answer a probe gets no stream from this API process (its
 * registry record outlives a killed node by up to its --timeout; node ids are per process, so a dead
 * one never comes back).
 */
export const SILENT_NODE_MS = 60_000;

/**
 * Where live streams run: placing a new one on the least loaded node, and the supervisor that moves the
 * streams of a node that died (its registry record expired) to another node, together with the batches
 * left on the dead node's queue. The new node starts a fresh encoder (a keyframe) at the first batch not
 * yet delivered. The supervisor is a cluster chore (one API process at a time runs it); a submission
 * that finds its stream's node dead moves the stream itself, and a repin is a compare-and-set, so only
 * one of them moves a stream.
 */
@Injectable()
export class LiveStreams implements ClusterChore, OnModuleInit {
  readonly name = 'live-supervisor';
  readonly everyMs: number;
  private readonly logger = new Logger(LiveStreams.name);
  private readonly deadSince = new Map<string, number>();
  /** Nodes found silent (LiveFailover), until when. */
  private readonly silentUntil = new Map<string, number>();

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly keys: KeySpace,
    private readonly registry: NodeRegistry,
    private readonly streams: StreamStore,
    private readonly queue: EncodeQueue,
    private readonly chores: ClusterChores,
  ) {
    this.everyMs = config.liveSupervisorMs;
  }

  onModuleInit(): void {
    this.chores.register(this);
  }

  run(): Promise<void> {
    return this.supervise();
  }

  /** Another API process supervises now: what this one saw die, and the queues it looked after, go. */
  async standDown(): Promise<void> {
    for (const nodeId of [...this.deadSince.keys()]) await this.queue.stopRecoveringNode(nodeId);
    this.deadSince.clear();
  }

  /**
   * Picks a node for a live stream, one with a data port when one can take it: `node` null when none
   * can take it, `atCapacity` then saying that some could encode it but every one of them holds as many
   * live encoder contexts as it publishes it can. Contexts are counted here, not taken from the node's record (that lags by a heartbeat, and
   * would let a burst of new streams past the capacity): the streams pinned to the node that were
   * created or got a batch within its idle timeout (older ones had their encoder closed).
   */
  async place(
    codec: Codec,
    pool: Pool,
    options: LivePlacementOptions = {},
    now = Date.now(),
  ): Promise<LivePlace> {
    const listed = await this.registry.list();
    for (const [nodeId, until] of this.silentUntil) {
      if (until <= now || !listed.some((node) => node.id === nodeId)) this.silentUntil.delete(nodeId);
    }
    const nodes = listed.filter((node) => !this.silentUntil.has(node.id));
    const pinned = await Promise.all(
      nodes.map((node) => this.redis.smembers(this.keys.nodeStreams(node.id))),
    );
    const contexts = await Promise.all(
      nodes.map(async (node, index) => {
        if (node.liveCapacity === undefined || pinned[index].length === 0) return 0;
        const seen = await this.redis.zmscore(this.keys.liveActivity, ...pinned[index]);
        const since = now - (node.liveIdleTimeoutMs ?? DEFAULT_LIVE_IDLE_MS);
        return seen.filter((at) => at !== null && Number(at) >= since).length;
      }),
    );
    const streams = new Map(nodes.map((node, index) => [node.id, pinned[index].length]));
    const held = new Map(nodes.map((node, index) => [node.id, contexts[index]]));
    const choose = (candidates: typeof nodes) =>
      chooseLiveNode(
        codec,
        pool,
        candidates,
        (id) => streams.get(id) ?? 0,
        options,
        (id) => held.get(id) ?? 0,
      );
    // A node with a data port gives the stream a session (frames straight to it); one without takes
    // its frames through POST /frames only.
    const node = choose(nodes.filter((candidate) => candidate.dataUrl)) ?? choose(nodes);
    if (node) return { node: node.id, atCapacity: false };
    const full = nodes.filter(
      (candidate) => candidate.id !== options.exclude && canHostLive(candidate, codec, pool),
    );
    return { node: null, atCapacity: full.length > 0 };
  }

  /**
   * A node that a client reported and whose data port did not answer: placement (new streams, moves)
   * leaves it out for SILENT_NODE_MS, or until its registry record is gone, whichever comes first.
   */
  markSilent(nodeId: string, now = Date.now()): void {
    this.silentUntil.set(nodeId, now + SILENT_NODE_MS);
  }

  /** Every stream is watched for stalls until it ends (StreamStallCheck). */
  async track(streamId: string): Promise<void> {
    await this.redis.sadd(this.keys.openStreams, streamId);
  }

  /** The stream was created or got a batch: it holds (or is about to hold) an encoder context. */
  async touch(streamId: string, now = Date.now()): Promise<void> {
    await this.redis.zadd(this.keys.liveActivity, now, streamId);
  }

  async pin(streamId: string, nodeId: string): Promise<void> {
    await this.touch(streamId);
    await this.redis.hset(this.keys.liveStreams, streamId, nodeId);
    await this.watchNode(nodeId);
    await this.redis.sadd(this.keys.nodeStreams(nodeId), streamId);
  }

  async unpin(streamId: string): Promise<void> {
    const nodeId = await this.redis.hget(this.keys.liveStreams, streamId);
    await this.redis.hdel(this.keys.liveStreams, streamId);
    await this.redis.zrem(this.keys.liveActivity, streamId);
    if (nodeId) await this.redis.srem(this.keys.nodeStreams(nodeId), streamId);
  }

  /** The supervisor looks after a node's queue from the first batch put on it until it is gone for good. */
  async watchNode(nodeId: string): Promise<void> {
    await this.redis.sadd(this.keys.liveNodes, nodeId);
  }

  /**
   * The node a live stream's next batch goes to: its pinned node while that one lives, else the node it
   * is moved to now; null when no live node can take it.
   */
  async nodeFor(streamId: string): Promise<string | null> {
    const record = await this.streams.get(streamId);
    return record ? this.nodeOf(record) : null;
  }

  /** nodeFor, with the stream's record at hand (a batch being submitted has just read it). */
  async nodeOf(record: StreamRecord): Promise<string | null> {
    if (!record.node) return null;
    if (await this.isAlive(record.node)) return record.node;
    return this.move(record, 'expired');
  }

  /**
   * Moves a live stream off its node now (compare-and-set on the node, epoch + 1, which fences the old
   * node out of the stream's log) to the least loaded other node, at its capacity or not. The node the
   * stream is on afterwards (another caller may have moved it first), or null when none can take it.
   */
  async move(record: StreamRecord, reason: LiveMoveReason): Promise<string | null> {
    if (!record.node) return null;
    return this.relocate(record.id, record.node, record.params.codec, record.params.pool, reason);
  }

  private async isAlive(nodeId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.node(nodeId))) === 1;
  }

  private async relocate(
    streamId: string,
    from: string,
    codec: Codec,
    pool: Pool,
    reason: LiveMoveReason,
  ): Promise<string | null> {
    const to = (await this.place(codec, pool, { exclude: from, overcommit: true })).node;
    if (!to) return null;
    if (!(await this.streams.repin(streamId, from, to))) {
      const now = (await this.streams.get(streamId))?.node ?? null;
      return now && (await this.isAlive(now)) ? now : null;
    }
    await this.redis.srem(this.keys.nodeStreams(from), streamId);
    await this.pin(streamId, to);
    await this.redis.hincrby(this.keys.liveMoveCounts, reason, 1);
    this.logger.warn(
      `live stream ${streamId}: node ${from} is ${reason === 'expired' ? 'gone' : 'unreachable'}, moved to node ${to}`,
    );
    return to;
  }

  /**
   * One pass: repin the streams of dead nodes, then move the batches left on dead nodes' queues. A dead
   * node's queue is deleted only once it has been empty, with no stream pinned to it, for a while: an
   * API that checked the node alive a moment before it died may still be adding to it.
   */
  async supervise(now = Date.now()): Promise<void> {
    for (const [streamId] of Object.entries(await this.redis.hgetall(this.keys.liveStreams))) {
      const record = await this.streams.get(streamId);
      if (!record || record.state === 'ended') {
        await this.unpin(streamId);
        continue;
      }
      if (record.node && !(await this.isAlive(record.node))) {
        await this.relocate(streamId, record.node, record.params.codec, record.params.pool, 'expired');
      }
    }
    const watched = await this.redis.smembers(this.keys.liveNodes);
    for (const nodeId of [...this.deadSince.keys()])
      if (!watched.includes(nodeId)) this.deadSince.delete(nodeId);
    for (const nodeId of watched) {
      if (await this.isAlive(nodeId)) {
        if (this.deadSince.delete(nodeId)) await this.queue.stopRecoveringNode(nodeId);
        continue;
      }
      const deadSince = this.deadSince.get(nodeId) ?? now;
      this.deadSince.set(nodeId, deadSince);
      const { moved, left } = await this.queue.drainNodeQueue(nodeId, (data) => this.destinationOf(data));
      if (moved > 0) this.logger.warn(`moved ${moved} live batch(es) off dead node ${nodeId}`);
      const pinned = await this.redis.scard(this.keys.nodeStreams(nodeId));
      if (left === 0 && pinned === 0 && now - deadSince >= FORGET_DEAD_NODE_MS) {
        await this.queue.forgetNodeQueue(nodeId);
        await this.redis.srem(this.keys.liveNodes, nodeId);
        this.deadSince.delete(nodeId);
      }
    }
  }

  private async destinationOf(data: EncodeJobData): Promise<string | null> {
    if (!data.stream) return null;
    return this.nodeFor(data.stream.streamId);
  }
}
