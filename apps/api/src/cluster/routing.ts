import type { Codec, NodeRecord, Pool, PoolPreference } from '../../../../libs/contracts/src/index.js';

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

/**
 * Picks the codec (first of `accept` that a live node can encode) and the pool: explicit `gpu` needs a
 * live gpu node; `auto` prefers gpu nodes when one can encode the codec, else cpu.
 */
export function route(candidates: Codec[], preference: PoolPreference, nodes: NodeRecord[]): RoutingDecision {
  const available = [...new Set(nodes.flatMap((node) => node.codecs))].sort();
  if (nodes.length === 0) {
    return {
      ok: false,
      reason: 'no-nodes',
      message: 'no encoder node is alive; start one with npm run worker',
      available,
    };
  }
  for (const codec of candidates) {
    const gpu = nodes.some((node) => gpuCanEncode(node, codec));
    const cpu = nodes.some((node) => cpuCanEncode(node, codec));
    if (preference === 'gpu' && gpu) return { ok: true, codec, pool: 'gpu' };
    if (preference === 'cpu' && cpu) return { ok: true, codec, pool: 'cpu' };
    if (preference === 'auto' && (gpu || cpu)) return { ok: true, codec, pool: gpu ? 'gpu' : 'cpu' };
  }
  const wanted = candidates.join(', ');
  const where = preference === 'auto' ? 'node' : `${preference} node`;
  return {
    ok: false,
    reason: 'unsupported',
    message: `no live ${where} can encode ${wanted}; the cluster offers: ${available.join(', ') || 'nothing'}`,
    available,
  };
}
