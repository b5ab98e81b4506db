import type { Codec, PixelFormat, Pool } from './codecs.js';

export const JOB_STATUSES = ['queued', 'active', 'completed', 'failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** How the stored input bytes are encoded: raw pixels, possibly compressed on the wire and in Redis. */
export type InputEncoding = 'identity' | 'lz4' | 'gzip' | 'deflate';

/** The knobs with one meaning across codecs (0-100, higher quality = better picture, higher speed = less effort). */
export interface EncodeSettings {
  quality: number;
  speed: number;
  fps: number;
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
  input: { encoding: InputEncoding; storedBytes: number };
  createdAt: number;
}

export interface OutputInfo {
  index: number;
  contentType: string;
  bytes: number;
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
}
