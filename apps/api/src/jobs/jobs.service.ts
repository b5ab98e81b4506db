import { Injectable, NotFoundException } from '@nestjs/common';
import { maxOutputsOf, type JobView } from '#contracts';
import { JobStore, OutputStore, type JobRecord } from '#cluster';
import type { Principal } from '../auth/key-ring.js';
import { visibleTo } from '../auth/tenancy.js';
import { InputStorage } from '../submission/input-storage.js';
import { SubmissionPipeline } from '../submission/submission-pipeline.js';
import { toJobView } from './job-view.js';

export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{16}$/;

/** The jobs feature once a job is queued: reading it and its outputs, cancelling it. */
@Injectable()
export class JobsService {
  constructor(
    private readonly jobs: JobStore,
    private readonly outputs: OutputStore,
    private readonly pipeline: SubmissionPipeline,
    private readonly storage: InputStorage,
  ) {}

  /**
   * A job's record, as `caller` may see it: a job of another tenant is answered exactly like an
   * unknown id, so that nothing tells one tenant what another has.
   */
  async record(jobId: string, caller: Principal): Promise<JobRecord> {
    const record = JOB_ID_PATTERN.test(jobId) ? await this.jobs.get(jobId) : null;
    if (!record || !visibleTo(caller, record.tenant))
      throw new NotFoundException(`no job ${jobId} (unknown, or older than the retention time)`);
    return record;
  }

  async get(jobId: string, caller: Principal): Promise<JobView> {
    return toJobView(await this.record(jobId, caller));
  }

  async output(
    jobId: string,
    index: number,
    caller: Principal,
  ): Promise<{ contentType: string; data: Buffer }> {
    const job = await this.get(jobId, caller);
    if (job.status === 'failed') {
      throw new NotFoundException(
        `job ${jobId} failed (${job.error ?? 'no reason'}); a failed job has no outputs`,
      );
    }
    const output = job.outputs.find((candidate) => candidate.index === index);
    if (!output) {
      throw new NotFoundException(
        job.status === 'completed'
          ? `job ${jobId} has no output ${index} (it has ${job.outputs.length})`
          : `output ${index} of job ${jobId} is not ready yet (status ${job.status}; outputs are listed when the job completes)`,
      );
    }
    const data = await this.outputs.get(jobId, index);
    if (!data) throw new NotFoundException(`output ${index} of job ${jobId} has expired`);
    return { contentType: output.contentType, data };
  }

  /**
   * Cancels a job that has not finished: a waiting one leaves its queue; the node encoding an active
   * one is told to stop (ffmpeg is killed, sharp stops after its current frame). Whatever the job had
   * stored goes: its input, and outputs of frames already encoded. A finished job is deleted: its
   * outputs at once, then its record and log. Answers the job as it was left, without outputs once they
   * are gone.
   */
  async cancel(jobId: string, caller: Principal): Promise<JobView> {
    const job = await this.record(jobId, caller);
    if (this.jobs.isFinal(job.status)) {
      await this.outputs.deleteAll(jobId, maxOutputsOf(job.data));
      await this.jobs.delete(jobId);
      return { ...toJobView(job), outputs: [] };
    }
    await this.pipeline.withdraw(jobId, job.data.pool, 'cancelled by the client');
    const record = await this.jobs.get(jobId);
    if (record) {
      await this.storage.deleteInput(record.data);
      await this.outputs.deleteAll(jobId, maxOutputsOf(record.data));
    }
    return this.get(jobId, caller);
  }
}
