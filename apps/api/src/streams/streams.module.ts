import { Module } from '@nestjs/common';
import { SubmissionModule } from '../submission/submission.module.js';
import { DataPortProbe, LiveFailover } from './live-failover.js';
import { LiveStreams } from './live-streams.js';
import { SessionGrants, SessionSigner } from './session-grants.js';
import { SessionRelay } from './session-relay.js';
import { StreamSockets } from './stream-sockets.js';
import { StreamStallCheck } from './stream-stall-check.js';
import { StreamsController } from './streams.controller.js';
import { StreamsService } from './streams.service.js';

/**
 * /v1/streams: opening a stream, its batches (through the submission pipeline), its WebSocket routes
 * (events through delivery/, sessions through the relay), and live sessions (placement, grants, the relay, failover, the stall check).
 */
@Module({
  imports: [SubmissionModule],
  controllers: [StreamsController],
  providers: [
    StreamsService,
    LiveStreams,
    SessionSigner,
    SessionGrants,
    DataPortProbe,
    LiveFailover,
    SessionRelay,
    StreamSockets,
    StreamStallCheck,
  ],
  exports: [StreamsService],
})
export class StreamsModule {}
