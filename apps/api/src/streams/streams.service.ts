import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  BadRequestException,
  ConflictException,
  Inject,
  Injectable,
  NotFoundException,
  PayloadTooLargeException,
} from '@nestjs/common';
import {
  LIVE_PACKET_CONTENT_TYPES,
  isVideoCodec,
  liveSessionJobId,
  type AcceptedBatch,
  type EncodeJobData,
  type InputEncoding,
  type StreamParams,
  type StreamView,
} from '#contracts';
import { OutputStore, StreamStore, type StreamRecord } from '#cluster';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { RetryLaterException } from '../common/http-errors.js';
import { DEFAULT_TENANT, type Principal } from '../auth/key-ring.js';
import { visibleTo } from '../auth/tenancy.js';
import {
  IdempotencyPendingException,
  IdempotencyStore,
  assertIdempotencyKey,
} from '../submission/idempotency.js';
import { InputStorage } from '../submission/input-storage.js';
import { SubmissionPipeline, newJobId } from '../submission/submission-pipeline.js';
import type { Upload } from '../submission/upload-limits.js';
import type { CreateStreamBody } from './create-stream.dto.js';
import { LiveFailover } from './live-failover.js';
import { LiveStreams } from './live-streams.js';
import { SessionGrants } from './session-grants.js';
import { toStreamView } from './stream-view.js';

export const STREAM_ID_PATTERN = /^s[A-Za-z0-9_-]{16}$/;

export function newStreamId(): string {
  return `s${randomBytes(12).toString('base64url')}`;
}

/** Attempts to queue a batch that has its seq, ENQUEUE_RETRY_MS apart. */
const ENQUEUE_ATTEMPTS = 8;

/** A full cluster frees live capacity as streams end or go idle: worth asking again after this. */
const LIVE_FULL_RETRY_AFTER_SECONDS = 10;

/** Keyframes every 10 seconds of frames unless the client asks otherwise. */
const DEFAULT_KEYFRAME_SECONDS = 10;

/** How a stream view is asked for. */
export interface ViewRequest {
  /** `ws(s)://host[:port]` of this API as the client reached it: a live stream's view then has its `session`. */
  relayBase?: string;
  /** A node the client reports it cannot reach (`?unreachable=`): see LiveFailover. */
  unreachable?: string;
}

/** A stream's batch keys are per stream, and (as before the stores were one) the request is not compared. */
const STREAM_BATCH_FINGERPRINT = '';

@Injectable()
export class StreamsService {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly pipeline: SubmissionPipeline,
    private readonly storage: InputStorage,
    private readonly streams: StreamStore,
    private readonly live: LiveStreams,
    private readonly grants: SessionGrants,
    private readonly failover: LiveFailover,
    private readonly outputs: OutputStore,
    private readonly idempotency: IdempotencyStore,
  ) {}

  /** `tenant`: who owns the stream and the jobs of its batches. */
  async create(body: CreateStreamBody, tenant: string, view: ViewRequest = {}): Promise<StreamView> {
    const pixels = body.width * body.height;
    if (pixels > this.config.maxFramePixels) {
      throw new PayloadTooLargeException(
        `a frame of ${body.width}x${body.height} exceeds the limit of ${this.config.maxFramePixels} pixels`,
      );
    }
    const candidates = this.pipeline.candidates(body);
    if (body.mode === 'live') {
      const images = candidates.filter((codec) => !isVideoCodec(codec));
      if (images.length > 0) {
        throw new BadRequestException(
          `live mode keeps a video encoder running; ${images.join(', ')} ${images.length > 1 ? 'are image codecs' : 'is an image codec'}: use mode=batch for images`,
        );
      }
    }
    const compression = body.compression ?? 'none';
    if (compression !== 'none' && body.mode !== 'live') {
      throw new BadRequestException(
        "compression is for live sessions (mode=live); a batch stream's POST /frames bodies are compressed with Content-Encoding",
      );
    }
    const decision = await this.pipeline.routeOrThrow(candidates, body.pool);
    const params: StreamParams = {
      codec: decision.codec,
      mode: body.mode,
      pool: decision.pool,
      width: body.width,
      height: body.height,
      format: body.format,
      quality: body.quality,
      speed: body.speed,
      fps: body.fps,
      keyframeInterval: body.keyframeInterval ?? Math.max(1, Math.round(body.fps * DEFAULT_KEYFRAME_SECONDS)),
      oddSize: body.oddSize,
      ...(body.mode === 'live' ? { compression } : {}),
    };
    const id = newStreamId();
    let node: string | null = null;
    if (params.mode === 'live') {
      const place = await this.live.place(params.codec, params.pool);
      if (place.atCapacity) {
        throw new RetryLaterException(
          `every node that can keep a live ${params.codec} stream keeps as many as its capacity allows (see liveCapacity in /v1/nodes); retry later, end a live stream, or use mode=batch`,
          LIVE_FULL_RETRY_AFTER_SECONDS,
        );
      }
      node = place.node;
      if (!node) throw new RetryLaterException(`no live node can keep a ${params.codec} stream now`, 5);
    }
    await this.streams.create(id, params, node, Date.now(), tenant);
    await this.live.track(id);
    if (node) await this.live.pin(id, node);
    return this.view(await this.record(id, { tenant, operator: false }), view.relayBase);
  }

  /** A stream as `caller` may see it: another tenant's is answered exactly like an unknown id. */
  async record(streamId: string, caller: Principal): Promise<StreamRecord> {
    const record = STREAM_ID_PATTERN.test(streamId) ? await this.streams.get(streamId) : null;
    if (!record || !visibleTo(caller, record.tenant)) {
      throw new NotFoundException(`no stream ${streamId} (unknown, or older than the retention time)`);
    }
    return record;
  }

  /**
   * The packet a live session sent for `frame` (its event names job `<stream id>.live`, output `frame`),
   * for followers that fetch output bytes by URL (SSE).
   */
  async sessionOutput(
    streamId: string,
    frame: number,
    caller: Principal,
  ): Promise<{ contentType: string; data: Buffer }> {
    const record = await this.record(streamId, caller);
    const data = await this.outputs.get(liveSessionJobId(streamId), frame);
    const codec = record.params.codec;
    if (!data || !isVideoCodec(codec)) {
      throw new NotFoundException(
        `stream ${streamId} has no session output for frame ${frame} (not sent over a session, or expired)`,
      );
    }
    return { contentType: LIVE_PACKET_CONTENT_TYPES[codec], data };
  }

  async get(streamId: string, caller: Principal, view: ViewRequest = {}): Promise<StreamView> {
    let record = await this.record(streamId, caller);
    if (view.unreachable !== undefined)
      record = await this.failover.reportUnreachable(record, view.unreachable);
    return this.view(record, view.relayBase);
  }

  private async view(record: StreamRecord, relayBase: string | undefined): Promise<StreamView> {
    const view = toStreamView(record);
    const session = relayBase === undefined ? undefined : await this.grants.grantFor(record, relayBase);
    return session ? { ...view, session } : view;
  }

  /**
   * Stores a batch of raw frames, then gives it its seq (so seqs follow the order in which batches are
   * acknowledged) and queues it: on its pool for batch mode, on the pinned node's queue for live mode
   * (a live stream whose node is gone is moved first; with no node to take it, 503 before anything is
   * stored). An Idempotency-Key is recorded with the seq in one step, as pending until the batch is
   * queued: a retry (on this API or another, after any crash) gets the first answer, a 409 to retry
   * while the first attempt is still under way, and never a second batch.
   * If queueing fails after the seq was given, the seq is delivered as a failed batch (so that the
   * stream never waits on a batch that will not come) and the key is released for the retry.
   */
  async submitFrames(
    streamId: string,
    caller: Principal,
    frames: number,
    upload: Upload,
    contentLength: number | null,
    encoding: InputEncoding,
    idempotencyKey?: string,
  ): Promise<AcceptedBatch> {
    const record = await this.record(streamId, caller);
    if (idempotencyKey !== undefined) {
      assertIdempotencyKey(idempotencyKey);
      const first = await this.firstAnswer(streamId, idempotencyKey, upload.request);
      if (first) return first;
    }
    if (record.state !== 'open') throw this.closedError(streamId);
    const { params } = record;
    const { frameBytes } = this.pipeline.checkRawUpload(
      { ...params, accept: undefined, frames },
      contentLength,
      encoding,
    );
    const node = params.mode === 'live' ? await this.live.nodeOf(record) : undefined;
    if (node === null) {
      throw new RetryLaterException(`no live node can take ${params.codec} stream ${streamId} now`, 2);
    }
    const jobId = newJobId();
    const input = await this.storage.storeRawInput(
      jobId,
      upload,
      frameBytes,
      frames,
      contentLength,
      encoding,
    );
    const discardInput = () => this.storage.deleteInput({ jobId, frames, input }).catch(() => undefined);
    const allocated = await this.streams.allocate(streamId, frames, jobId, idempotencyKey);
    if (allocated === 'closed' || allocated === 'missing' || allocated === 'repeat') {
      await discardInput();
      if (allocated === 'closed') throw this.closedError(streamId);
      if (allocated === 'missing') throw new NotFoundException(`stream ${streamId} expired`);
      // A key released since (its batch was not queued): the retry goes ahead then.
      const first = await this.firstAnswer(streamId, idempotencyKey!);
      if (first) return first;
      throw new IdempotencyPendingException();
    }
    const accepted: AcceptedBatch = {
      streamId,
      seq: allocated.seq,
      jobId,
      frames,
      firstFrame: allocated.firstFrame,
    };
    const data: EncodeJobData = {
      jobId,
      codec: params.codec,
      pool: params.pool,
      width: params.width,
      height: params.height,
      format: params.format,
      frames,
      settings: { quality: params.quality, speed: params.speed, fps: params.fps, oddSize: params.oddSize },
      input,
      createdAt: Date.now(),
      stream: {
        streamId,
        mode: params.mode,
        seq: allocated.seq,
        firstFrame: allocated.firstFrame,
        ...(params.mode === 'live' ? { keyframeInterval: params.keyframeInterval } : {}),
      },
    };
    try {
      if (node) await Promise.all([this.live.watchNode(node), this.live.touch(streamId)]);
      // The seq is given: a failure now costs the stream a batch, so a passing blip (a queue connection
      // coming back after a Redis restart) is waited out.
      // The batch's job is the stream's owner's, whoever of its tenant (or an operator) sent it.
      await this.pipeline.enqueue(data, {
        tenant: record.tenant ?? DEFAULT_TENANT,
        node,
        attempts: ENQUEUE_ATTEMPTS,
      });
    } catch (error) {
      await this.streams
        .commit(streamId, allocated.seq, [
          {
            type: 'batch-failed',
            seq: allocated.seq,
            jobId,
            frames,
            error: `not queued: ${(error as Error).message}`,
          },
        ])
        .catch(() => undefined);
      if (idempotencyKey !== undefined)
        await this.idempotency.abandon({ streamId }, idempotencyKey).catch(() => undefined);
      throw error;
    }
    if (idempotencyKey !== undefined)
      await this.idempotency.complete({ streamId }, idempotencyKey, STREAM_BATCH_FINGERPRINT, accepted);
    return accepted;
  }

  /** The batch a key already got (the body, if unread, is drained), null for an unused key; 409 while pending. */
  private async firstAnswer(streamId: string, key: string, body?: Readable): Promise<AcceptedBatch | null> {
    try {
      const first = await this.idempotency.answerOf<AcceptedBatch>(
        { streamId },
        key,
        STREAM_BATCH_FINGERPRINT,
      );
      if (first) body?.resume();
      return first;
    } catch (error) {
      body?.resume();
      throw error;
    }
  }

  private closedError(streamId: string): ConflictException {
    return new ConflictException(`stream ${streamId} is closed: it takes no more frames`);
  }

  /** Takes no more frames; batches already acknowledged are still delivered, then `end`. */
  async close(streamId: string, caller: Principal): Promise<StreamView> {
    const record = await this.record(streamId, caller);
    await this.streams.close(streamId, 'closed by the client');
    if (record.params.mode === 'live' && record.cursor === record.nextSeq) {
      await this.live.unpin(streamId);
    }
    return this.get(streamId, caller);
  }
}
