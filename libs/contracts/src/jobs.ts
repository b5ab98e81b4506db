import { isVideoCodec, type Codec, type OddSizePolicy, type PixelFormat, type Pool } from './codecs.js';
import type { StreamBatchRef } from './streams.js';

export const JOB_STATUSES = ['queued', 'active', 'completed', 'failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/**
 * How the stored input bytes are encoded: raw pixels, possibly compressed on the wire and in Redis.
 * `lz4-block`: one LZ4 block per frame, each stored as its own value (libs/codecs/src/lz4-block.ts).
 */
export type InputEncoding = 'identity' | 'lz4' | 'lz4-block' | 'gzip' | 'deflate';

/** The knobs with one meaning across codecs (0-100, higher quality = better picture, higher speed = less effort). */
export interface EncodeSettings {
  quality: number;
  speed: number;
  fps: number;
  /** H.264/HEVC at an odd size: exact (4:4:4, the default) or pad (4:2:0 at the next even size). */
  oddSize?: OddSizePolicy;
}

/** Everything a node needs to encode a job; carried in the BullMQ job data (no pixels: those are in Redis). */
export interface EncodeJobData {
  jobId: string;
  codec: Codec;
  pool: Pool;
  width: number;
  height: number;
  format: PixelFormat;
  frames: number;
  settings: EncodeSettings;
  input: EncodeJobInput;
  createdAt: number;
  /** Set when gpu work was moved to the cpu pool because no gpu node was alive; it never moves back. */
  movedFromGpu?: boolean;
  /** Set when the job is one batch of a stream. */
  stream?: StreamBatchRef;
}

/** Where and how a job's input bytes are stored in Redis. */
export interface EncodeJobInput {
  /**
   * `identity`: raw frames, one Redis value per frame; `lz4-block`: one value per frame, its LZ4 block
   * (size-prefixed); otherwise the compressed upload as it came, in chunks.
   */
  encoding: InputEncoding;
  /** Bytes stored: frames * frame size for identity, the compressed body's length otherwise. */
  storedBytes: number;
  /** Compressed uploads: the size of each chunk value (the last one may be shorter). */
  chunkBytes?: number;
  /**
   * Queued while its frames were still arriving (video batches, so that encoding overlaps the
   * upload): a node reads frame i once the job's `landed` count passes i, and gives up when it stops
   * moving for the node's timeout.
   */
  arriving?: boolean;
}

/** How many chunk values a compressed upload is stored in (0 for raw frames). */
export function inputChunkCount(input: EncodeJobInput): number {
  if (input.encoding === 'identity' || input.encoding === 'lz4-block' || !input.chunkBytes) return 0;
  return Math.ceil(input.storedBytes / input.chunkBytes);
}

export interface OutputInfo {
  index: number;
  contentType: string;
  bytes: number;
}

/**
 * Where the node spent a completed job's time, in milliseconds. The stages overlap: a node fetches
 * the next frame while it encodes one, and ffmpeg pulls frames while it encodes, so they need not add
 * up to finishedAt - startedAt.
 */
export interface JobTimings {
  /** From the job's creation (its frames stored in Redis) to a node starting it: queue and pickup. */
  queueWaitMs: number;
  /** Waiting for input frames: read from Redis (and decompressed, for compressed uploads). */
  fetchMs: number;
  /** In the encoder: sharp per frame; for video the whole ffmpeg run, which pulls the frames itself. */
  encodeMs: number;
  /** Storing outputs in Redis, recording them on the job and publishing their events. */
  storeOutputMs: number;
}

/** The job record the API serves from `GET /v1/jobs/:id`. */
export interface JobView {
  id: string;
  status: JobStatus;
  codec: Codec;
  pool: Pool;
  frames: number;
  width: number;
  height: number;
  format: PixelFormat;
  progress: number;
  node: string | null;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  outputs: (OutputInfo & { url: string })[];
  /** Present once the job completed (on nodes that record it). */
  timings?: JobTimings;
  /**
   * Present only when the output's pictures are not width x height: H.264/HEVC with `oddSize=pad` at an
   * odd size, coded at the next even size; crop the decoded pictures back to width x height.
   */
  outputWidth?: number;
  outputHeight?: number;
}

/**
 * The most outputs a job can store: one per frame for images and for a live stream's batch (one packet
 * a frame), one segment for a batch of video.
 */
export function maxOutputsOf(data: Pick<EncodeJobData, 'codec' | 'frames' | 'stream'>): number {
  return isVideoCodec(data.codec) && data.stream?.mode !== 'live' ? 1 : Math.max(1, data.frames);
}
