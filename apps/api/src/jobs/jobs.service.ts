import { randomBytes } from 'node:crypto';
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
  inputChunkCount,
  isVideoCodec,
  maxOutputsOf,
  type Pool,
  type Codec,
  type EncodeJobData,
  type EncodeJobInput,
  type InputEncoding,
  type JobView,
  type PoolPreference,
} from '../../../../libs/contracts/src/index.js';
import { decodeImageToRgba } from '../../../../libs/codecs/src/image-input.js';
import { isCodecError } from '../../../../libs/codecs/src/errors.js';
import { lz4BlockPieces } from '../../../../libs/codecs/src/lz4-block.js';
import {
  BodyLengthError,
  BodyTooLargeError,
  EventLog,
  FrameStore,
  JobCancellations,
  JobStore,
  OutputStore,
  type JobRecord,
} from '../../../../libs/cluster/src/index.js';
import { API_CONFIG, imageBytesBound, type ApiConfig } from '../config/api-config.js';
import type { Principal } from '../auth/key-ring.js';
import { visibleTo } from '../auth/tenancy.js';
import { EncodeQueue } from '../cluster/encode-queue.js';
import { CachedNodeList } from '../cluster/cached-node-list.js';
import { route } from '../cluster/routing.js';
import { RetryLaterException, httpErrorFromCodec } from '../common/http-errors.js';
import { isPrototypeKey, prototypeKeyMessage } from '../common/strict-input.js';
import { validateParams } from '../common/validation.js';
import { EncodeParams, parseAccept, type CreateJobQuery } from './create-job.query.js';
import { multipartParts, type MultipartLimits } from './multipart-parts.js';
import { jobLinks, paddedOutputSize, toJobView } from './job-view.js';
import { imagePartCheck } from './image-part-check.js';
import { UploadLimits, type Upload } from './upload-limits.js';

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

export function newJobId(): string {
  return randomBytes(12).toString('base64url');
}

export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{16}$/;

/**
 * Compressed uploads are stored as they arrive, in values of this size: big enough that a node reads
 * them in few round trips, small enough to stream (Redis values are written piece by piece anyway).
 */
export const INPUT_CHUNK_BYTES = 1024 * 1024;

/** Between attempts to queue a stream batch that already has its seq (a connection coming back). */
const ENQUEUE_RETRY_MS = 250;

/** Most form fields a multipart upload may carry (the parameters are fewer than this). */
const MAX_FORM_FIELDS = 32;
const MAX_FORM_FIELD_BYTES = 1024;

@Injectable()
export class JobsService {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly frames: FrameStore,
    private readonly jobs: JobStore,
    private readonly outputs: OutputStore,
    private readonly events: EventLog,
    private readonly queue: EncodeQueue,
    private readonly nodes: CachedNodeList,
    private readonly uploads: UploadLimits,
    private readonly cancellations: JobCancellations,
  ) {}

  /**
   * Checks the parameters against the limits and the declared body length, before reading a byte.
   * The declared (decompressed) batch counts against MAX_BODY_BYTES whatever the Content-Encoding:
   * it is what a node decodes, and the limit on a job must not depend on how it travelled.
   */
  checkRawUpload(
    query: CreateJobQuery,
    contentLength: number | null,
    encoding: InputEncoding = 'identity',
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
    const { frameBytes, candidates } = this.checkRawUpload(query, contentLength, encoding);
    const decision = await this.routeOrThrow(candidates, query.pool, true);

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
    const input = await this.storeRawInput(jobId, upload, frameBytes, query.frames, contentLength, encoding);
    return this.enqueue(job(input), options);
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
    const data = job({
      encoding,
      storedBytes: encoding === 'identity' ? frameBytes * frames : 0,
      arriving: true,
    });
    let queued: Promise<AcceptedJob> | undefined;
    const landed: Promise<void>[] = [];
    const onFrameStored = (index: number) => {
      const marked = this.frames.markLanded(data.jobId, index + 1);
      // Awaited below, unless the upload fails first: then nobody awaits it, and a rejection that
      // nobody handles (Redis gone mid-upload) would end the process.
      marked.catch(() => undefined);
      landed.push(marked);
      if (index > 0) return;
      queued = this.enqueue(data, options);
      queued.catch(() => undefined);
    };
    try {
      await this.storeRawInput(
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
        await this.failUnfinished(data.jobId, data.pool, reason).catch(() => undefined);
        await this.deleteInput(data).catch(() => undefined);
      }
      throw error;
    }
  }

  /**
   * Stores a raw upload under `jobId`: frame by frame (`identity`), or as sent, in chunks, for a node to
   * decompress (`lz4`, `gzip`, `deflate`). Maps a body of the wrong length to 400 and one over the
   * limit to 413; a body that stalls is a 408. Whatever the failure, nothing of it stays stored.
   */
  async storeRawInput(
    jobId: string,
    upload: Upload,
    frameBytes: number,
    frames: number,
    contentLength: number | null,
    encoding: InputEncoding,
    onFrameStored?: (index: number) => void,
  ): Promise<EncodeJobInput> {
    const chunks = upload.chunks();
    try {
      if (encoding === 'identity') {
        await this.frames.writeFrames(jobId, chunks, frameBytes, frames, onFrameStored);
        return { encoding, storedBytes: frameBytes * frames };
      }
      if (encoding === 'lz4-block') {
        // Every record's declared size is checked as it arrives, before its block is stored.
        const pieces = lz4BlockPieces(chunks, frameBytes, frames);
        return { encoding, storedBytes: await this.frames.writeFrameValues(jobId, pieces, onFrameStored) };
      }
      const storedBytes = await this.frames.writeInputChunks(
        jobId,
        chunks,
        INPUT_CHUNK_BYTES,
        contentLength,
        this.config.maxBodyBytes,
      );
      if (storedBytes === 0) throw new BadRequestException(`the ${encoding} body is empty`);
      return { encoding, storedBytes, chunkBytes: INPUT_CHUNK_BYTES };
    } catch (error) {
      if (error instanceof BodyLengthError) throw new BadRequestException(error.message);
      if (isCodecError(error)) throw httpErrorFromCodec(error);
      if (error instanceof BodyTooLargeError) {
        throw new PayloadTooLargeException(
          `the ${encoding} body is larger than the limit of ${this.config.maxBodyBytes} bytes`,
        );
      }
      throw error;
    }
  }

  /**
   * Encoded frames: `frame` file parts (PNG, JPEG or WebP, all the same size) and the parameters as
   * form fields (or in the query string). Each image is decoded here, one at a time as the body
   * streams in, and stored as a raw RGBA frame: nodes then see the same input as for raw uploads (one
   * path to read, prefetch and encode, video included), a bad or oversized image is refused with a
   * 4xx while the client is still there rather than failing a queued job later. Each image is judged
   * from its first bytes (type, size from its header, then no more bytes than that size can take), and
   * what it holds in memory counts against IMAGE_BYTES_IN_FLIGHT. The cost is decode work on the
   * API, bounded to one image at a time per request.
   */
  async submitEncoded(
    query: Record<string, unknown>,
    upload: Upload,
    contentLength: number | null,
    tenant: string,
  ): Promise<AcceptedJob> {
    const { maxBodyBytes, maxFramePixels, maxFramesPerJob } = this.config;
    if (contentLength !== null && contentLength > maxBodyBytes) {
      throw new PayloadTooLargeException(`the body is ${contentLength} bytes; the limit is ${maxBodyBytes}`);
    }
    const limits: MultipartLimits = {
      maxBodyBytes,
      maxFileBytes: imageBytesBound(maxFramePixels, maxBodyBytes),
      maxFiles: maxFramesPerJob,
      maxFields: MAX_FORM_FIELDS,
      maxFieldBytes: MAX_FORM_FIELD_BYTES,
    };
    const memory = this.uploads.imageBuffer();
    limits.inspectFile = (name, filename) => {
      const label = `frame ${frames + 1}${filename ? ` (${filename})` : ''}`;
      if (name !== 'frame') {
        throw new BadRequestException(
          `unexpected file part "${name}": send images as file parts named "frame"`,
        );
      }
      // The previous image is stored by now: this one starts from nothing.
      memory.resize(0);
      return imagePartCheck(label, { maxPixels: maxFramePixels, maxBodyBytes }, memory);
    };
    const jobId = newJobId();
    const fields: Record<string, unknown> = { ...query };
    let size: { width: number; height: number } | null = null;
    let frames = 0;
    try {
      for await (const part of multipartParts(upload.request, limits, upload)) {
        if (part.kind === 'field') {
          if (isPrototypeKey(part.name))
            throw new BadRequestException(prototypeKeyMessage(part.name, 'form field'));
          if (part.name === 'frame') {
            throw new BadRequestException('frame must be a file part (an image), not a text field');
          }
          if (Object.hasOwn(fields, part.name)) throw new BadRequestException(`${part.name} is given twice`);
          fields[part.name] = part.value;
          continue;
        }
        const label = `frame ${frames + 1}${part.filename ? ` (${part.filename})` : ''}`;
        if (part.data.length === 0) throw new BadRequestException(`${label} is empty`);
        const image = await decodeImageToRgba(part.data, { maxPixels: maxFramePixels }).catch(
          (error: unknown) => {
            throw isCodecError(error) ? httpErrorFromCodec(error, label) : error;
          },
        );
        size ??= { width: image.width, height: image.height };
        if (image.width !== size.width || image.height !== size.height) {
          throw new BadRequestException(
            `${label} is ${image.width}x${image.height} but frame 1 is ${size.width}x${size.height}; all frames must have the same size`,
          );
        }
        const decodedBytes = image.data.length * (frames + 1);
        if (decodedBytes > maxBodyBytes) {
          throw new PayloadTooLargeException(
            `the frames decode to more than ${maxBodyBytes} bytes of pixels, the limit per job; send fewer frames per job`,
          );
        }
        await this.frames.writeFrame(jobId, frames, image.data);
        frames++;
      }
      if (!size) {
        throw new BadRequestException(
          'no frames: send one or more PNG, JPEG or WebP images as file parts named "frame"',
        );
      }
      const params = await validateParams(EncodeParams, fields);
      const decision = await this.routeOrThrow(this.candidates(params), params.pool, true);
      return await this.enqueue(
        {
          jobId,
          codec: decision.codec,
          pool: decision.pool,
          width: size.width,
          height: size.height,
          format: 'rgba',
          frames,
          settings: {
            quality: params.quality,
            speed: params.speed,
            fps: params.fps,
            oddSize: params.oddSize,
          },
          input: {
            encoding: 'identity',
            storedBytes: frameByteLength(size.width, size.height, 'rgba') * frames,
          },
          createdAt: Date.now(),
        },
        { tenant, priority: params.priority },
      );
    } catch (error) {
      await this.frames.deleteFrames(jobId, frames).catch(() => undefined);
      throw error;
    } finally {
      memory.release();
    }
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
        await this.deleteInput(data).catch(() => undefined);
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

  async deleteInput(data: EncodeJobData): Promise<void> {
    if (data.input.encoding === 'identity' || data.input.encoding === 'lz4-block')
      await this.frames.deleteFrames(data.jobId, data.frames);
    else await this.frames.deleteInputChunks(data.jobId, inputChunkCount(data.input));
  }

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

  /** Fails a job that has not finished: out of its queue if waiting, its node told to stop if active. */
  private async failUnfinished(jobId: string, pool: Pool, reason: string): Promise<void> {
    await this.queue.removeWaiting(pool, jobId);
    if (await this.jobs.fail(jobId, reason, Date.now())) {
      await this.events.append(jobId, { type: 'failed', error: reason });
      await this.cancellations.announce(jobId);
    }
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
    await this.failUnfinished(jobId, job.data.pool, 'cancelled by the client');
    const record = await this.jobs.get(jobId);
    if (record) {
      await this.deleteInput(record.data);
      await this.outputs.deleteAll(jobId, maxOutputsOf(record.data));
    }
    return this.get(jobId, caller);
  }
}
