import type { Codec, NodeRecord, Pool } from '#contracts';

/** Whether a node can keep a live stream of this codec for this pool. */
export function canHostLive(node: NodeRecord, codec: Codec, pool: Pool): boolean {
  return pool === 'gpu' ? node.pool === 'gpu' && node.gpuCodecs.includes(codec) : node.codecs.includes(codec);
}

/** A node's idle timeout for live contexts when its record is older than the field (the worker default). */
export const DEFAULT_LIVE_IDLE_MS = 30_000;

/** Whether a node holding `contexts` live encoder contexts is below its published capacity. */
export function hasLiveRoom(node: NodeRecord, contexts: number): boolean {
  return node.liveCapacity === undefined || contexts < node.liveCapacity;
}

export interface LivePlacementOptions {
  /** A node the stream must leave (it died). */
  exclude?: string | null;
  /**
   * Moving an existing stream off a dead node: a node at its capacity is still chosen when none has
   * room (the stream keeps going; the node closes its longest-unused context). New streams never are.
   */
  overcommit?: boolean;
}

/**
 * The node a live stream goes to: of those that can encode it and have room (`contextsOf`: the
 * streams that hold an encoder context there, by default all those pinned to it), the one with the fewest
 * live streams per slot, then the least busy (active jobs per slot), then by name so that the choice
 * is stable. Not round robin: a live stream costs its node for as long as it runs.
 */
export function chooseLiveNode(
  codec: Codec,
  pool: Pool,
  nodes: NodeRecord[],
  liveStreamsOf: (nodeId: string) => number,
  options: LivePlacementOptions = {},
  contextsOf: (nodeId: string) => number = liveStreamsOf,
): NodeRecord | null {
  const capable = nodes.filter((node) => node.id !== options.exclude && canHostLive(node, codec, pool));
  const withRoom = capable.filter((node) => hasLiveRoom(node, contextsOf(node.id)));
  const candidates = withRoom.length > 0 || !options.overcommit ? withRoom : capable;
  if (candidates.length === 0) return null;
  const load = (node: NodeRecord) => liveStreamsOf(node.id) / Math.max(1, node.concurrency);
  const busy = (node: NodeRecord) => node.active / Math.max(1, node.concurrency);
  return candidates.sort((a, b) => load(a) - load(b) || busy(a) - busy(b) || a.name.localeCompare(b.name))[0];
}
