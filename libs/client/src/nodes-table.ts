import type { NodeRecord } from '#contracts';

function age(lastSeen: string, now: number): string {
  const ms = now - Date.parse(lastSeen);
  if (!Number.isFinite(ms)) return '?';
  return ms < 1000 ? 'now' : `${Math.round(ms / 1000)}s ago`;
}

/** The nodes as an aligned text table (one header line, one line per node). */
export function formatNodesTable(nodes: NodeRecord[], now = Date.now()): string {
  if (nodes.length === 0) return 'no live encoder nodes\n';
  const header = ['NODE', 'HOST', 'POOL', 'CODECS', 'ACTIVE', 'PROCESSED', 'FAILED', 'FPS', 'LIVE', 'SEEN'];
  const rows = nodes.map((node) => [
    node.name || node.id,
    node.host,
    node.pool,
    node.codecs.join(',') + (node.gpuCodecs?.length ? ` (gpu: ${node.gpuCodecs.join(',')})` : ''),
    `${node.active}/${node.concurrency}`,
    String(node.processed),
    String(node.failed ?? 0),
    (node.encodeFps ?? 0).toFixed(1),
    String(node.liveStreams ?? 0),
    age(node.lastSeen, now),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column].length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
