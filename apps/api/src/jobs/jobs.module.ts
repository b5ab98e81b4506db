import { Module } from '@nestjs/common';
import { StreamsModule } from '../streams/streams.module.js';
import { SubmissionModule } from '../submission/submission.module.js';
import { JobSubmission } from './job-submission.js';
import { JobsController } from './jobs.controller.js';
import { JobsService } from './jobs.service.js';
import { NoNodeTimeout } from './no-node-timeout.js';

/**
 * /v1/jobs: submitting a job (through the submission pipeline), reading it, its outputs (a live
 * session's packets too, hence StreamsModule) and events, and cancelling it; and the chore that fails
 * jobs no node came for.
 */
@Module({
  imports: [SubmissionModule, StreamsModule],
  controllers: [JobsController],
  providers: [JobsService, JobSubmission, NoNodeTimeout],
})
export class JobsModule {}
