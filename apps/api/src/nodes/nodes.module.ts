import { Module } from '@nestjs/common';
import { XpraModule } from '../xpra/xpra.module.js';
import { NodesController } from './nodes.controller.js';

/**
 * The cluster's nodes as clients see them: /v1/nodes (with the Xpra contexts each holds) and
 * /v1/codecs. DispatchModule (global) is the Redis side they stand on.
 */
@Module({
  imports: [XpraModule],
  controllers: [NodesController],
})
export class NodesModule {}
