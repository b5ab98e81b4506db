import type { Codec, NodeRecord, Pool, PoolPreference } from '#contracts';
import type { PoolCodecs } from './pool-codecs.js';

export type RoutingDecision =
  | { ok: true; codec: Codec; pool: Pool }
  | { ok: false; reason: 'no-nodes' | 'unsupported'; message: string; available: Codec[] };

/** A gpu node takes gpu work for a codec only when it proved a hardware encoder for it (or is a test node). */
function gpuCanEncode(node: NodeRecord, codec: Codec): boolean {
  return node.pool === 'gpu' && node.gpuCodecs.includes(codec);
}

/** CPU work is served by cpu nodes and by gpu nodes helping out. */
function cpuCanEncode(node: NodeRecord, codec: Codec): boolean {
  return node.codecs.includes(codec);
}

/** Whether a live node takes `pool` work for `codec` (gpu nodes help the cpu pool too). */
export function canTake(node: NodeRecord, pool: Pool, codec: Codec): boolean {
  return pool === 'gpu' ? gpuCanEncode(node, codec) : cpuCanEncode(node, codec);
}

/**
 * Picks the codec (first of `accept` that a node can encode) and the pool: explicit `gpu` needs a gpu
 * node; `auto` prefers gpu nodes when one can encode the codec, else cpu. "A node" is a live one, or,
 * with `served` (POOL_CODECS, for work that may wait for a node to start), one the pool is configured
 * to have: the work is queued for it even while the pool has no node alive (scaled to zero).
 */
export function route(
  candidates: Codec[],
  preference: PoolPreference,
  nodes: NodeRecord[],
  served: PoolCodecs | null = null,
): RoutingDecision {
  const available = [
    ...new Set([...nodes.flatMap((node) => node.codecs), ...(served ? [...served.cpu, ...served.gpu] : [])]),
  ].sort();
  if (nodes.length === 0 && !served) {
    return {
      ok: false,
      reason: 'no-nodes',
      message: 'no encoder node is alive; start one with npm run worker',
      available,
    };
  }
  // The gpu pool's configuration stands in for its nodes only while it has none (scaled to zero): a live
  // gpu node takes gpu work for the codecs it proved in hardware, and no other.
  const gpuServed = served && !nodes.some((node) => node.pool === 'gpu') ? served.gpu : [];
  for (const codec of candidates) {
    const gpu = nodes.some((node) => gpuCanEncode(node, codec)) || gpuServed.includes(codec);
    const cpu = nodes.some((node) => cpuCanEncode(node, codec)) || (served?.cpu.includes(codec) ?? false);
    if (preference === 'gpu' && gpu) return { ok: true, codec, pool: 'gpu' };
    if (preference === 'cpu' && cpu) return { ok: true, codec, pool: 'cpu' };
    if (preference === 'auto' && (gpu || cpu)) return { ok: true, codec, pool: gpu ? 'gpu' : 'cpu' };
  }
  const wanted = candidates.join(', ');
  const where = preference === 'auto' ? 'node' : `${preference} node`;
  const which = served ? `no live or configured (POOL_CODECS) ${where}` : `no live ${where}`;
  return {
    ok: false,
    reason: 'unsupported',
    message: `${which} can encode ${wanted}; the cluster offers: ${available.join(', ') || 'nothing'}`,
    available,
  };
}
