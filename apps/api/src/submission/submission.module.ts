import { Module } from '@nestjs/common';
import { Admission } from './admission.js';
import { IdempotencyStore } from './idempotency.js';
import { InputStorage } from './input-storage.js';
import { SubmissionPipeline } from './submission-pipeline.js';
import { UploadLimits } from './upload-limits.js';

/**
 * The one road into the cluster for jobs, stream batches and Xpra one-shots alike: limits, input
 * storage, routing and enqueue (SubmissionPipeline, InputStorage). Admission and IdempotencyStore are
 * exported for what routes put in front of it (AdmissionGuard, IdempotencyInterceptor), which Nest
 * instantiates in the module of each controller that uses them.
 */
@Module({
  providers: [UploadLimits, InputStorage, SubmissionPipeline, Admission, IdempotencyStore],
  exports: [InputStorage, SubmissionPipeline, Admission, IdempotencyStore],
})
export class SubmissionModule {}
