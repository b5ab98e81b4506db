import type { Codec, OddSizePolicy, PixelFormat, Pool, PoolPreference } from './codecs.js';
import type { LiveSessionGrant } from './live-session.js';

/**
 * - batch: every submitted batch is self-contained (video: a closed GOP starting with a keyframe) and
 *   may be encoded on any node, in parallel; outputs are put back in submission order.
 * - live: the stream is pinned to one node that keeps a running encoder across batches (real
 *   inter-frame video); one output per frame.
 */
export const STREAM_MODES = ['batch', 'live'] as const;
export type StreamMode = (typeof STREAM_MODES)[number];

export type StreamState = 'open' | 'closed' | 'ended';

/**
 * How a live session's frame messages are sent: `none`, the raw frame; `lz4`, a little-endian u32 of the
 * raw size followed by one LZ4 block (the form Xpra uses). POST /frames bodies use Content-Encoding.
 */
export const SESSION_COMPRESSIONS = ['none', 'lz4'] as const;
export type SessionCompression = (typeof SESSION_COMPRESSIONS)[number];

/** What a stream encodes, fixed when it is created. */
export interface StreamParams {
  codec: Codec;
  mode: StreamMode;
  pool: Pool;
  width: number;
  height: number;
  format: PixelFormat;
  quality: number;
  speed: number;
  fps: number;
  /** Live video: frames between keyframes (a new encoder context always starts with one). */
  keyframeInterval: number;
  /** H.264/HEVC at an odd size (see OddSizePolicy); absent on streams created before it existed: exact. */
  oddSize?: OddSizePolicy;
  /** Live mode: how session frames are sent; absent: none. */
  compression?: SessionCompression;
}

/** Carried in the BullMQ data of a job that is one batch of a stream. */
export interface StreamBatchRef {
  streamId: string;
  mode: StreamMode;
  /** The batch's place in the stream: 0, 1, 2, ... in the order the API acknowledged them. */
  seq: number;
  /** Stream-wide number of the batch's first frame. */
  firstFrame: number;
  /** Live mode: frames between keyframes. */
  keyframeInterval?: number;
}

/**
 * Events of a stream, in delivery order. Output events of one batch come before its `batch` (or
 * `batch-failed`) event, and batches come in seq order.
 */
export type StreamEvent =
  | {
      type: 'output';
      seq: number;
      jobId: string;
      /** Output index within the batch's job (image codecs and live video: one per frame). */
      index: number;
      /** Stream-wide frame number for per-frame outputs (images, live video); absent for a batch-mode video segment. */
      frame?: number;
      contentType: string;
      bytes: number;
      /** Live video: whether this packet is a keyframe (decodable without what came before). */
      keyframe?: boolean;
    }
  | { type: 'batch'; seq: number; jobId: string; frames: number; outputs: number; node: string | null }
  | { type: 'batch-failed'; seq: number; jobId: string; frames: number; error: string }
  | { type: 'end'; batches: number; reason: string };

export type StreamEventType = StreamEvent['type'];

/** An event as stored in the stream's log; `id` counts 1, 2, 3, ... per stream (the SSE `id:`). */
export interface LoggedStreamEvent {
  id: number;
  streamId: string;
  event: StreamEvent;
}

/**
 * `GET /v1/streams/:id`: the stream's parameters, every one given (`oddSize` of older streams: `exact`;
 * `compression` of batch streams: `none`), then where it stands.
 */
export interface StreamView extends Required<StreamParams> {
  id: string;
  state: StreamState;
  /** Present only when the output's pictures are not width x height (as on JobView). */
  outputWidth?: number;
  outputHeight?: number;
  /** Batches acknowledged so far. */
  batches: number;
  /** Batches delivered (in order) so far. */
  delivered: number;
  frames: number;
  /** Id of the last event in the log (0 before the first). */
  lastEventId: number;
  /** Live mode: the node the stream is pinned to. */
  node: string | null;
  createdAt: string;
  links: StreamLinks;
  /** Live mode, while the stream is open and its node has a data port: where to send frames directly. */
  session?: LiveSessionGrant;
}

export interface StreamLinks {
  self: string;
  frames: string;
  events: string;
  ws: string;
}

/** `POST /v1/streams` body. */
export interface CreateStreamRequest {
  codec?: Codec;
  accept?: string;
  width: number;
  height: number;
  format: PixelFormat;
  fps?: number;
  quality?: number;
  speed?: number;
  mode?: StreamMode;
  pool?: PoolPreference;
  keyframeInterval?: number;
  oddSize?: OddSizePolicy;
  /** Live mode: how session frames are sent (default none). */
  compression?: SessionCompression;
}

/** `202` of `POST /v1/streams/:id/frames`. */
export interface AcceptedBatch {
  streamId: string;
  seq: number;
  jobId: string;
  frames: number;
  firstFrame: number;
}

/**
 * Content types of live-mode outputs: one encoded packet per frame. H.264/HEVC packets are Annex B
 * access units (concatenated, they are a playable elementary stream); VP8/VP9/AV1 packets are the
 * codec's frames (AV1: a temporal unit of OBUs), which an IVF container can carry.
 */
export const LIVE_PACKET_CONTENT_TYPES = {
  h264: 'video/h264',
  hevc: 'video/h265',
  vp8: 'video/vp8',
  vp9: 'video/vp9',
  av1: 'video/av1',
} as const;
