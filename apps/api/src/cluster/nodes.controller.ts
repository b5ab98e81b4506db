import { Controller, Get, Inject } from '@nestjs/common';
import { NodeRegistry } from '../../../../libs/cluster/src/index.js';
import { ApiKeyProtected, ApiListCodecs, ApiListNodes } from '../docs/route-docs.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { CachedNodeList } from './cached-node-list.js';

@ApiKeyProtected('cluster')
@Controller('v1')
export class NodesController {
  constructor(
    private readonly registry: NodeRegistry,
    private readonly nodeList: CachedNodeList,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  /** Read uncached: operators watching nodes come and go want the registry as it is. */
  @Get('nodes')
  @ApiListNodes()
  nodes() {
    return this.registry.list();
  }

  @Get('codecs')
  @ApiListCodecs()
  async codecs() {
    const configured = this.config.scaleFromZero.poolCodecs;
    return { pools: await this.nodeList.codecsByPool(), ...(configured ? { configured } : {}) };
  }
}
