import { Module } from '@nestjs/common';
import { Admission } from './admission.js';
import { AdmissionGuard, AdmittedJobRecorder } from './admission.guard.js';
import { IdempotencyStore } from './idempotency.js';
import { IdempotencyInterceptor } from './idempotency.interceptor.js';
import { InputStorage } from './input-storage.js';
import { SubmissionPipeline } from './submission-pipeline.js';
import { UploadLimits } from './upload-limits.js';

/**
 * The one road into the cluster for jobs and streams alike: limits, input storage, routing and
 * enqueue (SubmissionPipeline, InputStorage), and what routes put in front of it (AdmissionGuard,
 * IdempotencyInterceptor, which the routes' modules instantiate: their dependencies are exported too).
 */
@Module({
  providers: [
    UploadLimits,
    InputStorage,
    SubmissionPipeline,
    Admission,
    IdempotencyStore,
    AdmissionGuard,
    AdmittedJobRecorder,
    IdempotencyInterceptor,
  ],
  exports: [
    InputStorage,
    SubmissionPipeline,
    Admission,
    IdempotencyStore,
    AdmissionGuard,
    AdmittedJobRecorder,
    IdempotencyInterceptor,
  ],
})
export class SubmissionModule {}
