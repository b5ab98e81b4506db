import { Inject, Injectable } from '@nestjs/common';
import type { Codec, NodeRecord, Pool } from '#contracts';
import { NodeRegistry } from '#cluster';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';

/**
 * The live nodes of the registry (NodeRegistry, in Redis) as the API routes with them: the list cached
 * for NODE_CACHE_MS, since every submission consults it.
 */
@Injectable()
export class CachedNodeList {
  private cached: { at: number; nodes: NodeRecord[] } | null = null;

  constructor(
    private readonly registry: NodeRegistry,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  async live(): Promise<NodeRecord[]> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < this.config.nodeCacheMs) return this.cached.nodes;
    const nodes = await this.registry.list();
    this.cached = { at: now, nodes };
    return nodes;
  }

  /** What the live cluster can encode, per pool. */
  async codecsByPool(): Promise<Record<Pool, Codec[]>> {
    const nodes = await this.live();
    const unique = (codecs: Codec[]) => [...new Set(codecs)].sort();
    return {
      cpu: unique(nodes.flatMap((node) => node.codecs)),
      gpu: unique(nodes.filter((node) => node.pool === 'gpu').flatMap((node) => node.gpuCodecs)),
    };
  }
}
