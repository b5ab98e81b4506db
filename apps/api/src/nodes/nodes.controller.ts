import { Controller, Get, Inject } from '@nestjs/common';
import { NodeRegistry } from '#cluster';
import { ApiKeyProtected, ApiListCodecs, ApiListNodes } from '../docs/route-docs.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { XpraListener } from '../xpra/xpra-listener.js';
import { CachedNodeList } from '../dispatch/cached-node-list.js';

@ApiKeyProtected('cluster')
@Controller('v1')
export class NodesController {
  constructor(
    private readonly registry: NodeRegistry,
    private readonly nodeList: CachedNodeList,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly xpra: XpraListener,
  ) {}

  /**
   * Read uncached: operators watching nodes come and go want the registry as it is. With the Xpra
   * listener on, each node also says how many of this API's Xpra video contexts it holds.
   */
  @Get('nodes')
  @ApiListNodes()
  async nodes() {
    const nodes = await this.registry.list();
    if (!this.xpra.enabled) return nodes;
    const contexts = this.xpra.contextsByNode();
    return nodes.map((node) => ({ ...node, xpraContexts: contexts.get(node.id) ?? 0 }));
  }

  @Get('codecs')
  @ApiListCodecs()
  async codecs() {
    const configured = this.config.scaleFromZero.poolCodecs;
    return { pools: await this.nodeList.codecsByPool(), ...(configured ? { configured } : {}) };
  }
}
