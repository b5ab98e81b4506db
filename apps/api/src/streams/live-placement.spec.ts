import type { Codec, NodeRecord, Pool } from '#contracts';
import { nodeRecord } from '#contracts/testing/node-record.js';
import { chooseLiveNode } from './live-placement.js';

function node(name: string, pool: Pool, codecs: Codec[], extra: Partial<NodeRecord> = {}): NodeRecord {
  return nodeRecord({ id: `id-${name}`, name, pool, codecs, concurrency: 2, ...extra });
}

describe('chooseLiveNode', () => {
  const a = node('a', 'cpu', ['h264', 'vp8']);
  const b = node('b', 'cpu', ['h264']);
  const g = node('g', 'gpu', ['h264', 'hevc'], { gpuCodecs: ['hevc'] });

  it('takes the node with the fewest live streams per slot, not the next in turn', () => {
    const load = { 'id-a': 3, 'id-b': 1, 'id-g': 5 } as Record<string, number>;
    expect(chooseLiveNode('h264', 'cpu', [a, b, g], (id) => load[id])?.name).toBe('b');
    const bigger = node('big', 'cpu', ['h264'], { concurrency: 8 });
    expect(
      chooseLiveNode('h264', 'cpu', [b, bigger], (id) => ({ 'id-b': 1, 'id-big': 3 })[id] ?? 0)?.name,
    ).toBe('big');
  });

  it('breaks ties by how busy a node is, then by name', () => {
    const busyA = { ...a, active: 2 };
    expect(chooseLiveNode('h264', 'cpu', [busyA, b], () => 0)?.name).toBe('b');
    expect(chooseLiveNode('h264', 'cpu', [b, a], () => 0)?.name).toBe('a');
  });

  it('only considers nodes that can encode the codec in the pool, and not the excluded one', () => {
    expect(chooseLiveNode('vp8', 'cpu', [a, b], () => 0)?.name).toBe('a');
    expect(chooseLiveNode('hevc', 'gpu', [a, b, g], () => 0)?.name).toBe('g');
    expect(chooseLiveNode('h264', 'gpu', [a, b, g], () => 0)).toBeNull();
    expect(chooseLiveNode('vp8', 'cpu', [a, b], () => 0, { exclude: 'id-a' })).toBeNull();
  });

  it('skips nodes at their live capacity; only a stream moving off a dead node may overcommit', () => {
    const small = node('small', 'cpu', ['h264'], { liveCapacity: 1 });
    const big = node('big', 'cpu', ['h264'], { liveCapacity: 4, concurrency: 1 });
    const load = { 'id-small': 1, 'id-big': 3 } as Record<string, number>;
    // small has fewer streams per slot but no room left
    expect(chooseLiveNode('h264', 'cpu', [small, big], (id) => load[id])?.name).toBe('big');
    load['id-big'] = 4;
    expect(chooseLiveNode('h264', 'cpu', [small, big], (id) => load[id])).toBeNull();
    expect(chooseLiveNode('h264', 'cpu', [small, big], (id) => load[id], { overcommit: true })?.name).toBe(
      'small',
    );
    // a node that publishes no capacity (older than the field) is never full
    expect(chooseLiveNode('h264', 'cpu', [small, a], (id) => (id === 'id-a' ? 100 : 1))?.name).toBe('a');
  });
});
