import { randomBytes } from 'node:crypto';
import {
  BadRequestException,
  Inject,
  Injectable,
  PayloadTooLargeException,
  UnprocessableEntityException,
} from '@nestjs/common';
import type { Request } from 'express';
import {
  frameByteLength,
  type Codec,
  type EncodeJobData,
  type InputEncoding,
  type Pool,
  type PoolPreference,
} from '#contracts';
import { BodyLengthError, EventLog, JobCancellations, JobStore } from '#cluster';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { EncodeQueue } from '../dispatch/encode-queue.js';
import { CachedNodeList } from '../dispatch/cached-node-list.js';
import { route } from '../dispatch/routing.js';
import { RetryLaterException } from '../common/http-errors.js';
import { parseAccept, type CreateJobQuery, type EncodeParams } from '../jobs/create-job.query.js';
import { jobLinks, paddedOutputSize } from '../jobs/job-view.js';
import { clientIdOf } from './admission.js';
import { InputStorage } from './input-storage.js';
import { UploadLimits, type Upload, type UploadRequest } from './upload-limits.js';

/** How a stored job is queued, and whose it is. */
export interface EnqueueOptions {
  /** The tenant that owns the job. */
  tenant: string;
  priority?: number;
  /** A live stream's batch goes to its node's own queue. */
  node?: string;
  /** Tries at recording and queueing, ENQUEUE_RETRY_MS apart. */
  attempts?: number;
}

export interface AcceptedJob {
  id: string;
  status: 'queued';
  codec: Codec;
  pool: string;
  frames: number;
  /** As on JobView: only when the output's pictures are not width x height. */
  outputWidth?: number;
  outputHeight?: number;
  links: ReturnType<typeof jobLinks>;
}

/** What a raw upload's limits are judged on: the frames' layout and the codecs asked for. */
export type RawLayout = Pick<CreateJobQuery, 'width' | 'height' | 'format' | 'frames' | 'codec' | 'accept'>;

export function newJobId(): string {
  return randomBytes(12).toString('base64url');
}

/** Between attempts to queue a stream batch that already has its seq (a connection coming back). */
const ENQUEUE_RETRY_MS = 250;

/**
 * The road every piece of work takes into the cluster, whether a job or a stream's batch: the limits
 * (checked before a byte of the body is read), the body read within the caps on bytes in flight, the
 * routing to a codec and pool, and the job recorded and queued (with retries for a batch that already
 * has its seq). What is stored, and how, is InputStorage's.
 */
@Injectable()
export class SubmissionPipeline {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly jobs: JobStore,
    private readonly events: EventLog,
    private readonly queue: EncodeQueue,
    private readonly nodes: CachedNodeList,
    private readonly uploads: UploadLimits,
    private readonly cancellations: JobCancellations,
    private readonly storage: InputStorage,
  ) {}

  /**
   * Runs `submit` with the request's body as an Upload, read within the caps on bytes in flight for
   * its client (413/429/503 before a byte is read when it cannot fit); the reservation is given back
   * however `submit` ends.
   */
  async receive<T>(request: Request, submit: (upload: Upload) => Promise<T>): Promise<T> {
    const upload = this.uploads.open(request as UploadRequest, clientIdOf(request));
    try {
      return await submit(upload);
    } finally {
      upload.close();
    }
  }

  /**
   * Checks the parameters against the limits and the declared body length, before reading a byte.
   * The declared (decompressed) batch counts against MAX_BODY_BYTES whatever the Content-Encoding:
   * it is what a node decodes, and the limit on a job must not depend on how it travelled.
   */
  checkRawUpload(
    layout: RawLayout,
    contentLength: number | null,
    encoding: InputEncoding = 'identity',
  ): { frameBytes: number; totalBytes: number; candidates: Codec[] } {
    const candidates = this.candidates(layout);
    const pixels = layout.width * layout.height;
    if (pixels > this.config.maxFramePixels) {
      throw new PayloadTooLargeException(
        `a frame of ${layout.width}x${layout.height} exceeds the limit of ${this.config.maxFramePixels} pixels`,
      );
    }
    if (layout.frames > this.config.maxFramesPerJob) {
      throw new PayloadTooLargeException(
        `frames=${layout.frames} exceeds the limit of ${this.config.maxFramesPerJob} frames per job`,
      );
    }
    const frameBytes = frameByteLength(layout.width, layout.height, layout.format);
    const totalBytes = frameBytes * layout.frames;
    if (totalBytes > this.config.maxBodyBytes) {
      throw new PayloadTooLargeException(
        `the batch is ${totalBytes} bytes; the limit is ${this.config.maxBodyBytes}`,
      );
    }
    if (encoding !== 'identity') {
      // A compressed body may be any length up to the limit; its decompressed size is checked on the node.
      if (contentLength !== null && contentLength > this.config.maxBodyBytes) {
        throw new PayloadTooLargeException(
          `the ${encoding} body is ${contentLength} bytes; the limit is ${this.config.maxBodyBytes}`,
        );
      }
      if (contentLength === 0) throw new BadRequestException(`the ${encoding} body is empty`);
    } else if (contentLength !== null && contentLength !== totalBytes) {
      throw new BadRequestException(new BodyLengthError(totalBytes, contentLength).message);
    }
    return { frameBytes, totalBytes, candidates };
  }

  /** The codecs a request asks for, in order of preference: `codec`, or the `accept` list. */
  candidates(query: Pick<EncodeParams, 'codec' | 'accept'>): Codec[] {
    if (query.codec && query.accept) throw new BadRequestException('give either codec or accept, not both');
    if (query.codec) return [query.codec];
    if (!query.accept)
      throw new BadRequestException(
        'codec is required (or accept, a comma list of codecs in order of preference)',
      );
    return parseAccept(query.accept);
  }

  /**
   * The codec (first of the candidates a node can encode) and the pool, or the 4xx/503 why not.
   * `mayWait`: work that can be queued for a node that has yet to start (batch jobs) is routed on the
   * pools' configured codecs (POOL_CODECS) as well as the live nodes; what needs a live node now (a
   * stream, which is placed or pinned at creation) only on the live nodes.
   */
  async routeOrThrow(candidates: Codec[], pool: PoolPreference, mayWait = false) {
    const served = mayWait ? this.config.scaleFromZero.poolCodecs : null;
    const decision = route(candidates, pool, await this.nodes.live(), served);
    if (!decision.ok) {
      if (decision.reason === 'no-nodes') throw new RetryLaterException(decision.message, 5);
      throw new UnprocessableEntityException({ message: decision.message, available: decision.available });
    }
    return decision;
  }

  /**
   * Records and queues a job whose input is stored (on its pool's queue, or on one node's queue for a
   * live stream); removes that input if either step fails.
   */
  async enqueue(data: EncodeJobData, options: EnqueueOptions): Promise<AcceptedJob> {
    const { tenant, priority, node, attempts = 1 } = options;
    for (let attempt = 1; ; attempt++) {
      try {
        // Both steps are idempotent (same record, same BullMQ job id): a retry redoes what is missing.
        await this.jobs.create(data, tenant);
        if (node) await this.queue.addToNode(node, data);
        else await this.queue.add(data, priority);
        break;
      } catch (error) {
        if (attempt < attempts) {
          await new Promise((resolve) => setTimeout(resolve, ENQUEUE_RETRY_MS));
          continue;
        }
        await this.storage.deleteInput(data).catch(() => undefined);
        throw error;
      }
    }
    return {
      id: data.jobId,
      status: 'queued',
      codec: data.codec,
      pool: data.pool,
      frames: data.frames,
      ...paddedOutputSize(data.codec, data.width, data.height, data.settings.oddSize),
      links: jobLinks(data.jobId),
    };
  }

  /** Fails a job that has not finished: out of its queue if waiting, its node told to stop if active. */
  async withdraw(jobId: string, pool: Pool, reason: string): Promise<void> {
    await this.queue.removeWaiting(pool, jobId);
    if (await this.jobs.fail(jobId, reason, Date.now())) {
      await this.events.append(jobId, { type: 'failed', error: reason });
      await this.cancellations.announce(jobId);
    }
  }
}
