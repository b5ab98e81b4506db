import { Controller, Get } from '@nestjs/common';
import { NodeRegistry } from '../../../../libs/cluster/src/index.js';
import { ApiKeyProtected, ApiListCodecs, ApiListNodes } from '../docs/route-docs.js';
import { CachedNodeList } from './cached-node-list.js';

@ApiKeyProtected('cluster')
@Controller('v1')
export class NodesController {
  constructor(
    private readonly registry: NodeRegistry,
    private readonly nodeList: CachedNodeList,
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
    return { pools: await this.nodeList.codecsByPool() };
  }
}
