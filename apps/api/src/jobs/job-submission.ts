import { Injectable } from '@nestjs/common';
import {
  frameByteLength,
  isVideoCodec,
  type EncodeJobData,
  type EncodeJobInput,
  type InputEncoding,
} from '#contracts';
import { FrameStore } from '#cluster';
import { validateParams } from '../common/validation.js';
import { InputStorage } from '../submission/input-storage.js';
import {
  SubmissionPipeline,
  newJobId,
  type AcceptedJob,
  type EnqueueOptions,
} from '../submission/submission-pipeline.js';
import type { Upload } from '../submission/upload-limits.js';
import { EncodeParams, type CreateJobQuery } from './create-job.query.js';

/** POST /v1/jobs: a job's input, raw frames or images, through the submission pipeline. */
@Injectable()
export class JobSubmission {
  constructor(
    private readonly pipeline: SubmissionPipeline,
    private readonly storage: InputStorage,
    private readonly frames: FrameStore,
  ) {}

  /**
   * Raw frames, as they are (`identity`: stored frame by frame) or compressed (`lz4`, `gzip`,
   * `deflate`: stored as sent, in chunks, and decompressed by the node that encodes them).
   */
  async submitRaw(
    query: CreateJobQuery,
    upload: Upload,
    contentLength: number | null,
    encoding: InputEncoding,
    tenant: string,
  ): Promise<AcceptedJob> {
    const { frameBytes, candidates } = this.pipeline.checkRawUpload(query, contentLength, encoding);
    const decision = await this.pipeline.routeOrThrow(candidates, query.pool, true);

    const jobId = newJobId();
    const job = (input: EncodeJobInput): EncodeJobData => ({
      jobId,
      codec: decision.codec,
      pool: decision.pool,
      width: query.width,
      height: query.height,
      format: query.format,
      frames: query.frames,
      settings: { quality: query.quality, speed: query.speed, fps: query.fps, oddSize: query.oddSize },
      input,
      createdAt: Date.now(),
    });
    const options = { tenant, priority: query.priority };
    if (
      isVideoCodec(decision.codec) &&
      query.frames > 1 &&
      (encoding === 'identity' || encoding === 'lz4-block')
    ) {
      return this.submitArriving(job, options, upload, frameBytes, query.frames, contentLength, encoding);
    }
    const input = await this.storage.storeRawInput(
      jobId,
      upload,
      frameBytes,
      query.frames,
      contentLength,
      encoding,
    );
    return this.pipeline.enqueue(job(input), options);
  }

  /**
   * A video batch is queued as soon as its first frame is stored, so that a node feeds ffmpeg frame by
   * frame as they land and the encode overlaps the upload; each stored frame moves the job's `landed`
   * count. A node waits at most its timeout for a frame that does not come. If the upload fails after
   * the job was queued, the job fails (its node is told to stop) and its input goes.
   */
  private async submitArriving(
    job: (input: EncodeJobInput) => EncodeJobData,
    options: EnqueueOptions,
    upload: Upload,
    frameBytes: number,
    frames: number,
    contentLength: number | null,
    encoding: InputEncoding,
  ): Promise<AcceptedJob> {
    let data = job({ encoding, storedBytes: 0, arriving: true });
    let queued: Promise<AcceptedJob> | undefined;
    const landed: Promise<void>[] = [];
    const onFrameStored = (index: number, stored: InputEncoding) => {
      if (index === 0) {
        // How frames are stored (as sent, or compressed here) is known once the first one is.
        const storedBytes = stored === 'identity' ? frameBytes * frames : 0;
        data = job({ encoding: stored, storedBytes, arriving: true });
      }
      const marked = this.frames.markLanded(data.jobId, index + 1);
      // Awaited below, unless the upload fails first: then nobody awaits it, and a rejection that
      // nobody handles (Redis gone mid-upload) would end the process.
      marked.catch(() => undefined);
      landed.push(marked);
      if (index > 0) return;
      queued = this.pipeline.enqueue(data, options);
      queued.catch(() => undefined);
    };
    try {
      await this.storage.storeRawInput(
        data.jobId,
        upload,
        frameBytes,
        frames,
        contentLength,
        encoding,
        onFrameStored,
      );
      await Promise.all(landed);
      if (!queued) throw new Error(`job ${data.jobId}: stored without its first frame`);
      return await queued;
    } catch (error) {
      if (queued) {
        const reason = `its upload failed: ${(error as Error).message}`;
        await this.pipeline.withdraw(data.jobId, data.pool, reason).catch(() => undefined);
        await this.storage.deleteInput(data).catch(() => undefined);
      }
      throw error;
    }
  }

  /**
   * Encoded frames (multipart: images as `frame` file parts, the parameters as form fields or in the
   * query string), decoded and stored as raw RGBA frames (InputStorage.storeImages), then routed and
   * queued like raw ones.
   */
  async submitEncoded(
    query: Record<string, unknown>,
    upload: Upload,
    contentLength: number | null,
    tenant: string,
  ): Promise<AcceptedJob> {
    const jobId = newJobId();
    const stored = await this.storage.storeImages(jobId, upload, contentLength, query);
    const { width, height, frames } = stored;
    try {
      const params = await validateParams(EncodeParams, stored.fields);
      const decision = await this.pipeline.routeOrThrow(this.pipeline.candidates(params), params.pool, true);
      return await this.pipeline.enqueue(
        {
          jobId,
          codec: decision.codec,
          pool: decision.pool,
          width,
          height,
          format: 'rgba',
          frames,
          settings: {
            quality: params.quality,
            speed: params.speed,
            fps: params.fps,
            oddSize: params.oddSize,
          },
          input: { encoding: 'identity', storedBytes: frameByteLength(width, height, 'rgba') * frames },
          createdAt: Date.now(),
        },
        { tenant, priority: params.priority },
      );
    } catch (error) {
      await this.frames.deleteFrames(jobId, frames).catch(() => undefined);
      throw error;
    }
  }
}
