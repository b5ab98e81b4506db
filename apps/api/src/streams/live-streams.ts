import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Codec, EncodeJobData, Pool } from '../../../../libs/contracts/src/index.js';
import type { RedisClient } from '../../../../libs/cluster/src/index.js';
import { KeySpace, NodeRegistry, StreamStore } from '../../../../libs/cluster/src/index.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { EncodeQueue } from '../cluster/encode-queue.js';
import { REDIS } from '../cluster/tokens.js';
import { chooseLiveNode } from './live-placement.js';

/**
 * Where live streams run: placing a new one on the least loaded node, and the supervisor that moves the
 * streams of a node that died (its registry record expired) to another node, together with the batches
 * left on the dead node's queue. The new node starts a fresh encoder (a keyframe) at the first batch not
 * yet delivered. Every API instance supervises; a repin is a compare-and-set, so only one moves a stream.
 */
@Injectable()
export class LiveStreams implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(LiveStreams.name);
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly keys: KeySpace,
    private readonly registry: NodeRegistry,
    private readonly streams: StreamStore,
    private readonly queue: EncodeQueue,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.supervise(), this.config.liveSupervisorMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Picks a node for a new live stream; null when no live node can encode it. */
  async place(codec: Codec, pool: Pool, exclude: string | null = null): Promise<string | null> {
    const nodes = await this.registry.list();
    const counts = await Promise.all(nodes.map((node) => this.redis.scard(this.keys.nodeStreams(node.id))));
    const load = new Map(nodes.map((node, index) => [node.id, counts[index]]));
    return chooseLiveNode(codec, pool, nodes, (id) => load.get(id) ?? 0, exclude)?.id ?? null;
  }

  /** Every stream is watched for stalls until it ends (StreamStallCheck). */
  async track(streamId: string): Promise<void> {
    await this.redis.sadd(this.keys.openStreams, streamId);
  }

  async pin(streamId: string, nodeId: string): Promise<void> {
    await this.redis.sadd(this.keys.liveStreams, streamId);
    await this.redis.sadd(this.keys.liveNodes, nodeId);
    await this.redis.sadd(this.keys.nodeStreams(nodeId), streamId);
  }

  async unpin(streamId: string, nodeId: string | null): Promise<void> {
    await this.redis.srem(this.keys.liveStreams, streamId);
    if (nodeId) await this.redis.srem(this.keys.nodeStreams(nodeId), streamId);
  }

  /**
   * The node a live stream's next batch goes to: its pinned node while that one lives, else the node it
   * is moved to now. Null when no node can take it (the batch then waits on the dead node's queue and
   * the supervisor moves it once a node is back).
   */
  async nodeFor(streamId: string): Promise<string | null> {
    const record = await this.streams.get(streamId);
    if (!record?.node) return null;
    if (await this.isAlive(record.node)) return record.node;
    return this.relocate(streamId, record.node, record.params.codec, record.params.pool);
  }

  private async isAlive(nodeId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.node(nodeId))) === 1;
  }

  private async relocate(streamId: string, from: string, codec: Codec, pool: Pool): Promise<string | null> {
    const to = await this.place(codec, pool, from);
    if (!to) return null;
    if (!(await this.streams.repin(streamId, from, to))) {
      return (await this.streams.get(streamId))?.node ?? null;
    }
    await this.redis.srem(this.keys.nodeStreams(from), streamId);
    await this.pin(streamId, to);
    this.logger.warn(`live stream ${streamId}: node ${from} is gone, moved to node ${to}`);
    return to;
  }

  /** One pass: repin the streams of dead nodes, then move the batches left on dead nodes' queues. */
  async supervise(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const streamId of await this.redis.smembers(this.keys.liveStreams)) {
        const record = await this.streams.get(streamId);
        if (!record || record.state === 'ended') {
          await this.unpin(streamId, record?.node ?? null);
          continue;
        }
        if (record.node && !(await this.isAlive(record.node))) {
          await this.relocate(streamId, record.node, record.params.codec, record.params.pool);
        }
      }
      for (const nodeId of await this.redis.smembers(this.keys.liveNodes)) {
        if (await this.isAlive(nodeId)) continue;
        const { moved, left } = await this.queue.drainNodeQueue(nodeId, (data) => this.destinationOf(data));
        if (moved > 0) this.logger.warn(`moved ${moved} live batch(es) off dead node ${nodeId}`);
        if (left === 0) {
          await this.redis.srem(this.keys.liveNodes, nodeId);
          await this.redis.del(this.keys.nodeStreams(nodeId));
        }
      }
    } catch (error) {
      this.logger.warn(`live stream supervision failed: ${(error as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async destinationOf(data: EncodeJobData): Promise<string | null> {
    if (!data.stream) return null;
    return this.nodeFor(data.stream.streamId);
  }
}
