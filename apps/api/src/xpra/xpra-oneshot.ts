import { HttpException, Inject, Injectable } from '@nestjs/common';
import { uncompress } from 'lz4-napi';
import { PIXEL_FORMATS, isVideoCodec, type Codec, type JobEvent, type PixelFormat } from '#contracts';
import { EventLog, FrameStore, OutputStore } from '#cluster';
import type { XpraDict, XpraValue } from '#xpra';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { EventHub } from '../delivery/event-hub.js';
import { SubmissionPipeline, newJobId } from '../submission/submission-pipeline.js';
import { codecForXpra, pixelFormatForXpra, xpraEncodingName } from './xpra-capabilities.js';
import { toXpraBitstream } from './xpra-bitstream.js';

/** A request the listener refuses (bad input, or nothing can encode it): the client is told why. */
export class XpraRequestError extends Error {}

const ONE_SHOT_TIMEOUT_MS = 60_000;
const DEFAULT_QUALITY = 90;
const DEFAULT_SPEED = 50;

export interface OneShotRequest {
  /** The connection's encoding (`--encoding=` of `xpra encode`, from its hello). */
  encoding: string;
  tenant: string;
  quality?: number;
  speed?: number;
  maxDecompressedBytes: number;
}

function int(value: XpraValue | undefined, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new XpraRequestError(`${what} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value;
}

function dict(value: XpraValue | undefined): XpraDict {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value)
    ? value
    : {};
}

/** Packed rows of `width * bpp` bytes out of rows `rowstride` apart. */
function packRows(data: Buffer, width: number, height: number, bpp: number, rowstride: number): Buffer {
  const row = width * bpp;
  if (rowstride === row) return data.subarray(0, row * height);
  const packed = Buffer.allocUnsafe(row * height);
  for (let y = 0; y < height; y++) data.copy(packed, y * row, y * rowstride, y * rowstride + row);
  return packed;
}

/**
 * The pixels of a packet (`encode`'s or a context frame's): LZ4-decompressed when `lz4` says so (the
 * declared size checked first), checked against the layout, rows packed.
 */
export async function framePixels(
  raw: XpraValue | undefined,
  layout: { width: number; height: number; format: PixelFormat; rowstride: number },
  lz4: boolean,
  maxBytes: number,
): Promise<Buffer> {
  if (!Buffer.isBuffer(raw)) throw new XpraRequestError('the pixels must be a byte string');
  const bpp = PIXEL_FORMATS[layout.format];
  const { width, height, rowstride } = layout;
  if (rowstride < width * bpp)
    throw new XpraRequestError(
      `rowstride ${rowstride} is shorter than a row of ${width} pixels of ${bpp} bytes`,
    );
  const needed = rowstride * (height - 1) + width * bpp;
  let data = raw;
  if (lz4) {
    if (raw.length < 4) throw new XpraRequestError('the LZ4 pixels are shorter than their size prefix');
    const declared = raw.readUInt32LE(0);
    if (declared > maxBytes || declared > rowstride * height)
      throw new XpraRequestError(
        `the LZ4 pixels declare ${declared} bytes, more than a ${width}x${height} frame (rowstride ${rowstride}) can be: refused before decompressing`,
      );
    try {
      data = await uncompress(raw);
    } catch (error) {
      throw new XpraRequestError(`corrupt LZ4 pixels: ${(error as Error).message}`);
    }
  }
  if (data.length < needed)
    throw new XpraRequestError(
      `the pixels are ${data.length} bytes; a ${width}x${height} frame with rowstride ${rowstride} needs ${needed}`,
    );
  return packRows(data, width, height, bpp, rowstride);
}

/**
 * `xpra encode`'s one-shot request, as a job of one frame: images through sharp, video through ffmpeg,
 * on whichever node routing picks; the output comes back in Xpra's form with the metadata echoed.
 */
@Injectable()
export class XpraOneShot {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly pipeline: SubmissionPipeline,
    private readonly frames: FrameStore,
    private readonly outputs: OutputStore,
    private readonly events: EventLog,
    private readonly hub: EventHub,
  ) {}

  /** `packet`: ['encode', coding, pixel_format, data, w, h, rowstride, options, metadata]; answers `encode-response`. */
  async encode(packet: XpraValue[], request: OneShotRequest): Promise<XpraValue[]> {
    const [, coding, pixelFormat, data, w, h, stride, rawOptions, metadata] = packet;
    if (coding !== 'rgb')
      throw new XpraRequestError(
        `input coding "${String(coding)}" is not served: send "rgb" pixels (mmap is not offered)`,
      );
    const format = typeof pixelFormat === 'string' ? pixelFormatForXpra(pixelFormat) : null;
    if (!format)
      throw new XpraRequestError(
        `pixel format ${String(pixelFormat)} is not one of BGRX, BGRA, RGBX, RGBA, RGB, BGR`,
      );
    const width = int(w, 'width', 1, 16384);
    const height = int(h, 'height', 1, 16384);
    if (width * height > this.config.maxFramePixels)
      throw new XpraRequestError(
        `a ${width}x${height} frame is over the limit of ${this.config.maxFramePixels} pixels`,
      );
    const rowstride = int(stride, 'rowstride', 1, 2 ** 31);
    const options = dict(rawOptions);
    const codec = this.codecOf(request.encoding);
    const pixels = await framePixels(
      data,
      { width, height, format, rowstride },
      Boolean(options.lz4),
      request.maxDecompressedBytes,
    );
    const quality = clampPercent(options.quality ?? request.quality, DEFAULT_QUALITY);
    const speed = clampPercent(options.speed ?? request.speed, DEFAULT_SPEED);
    const output = await this.runJob(
      codec,
      pixels,
      { width, height, format },
      { quality, speed },
      request.tenant,
    );
    const video = isVideoCodec(codec);
    const bitstream = video ? await toXpraBitstream(codec, output) : output;
    const clientOptions: XpraDict = video ? { frame: 0, pts: 0, csc: 'YUV420P', type: 'IDR' } : { quality };
    return [
      'encode-response',
      xpraEncodingName(codec),
      bitstream,
      clientOptions,
      width,
      height,
      0,
      format.length === 4 && format.endsWith('a') ? 32 : 24,
      metadata ?? {},
    ];
  }

  private codecOf(encoding: string): Codec {
    const codec = codecForXpra(encoding);
    if (!codec)
      throw new XpraRequestError(
        `encoding "${encoding}" is not served: use png, jpeg, webp, h264, vp8 or vp9`,
      );
    return codec;
  }

  private async runJob(
    codec: Codec,
    pixels: Buffer,
    layout: { width: number; height: number; format: PixelFormat },
    knobs: { quality: number; speed: number },
    tenant: string,
  ): Promise<Buffer> {
    let decision;
    try {
      decision = await this.pipeline.routeOrThrow([codec], 'auto');
    } catch (error) {
      throw new XpraRequestError(error instanceof HttpException ? error.message : String(error));
    }
    const jobId = newJobId();
    const done = this.completion(jobId);
    try {
      await this.frames.writeFrame(jobId, 0, pixels);
      await this.pipeline.enqueue(
        {
          jobId,
          codec: decision.codec,
          pool: decision.pool,
          ...layout,
          frames: 1,
          settings: { ...knobs, fps: 30 },
          input: { encoding: 'identity', storedBytes: pixels.length },
          createdAt: Date.now(),
        },
        { tenant },
      );
      const outcome = await done.result;
      if (outcome.type === 'failed') throw new XpraRequestError(`the encode failed: ${outcome.error}`);
      const output = await this.outputs.get(jobId, 0);
      if (!output) throw new XpraRequestError('the encoded output expired before it could be read');
      return output;
    } finally {
      done.stop();
    }
  }

  /** Resolves on the job's final event: pub/sub for speed, the event log for what pub/sub missed. */
  private completion(jobId: string): {
    result: Promise<Extract<JobEvent, { type: 'completed' | 'failed' }>>;
    stop: () => void;
  } {
    let stop = () => undefined as void;
    const result = new Promise<Extract<JobEvent, { type: 'completed' | 'failed' }>>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new XpraRequestError(`no node finished the encode within ${ONE_SHOT_TIMEOUT_MS / 1000} s`)),
        ONE_SHOT_TIMEOUT_MS,
      );
      const settle = (event: JobEvent) => {
        if (event.type === 'completed' || event.type === 'failed') resolve(event);
      };
      const poll = () => {
        this.events
          .readAfter(jobId)
          .then((logged) => logged.forEach((entry) => settle(entry.event)))
          .catch(() => undefined);
      };
      const unlisten = this.hub.listen(jobId, { onEvent: (logged) => settle(logged.event), onResync: poll });
      // A slow safety net: the log holds the final event even when its message was missed.
      const interval = setInterval(poll, 1000);
      stop = () => {
        clearTimeout(timer);
        clearInterval(interval);
        unlisten();
      };
    });
    return { result, stop: () => stop() };
  }
}

function clampPercent(value: XpraValue | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value)
    ? Math.min(100, Math.max(0, Math.round(value)))
    : fallback;
}
