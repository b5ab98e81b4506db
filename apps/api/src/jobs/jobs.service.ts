import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  BadRequestException,
  Inject,
  Injectable,
  NotFoundException,
  PayloadTooLargeException,
  UnprocessableEntityException,
} from '@nestjs/common';
import {
  frameByteLength,
  isCodec,
  type Codec,
  type EncodeJobData,
  type JobView,
} from '../../../../libs/contracts/src/index.js';
import {
  BodyLengthError,
  EventLog,
  FrameStore,
  JobStore,
  OutputStore,
} from '../../../../libs/cluster/src/index.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { EncodeQueue } from '../cluster/encode-queue.js';
import { NodeDirectory } from '../cluster/node-directory.js';
import { route } from '../cluster/routing.js';
import { RetryLaterException } from '../common/http-errors.js';
import type { CreateJobQuery } from './create-job.query.js';
import { jobLinks, toJobView } from './job-view.js';

export interface AcceptedJob {
  id: string;
  status: 'queued';
  codec: Codec;
  pool: string;
  frames: number;
  links: ReturnType<typeof jobLinks>;
}

export function newJobId(): string {
  return randomBytes(12).toString('base64url');
}

export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{16}$/;

@Injectable()
export class JobsService {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly frames: FrameStore,
    private readonly jobs: JobStore,
    private readonly outputs: OutputStore,
    private readonly events: EventLog,
    private readonly queue: EncodeQueue,
    private readonly nodes: NodeDirectory,
  ) {}

  /** Checks the parameters against the limits and the declared body length, before reading a byte. */
  checkRawUpload(
    query: CreateJobQuery,
    contentLength: number | null,
  ): { frameBytes: number; totalBytes: number; candidates: Codec[] } {
    const candidates = this.candidates(query);
    const pixels = query.width * query.height;
    if (pixels > this.config.maxFramePixels) {
      throw new PayloadTooLargeException(
        `a frame of ${query.width}x${query.height} exceeds the limit of ${this.config.maxFramePixels} pixels`,
      );
    }
    if (query.frames > this.config.maxFramesPerJob) {
      throw new PayloadTooLargeException(
        `frames=${query.frames} exceeds the limit of ${this.config.maxFramesPerJob} frames per job`,
      );
    }
    const frameBytes = frameByteLength(query.width, query.height, query.format);
    const totalBytes = frameBytes * query.frames;
    if (totalBytes > this.config.maxBodyBytes) {
      throw new PayloadTooLargeException(
        `the batch is ${totalBytes} bytes; the limit is ${this.config.maxBodyBytes}`,
      );
    }
    if (contentLength !== null && contentLength !== totalBytes) {
      throw new BadRequestException(new BodyLengthError(totalBytes, contentLength).message);
    }
    return { frameBytes, totalBytes, candidates };
  }

  private candidates(query: CreateJobQuery): Codec[] {
    if (query.codec && query.accept) throw new BadRequestException('give either codec or accept, not both');
    if (query.codec) return [query.codec];
    if (!query.accept)
      throw new BadRequestException(
        'codec is required (or accept, a comma list of codecs in order of preference)',
      );
    const listed = query.accept.split(',');
    const unknown = listed.filter((codec) => !isCodec(codec));
    if (unknown.length > 0)
      throw new BadRequestException(`accept lists unknown codecs: ${unknown.join(', ')}`);
    return listed as Codec[];
  }

  async submitRaw(query: CreateJobQuery, body: Readable, contentLength: number | null): Promise<AcceptedJob> {
    const { frameBytes, candidates } = this.checkRawUpload(query, contentLength);
    const decision = route(candidates, query.pool, await this.nodes.live());
    if (!decision.ok) {
      if (decision.reason === 'no-nodes') throw new RetryLaterException(decision.message, 5);
      throw new UnprocessableEntityException({ message: decision.message, available: decision.available });
    }

    const jobId = newJobId();
    try {
      await this.frames.writeFrames(jobId, body, frameBytes, query.frames);
    } catch (error) {
      if (error instanceof BodyLengthError) throw new BadRequestException(error.message);
      throw error;
    }
    const data: EncodeJobData = {
      jobId,
      codec: decision.codec,
      pool: decision.pool,
      width: query.width,
      height: query.height,
      format: query.format,
      frames: query.frames,
      settings: { quality: query.quality, speed: query.speed, fps: query.fps },
      input: { encoding: 'identity', storedBytes: frameBytes * query.frames },
      createdAt: Date.now(),
    };
    try {
      await this.jobs.create(data);
      await this.queue.add(data, query.priority);
    } catch (error) {
      await this.frames.deleteFrames(jobId, query.frames).catch(() => undefined);
      throw error;
    }
    return {
      id: jobId,
      status: 'queued',
      codec: data.codec,
      pool: data.pool,
      frames: data.frames,
      links: jobLinks(jobId),
    };
  }

  async get(jobId: string): Promise<JobView> {
    const record = JOB_ID_PATTERN.test(jobId) ? await this.jobs.get(jobId) : null;
    if (!record) throw new NotFoundException(`no job ${jobId} (unknown, or older than the retention time)`);
    return toJobView(record);
  }

  async output(jobId: string, index: number): Promise<{ contentType: string; data: Buffer }> {
    const job = await this.get(jobId);
    const output = job.outputs.find((candidate) => candidate.index === index);
    if (!output) {
      throw new NotFoundException(
        job.status === 'completed' || job.status === 'failed'
          ? `job ${jobId} has no output ${index} (it has ${job.outputs.length})`
          : `output ${index} of job ${jobId} is not ready yet (status ${job.status})`,
      );
    }
    const data = await this.outputs.get(jobId, index);
    if (!data) throw new NotFoundException(`output ${index} of job ${jobId} has expired`);
    return { contentType: output.contentType, data };
  }

  /** Cancels a job no node has started; an active job is cancelled when it reaches its next frame. */
  async cancel(jobId: string): Promise<JobView> {
    const job = await this.get(jobId);
    if (job.status === 'completed' || job.status === 'failed') {
      throw new UnprocessableEntityException(`job ${jobId} already ${job.status}`);
    }
    await this.queue.removeWaiting(job.pool, jobId);
    const reason = 'cancelled by the client';
    if (await this.jobs.fail(jobId, reason, Date.now()))
      await this.events.append(jobId, { type: 'failed', error: reason });
    await this.frames.deleteFrames(jobId, job.frames);
    return this.get(jobId);
  }
}
