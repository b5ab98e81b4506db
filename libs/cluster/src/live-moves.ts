import type { RedisClient } from './redis-connection.js';
import type { KeySpace } from './keys.js';
import type { NodeRegistry } from './node-registry.js';
import type { StreamStore } from './stream-store.js';
import { chooseLiveNode } from './live-placement.js';

/**
 * Moves a live stream from `from` to `to`: the compare-and-set on the record (node, epoch + 1: the old
 * node's commits are refused from now on), then the same pin bookkeeping as the API's LiveStreams
 * (liveStreams hash, per-node sets, activity). False when the stream was not on `from` any more.
 */
export async function moveLiveStream(
  redis: RedisClient,
  keys: KeySpace,
  streams: Pick<StreamStore, 'repin'>,
  streamId: string,
  from: string,
  to: string,
  now = Date.now(),
): Promise<boolean> {
  if (!(await streams.repin(streamId, from, to))) return false;
  await redis.srem(keys.nodeStreams(from), streamId);
  await redis.zadd(keys.liveActivity, now, streamId);
  await redis.hset(keys.liveStreams, streamId, to);
  await redis.sadd(keys.liveNodes, to);
  await redis.sadd(keys.nodeStreams(to), streamId);
  return true;
}

/**
 * A draining node hands one of its live streams to the least loaded other node that can keep it (at
 * capacity or not: the stream is going on, not new), one with a data port when there is one. Resolves with the new node's id, or null when no
 * other node can take it (or the stream is not this node's any more).
 */
export async function handOverLiveStream(
  redis: RedisClient,
  keys: KeySpace,
  registry: Pick<NodeRegistry, 'list'>,
  streams: Pick<StreamStore, 'get' | 'repin'>,
  streamId: string,
  from: string,
): Promise<string | null> {
  const record = await streams.get(streamId);
  if (!record || record.node !== from || record.state === 'ended') return null;
  const others = (await registry.list()).filter((node) => node.id !== from);
  // The stream's client sends over a session: a node with a data port keeps it on one.
  const withPort = others.filter((node) => node.dataUrl);
  const nodes = withPort.length > 0 ? withPort : others;
  const pinned = await Promise.all(nodes.map((node) => redis.scard(keys.nodeStreams(node.id))));
  const load = new Map(nodes.map((node, index) => [node.id, pinned[index]]));
  const to = chooseLiveNode(record.params.codec, record.params.pool, nodes, (id) => load.get(id) ?? 0, {
    exclude: from,
    overcommit: true,
  });
  if (!to) return null;
  if (!(await moveLiveStream(redis, keys, streams, streamId, from, to.id))) return null;
  await redis.hincrby(keys.liveMoveCounts, 'drain', 1);
  return to.id;
}
