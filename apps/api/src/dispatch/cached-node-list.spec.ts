import { Test } from '@nestjs/testing';
import { NodeRegistry } from '#cluster';
import type { NodeRecord } from '#contracts';
import { API_CONFIG, loadApiConfig } from '../config/api-config.js';
import { liveNode } from '../testing/fakes.js';
import { CachedNodeList } from './cached-node-list.js';

class FakeRegistry implements Pick<NodeRegistry, 'list'> {
  lists = 0;
  constructor(public nodes: NodeRecord[]) {}
  list(): Promise<NodeRecord[]> {
    this.lists++;
    return Promise.resolve(this.nodes);
  }
}

async function nodeList(nodes: NodeRecord[], nodeCacheMs: number) {
  const registry = new FakeRegistry(nodes);
  const module = await Test.createTestingModule({
    providers: [
      CachedNodeList,
      { provide: NodeRegistry, useValue: registry },
      { provide: API_CONFIG, useValue: { ...loadApiConfig({}), nodeCacheMs } },
    ],
  }).compile();
  return { nodes: module.get(CachedNodeList), registry };
}

describe('CachedNodeList', () => {
  it('lists each codec once per pool: cpu work from every node, gpu work only from proven gpu encoders', async () => {
    const { nodes } = await nodeList(
      [
        liveNode('a', 'cpu', ['vp9', 'h264']),
        // A node with a hardware encoder that serves the cpu pool offers it to no gpu work.
        liveNode('b', 'cpu', ['h264', 'png'], ['h264']),
        liveNode('g', 'gpu', ['h264', 'hevc'], ['hevc']),
      ],
      0,
    );
    await expect(nodes.codecsByPool()).resolves.toEqual({
      cpu: ['h264', 'hevc', 'png', 'vp9'],
      gpu: ['hevc'],
    });
  });

  it('asks the registry once per NODE_CACHE_MS, and every time when the cache is off', async () => {
    const cached = await nodeList([liveNode('a', 'cpu', ['png'])], 60_000);
    await cached.nodes.live();
    cached.registry.nodes = [];
    await expect(cached.nodes.live()).resolves.toHaveLength(1);
    expect(cached.registry.lists).toBe(1);

    const uncached = await nodeList([liveNode('a', 'cpu', ['png'])], 0);
    await uncached.nodes.live();
    uncached.registry.nodes = [];
    await expect(uncached.nodes.live()).resolves.toHaveLength(0);
    expect(uncached.registry.lists).toBe(2);
  });
});
