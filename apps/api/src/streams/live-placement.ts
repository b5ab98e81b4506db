import type { Codec, NodeRecord, Pool } from '../../../../libs/contracts/src/index.js';

/** Whether a node can keep a live stream of this codec for this pool. */
export function canHostLive(node: NodeRecord, codec: Codec, pool: Pool): boolean {
  return pool === 'gpu' ? node.pool === 'gpu' && node.gpuCodecs.includes(codec) : node.codecs.includes(codec);
}

/**
 * The node a live stream goes to: of those that can encode it, the one with the fewest live streams,
 * then the least busy (active jobs per slot), then by name so that the choice is stable. Not round
 * robin: a live stream costs its node for as long as it runs.
 */
export function chooseLiveNode(
  codec: Codec,
  pool: Pool,
  nodes: NodeRecord[],
  liveStreamsOf: (nodeId: string) => number,
  exclude: string | null = null,
): NodeRecord | null {
  const candidates = nodes.filter((node) => node.id !== exclude && canHostLive(node, codec, pool));
  if (candidates.length === 0) return null;
  const load = (node: NodeRecord) => liveStreamsOf(node.id) / Math.max(1, node.concurrency);
  const busy = (node: NodeRecord) => node.active / Math.max(1, node.concurrency);
  return candidates.sort((a, b) => load(a) - load(b) || busy(a) - busy(b) || a.name.localeCompare(b.name))[0];
}
