import type { LoggerService } from '@nestjs/common';
import { isVideoCodec, type PixelFormat, type StreamParams, type VideoCodec } from '#contracts';
import type { XpraDict, XpraValue } from '#xpra';
import { CONTEXT_PIXEL_FORMATS, codecForXpra, pixelFormatForXpra } from './xpra-capabilities.js';
import type { XpraContexts } from './xpra-connection.js';
import type { XpraMetrics } from './xpra-metrics.js';
import { XpraRequestError, framePixels } from './xpra-oneshot.js';

/** One frame's packet from the cluster. */
export interface ContextOutput {
  /** Stream-wide frame number (as `send` answered it). */
  frame: number;
  keyframe: boolean;
  /** H.264/HEVC: one Annex B access unit; VP8/VP9/AV1: the bare frame. */
  data: Buffer;
}

/** A live stream on the cluster that a context feeds: frames in, one packet per frame out, in order. */
export interface ContextStream {
  /** The live stream's id and the node it was placed on (for logs and operators). */
  readonly id: string;
  readonly node: string | null;
  /** Sends one frame of the stream's layout; resolves with its frame number once it is on its way. */
  send(frame: Buffer): Promise<number>;
  /** The next frame sent is a keyframe. */
  requestKeyframe(): void;
  readonly outputs: AsyncIterable<ContextOutput>;
  /** Ends the stream (frames still in flight are dropped). */
  close(): Promise<void>;
}

export interface ContextStreamParams extends Pick<
  StreamParams,
  'width' | 'height' | 'format' | 'quality' | 'speed' | 'fps'
> {
  codec: VideoCodec;
}

/** Who the contexts are for: the tenant (and its key, which the cluster's session API takes). */
export interface ContextOwner {
  tenant: string;
  key?: string;
}

export type OpenContextStream = (params: ContextStreamParams, owner: ContextOwner) => Promise<ContextStream>;

/**
 * Xpra waits 1 s for a frame's reply, timed from before it sent the frame: the reply is due earlier,
 * here, so that the error (when the packet is not back) reaches Xpra inside its second.
 */
export const FRAME_BUDGET_MS = 900;
/** A change of quality or speed band restarts the encoder (with a keyframe) at most this often. */
export const BAND_RESTART_MS = 5000;
const DEFAULT_FPS = 30;

/** Xpra's 0-100 quality and speed, in three bands each: the encoder restarts only when one changes. */
export function band(value: number): number {
  return value < 40 ? 0 : value < 80 ? 1 : 2;
}

/** The middle of a band: the setting a stream is created with for it. */
function bandValue(level: number): number {
  return [25, 60, 90][level];
}

interface Pending {
  seq: number;
  receivedAt: number;
  timer: NodeJS.Timeout;
  /** Answered already (with an error, at the deadline): the packet is dropped when it comes. */
  answered: boolean;
}

/** One encoder (a live stream) of a context; a band change replaces it with another. */
interface Encoder {
  stream: ContextStream;
  pending: Map<number, Pending>;
  /** Outputs that came before their frame's number was known here. */
  early: Map<number, ContextOutput>;
  bands: [number, number];
}

interface Context {
  seq: number;
  /** Xpra's name of the encoding (the metrics label). */
  encoding: string;
  /** Counted in the open-contexts gauge. */
  counted: boolean;
  params: ContextStreamParams;
  encoder: Promise<Encoder>;
  /** The encoder once open (for counting contexts per node without waiting). */
  current: Encoder | null;
  /** Frames answered with data: Xpra's `frame` counter. */
  frames: number;
  startedAt: number;
  needKeyframe: boolean;
  lastRestart: number;
  /** Set when the cluster can no longer serve it: every frame is answered with this error. */
  dead: string | null;
  closed: boolean;
}

export interface VideoContextDeps {
  open: OpenContextStream;
  owner: ContextOwner;
  send: (packet: XpraValue[]) => void;
  peer: string;
  maxDecompressedBytes: number;
  maxFramePixels: number;
  metrics: XpraMetrics | null;
  logger: LoggerService;
  now?: () => number;
}

function dictOf(value: XpraValue | undefined): XpraDict {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value)
    ? value
    : {};
}

function percent(value: XpraValue | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.min(100, Math.max(0, value)) : fallback;
}

function seqOf(packet: XpraValue[]): number | bigint {
  const seq = packet[1];
  return typeof seq === 'number' || typeof seq === 'bigint' ? seq : -1;
}

/**
 * A connection's video contexts, each one a live stream on the cluster (placed by load, failed over by
 * the stream's session): `context-request` opens it, `context-compress` sends a frame and answers its
 * packet as `context-data` (or an error inside Xpra's 1 s, never after it), `context-close` ends it.
 */
export class XpraVideoContexts implements XpraContexts {
  private readonly contexts = new Map<number | bigint, Context>();
  private readonly now: () => number;

  constructor(private readonly deps: VideoContextDeps) {
    this.now = deps.now ?? (() => performance.now());
  }

  request(packet: XpraValue[]): void {
    const seq = seqOf(packet);
    let params: ContextStreamParams;
    try {
      params = this.paramsOf(packet);
    } catch (error) {
      this.deps.metrics?.refused.inc({ kind: 'context-request' });
      this.deps.send(['context-response', seq, false, (error as Error).message, {}]);
      return;
    }
    this.contexts
      .get(seq)
      ?.encoder.then((encoder) => encoder.stream.close())
      .catch(() => undefined);
    const bands: [number, number] = [band(params.quality), band(params.speed)];
    const context: Context = {
      seq: Number(seq),
      encoding: String(packet[3]),
      counted: false,
      params,
      encoder: this.openEncoder(params, bands),
      current: null,
      frames: 0,
      startedAt: this.now(),
      needKeyframe: false,
      lastRestart: this.now(),
      dead: null,
      closed: false,
    };
    this.contexts.set(seq, context);
    context.encoder.then(
      (encoder) => {
        if (context.closed) return;
        context.current = encoder;
        context.counted = true;
        this.deps.logger.log(
          `xpra ${this.deps.peer}: context ${String(seq)} (${context.encoding} ${params.width}x${params.height} ${String(packet[6])}) is live stream ${encoder.stream.id} on node ${encoder.stream.node ?? '?'}`,
        );
        this.deps.metrics?.contexts.inc({ encoding: context.encoding });
        this.deps.send([
          'context-response',
          seq,
          true,
          '',
          {
            encoding: String(packet[3]),
            width: params.width,
            height: params.height,
            src_format: String(packet[6]),
          },
        ]);
        void this.pump(context, encoder);
      },
      (error: unknown) => {
        this.contexts.delete(seq);
        context.closed = true;
        this.deps.metrics?.refused.inc({ kind: 'context-request' });
        this.deps.logger.warn(`xpra ${this.deps.peer}: context ${seq} refused: ${(error as Error).message}`);
        this.deps.send([
          'context-response',
          seq,
          false,
          `the cluster cannot serve it: ${(error as Error).message}`,
          {},
        ]);
      },
    );
  }

  private paramsOf(packet: XpraValue[]): ContextStreamParams {
    const [, , , encoding, w, h, srcFormat, rawOptions] = packet;
    const codec = typeof encoding === 'string' ? codecForXpra(encoding) : null;
    if (!codec || !isVideoCodec(codec))
      throw new XpraRequestError(`encoding ${String(encoding)} is not a video codec served here`);
    if (typeof srcFormat !== 'string' || !(CONTEXT_PIXEL_FORMATS as readonly string[]).includes(srcFormat))
      throw new XpraRequestError(
        `source format ${String(srcFormat)} is not one of ${CONTEXT_PIXEL_FORMATS.join(', ')}`,
      );
    const format = pixelFormatForXpra(srcFormat) as PixelFormat;
    if (
      typeof w !== 'number' ||
      typeof h !== 'number' ||
      !Number.isInteger(w) ||
      !Number.isInteger(h) ||
      w < 1 ||
      h < 1
    )
      throw new XpraRequestError(`the size ${String(w)}x${String(h)} is not valid`);
    if (w * h > this.deps.maxFramePixels)
      throw new XpraRequestError(
        `a ${w}x${h} context is over the limit of ${this.deps.maxFramePixels} pixels`,
      );
    const options = dictOf(rawOptions);
    return {
      codec,
      width: w,
      height: h,
      format,
      quality: bandValue(band(percent(options.quality, 60))),
      speed: bandValue(band(percent(options.speed, 60))),
      fps: DEFAULT_FPS,
    };
  }

  private async openEncoder(params: ContextStreamParams, bands: [number, number]): Promise<Encoder> {
    const stream = await this.deps.open(
      { ...params, quality: bandValue(bands[0]), speed: bandValue(bands[1]) },
      this.deps.owner,
    );
    return { stream, pending: new Map(), early: new Map(), bands };
  }

  compress(packet: XpraValue[], receivedAt: number): void {
    const seq = seqOf(packet);
    const context = this.contexts.get(seq);
    if (!context || context.closed) return this.error(seq, 'context not found');
    if (context.dead) return this.error(seq, context.dead);
    void this.sendFrame(context, packet, receivedAt).catch((error: unknown) => {
      this.deps.metrics?.refused.inc({ kind: 'context-compress' });
      this.deps.logger.warn(`xpra ${this.deps.peer}: context ${context.seq}: ${(error as Error).message}`);
      this.error(seq, (error as Error).message);
    });
  }

  private error(seq: number | bigint, message: string): void {
    this.deps.send(['context-data', seq, Buffer.alloc(0), { error: message }, {}]);
  }

  private async sendFrame(context: Context, packet: XpraValue[], receivedAt: number): Promise<void> {
    const [, seq, rawMeta, pixels, rawOptions, rawSendOpts] = packet;
    const meta = dictOf(rawMeta);
    const { width, height, format } = context.params;
    if (meta.width !== width || meta.height !== height)
      throw new XpraRequestError(
        `a ${String(meta.width)}x${String(meta.height)} frame for a ${width}x${height} context`,
      );
    if (typeof meta.planes === 'number' && meta.planes > 0)
      throw new XpraRequestError('planar frames are not served: send the packed pixel format of the context');
    if (typeof meta.pixel_format === 'string' && pixelFormatForXpra(meta.pixel_format) !== format)
      throw new XpraRequestError(`pixel format ${meta.pixel_format} differs from the context's`);
    const rowstride = typeof meta.rowstride === 'number' ? meta.rowstride : width * 4;
    const frame = await framePixels(
      pixels,
      { width, height, format, rowstride },
      Boolean(dictOf(rawSendOpts).lz4),
      this.deps.maxDecompressedBytes,
    );
    const options = dictOf(rawOptions);
    const encoder = await this.encoderFor(
      context,
      percent(options.quality, context.params.quality),
      percent(options.speed, context.params.speed),
    );
    if (context.closed) return;
    if (context.needKeyframe) {
      encoder.stream.requestKeyframe();
      context.needKeyframe = false;
    }
    const pending: Pending = {
      seq: Number(seq),
      receivedAt,
      answered: false,
      timer: setTimeout(
        () => this.expire(context, pending),
        Math.max(0, FRAME_BUDGET_MS - (this.now() - receivedAt)),
      ),
    };
    const number = await encoder.stream.send(frame);
    encoder.pending.set(number, pending);
    const early = encoder.early.get(number);
    if (early) {
      encoder.early.delete(number);
      this.deliver(context, encoder, early);
    }
  }

  /**
   * The context's encoder, restarted (a new stream, keyframe first) when Xpra's quality or speed moved
   * to another band, at most every BAND_RESTART_MS; the old one finishes its frames in flight.
   */
  private async encoderFor(context: Context, quality: number, speed: number): Promise<Encoder> {
    const current = await context.encoder;
    const bands: [number, number] = [band(quality), band(speed)];
    if (bands[0] === current.bands[0] && bands[1] === current.bands[1]) return current;
    if (this.now() - context.lastRestart < BAND_RESTART_MS) return current;
    context.lastRestart = this.now();
    const next = this.openEncoder(context.params, bands);
    context.encoder = next.catch(() => current);
    const encoder = await context.encoder;
    if (encoder !== current) {
      context.current = encoder;
      void this.pump(context, encoder);
      void this.retire(current);
    }
    return encoder;
  }

  /** Closes a replaced encoder once its frames in flight are answered (or expired). */
  private async retire(encoder: Encoder): Promise<void> {
    // Bounded: every frame in flight is answered within FRAME_BUDGET_MS anyway (data or an error).
    const until = Date.now() + FRAME_BUDGET_MS * 2;
    while (encoder.pending.size > 0 && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await encoder.stream.close().catch(() => undefined);
  }

  /** The deadline passed: the frame is answered with an error now, its packet dropped, the next is a keyframe. */
  private expire(context: Context, pending: Pending): void {
    if (pending.answered || context.closed) return;
    pending.answered = true;
    context.needKeyframe = true;
    this.deps.metrics?.refused.inc({ kind: 'frame-timeout' });
    this.error(pending.seq, `no packet within ${FRAME_BUDGET_MS} ms`);
  }

  private async pump(context: Context, encoder: Encoder): Promise<void> {
    try {
      for await (const output of encoder.stream.outputs) {
        if (context.closed) break;
        if (!encoder.pending.has(output.frame)) {
          encoder.early.set(output.frame, output);
          continue;
        }
        this.deliver(context, encoder, output);
      }
    } catch (error) {
      if (context.closed) return;
      context.dead = `the cluster can no longer serve this context: ${(error as Error).message}`;
      this.deps.logger.warn(`xpra ${this.deps.peer}: context ${context.seq}: ${context.dead}`);
      for (const pending of encoder.pending.values()) {
        clearTimeout(pending.timer);
        if (!pending.answered) this.error(pending.seq, context.dead);
      }
      encoder.pending.clear();
    }
  }

  private deliver(context: Context, encoder: Encoder, output: ContextOutput): void {
    const pending = encoder.pending.get(output.frame);
    if (!pending) return;
    encoder.pending.delete(output.frame);
    clearTimeout(pending.timer);
    if (pending.answered || context.closed) return;
    pending.answered = true;
    const elapsed = this.now() - pending.receivedAt;
    if (elapsed >= FRAME_BUDGET_MS) {
      // Too late for Xpra: an error now, and a keyframe next so its decoder starts clean.
      context.needKeyframe = true;
      this.deps.metrics?.refused.inc({ kind: 'frame-timeout' });
      return this.error(pending.seq, `no packet within ${FRAME_BUDGET_MS} ms`);
    }
    this.deps.send([
      'context-data',
      pending.seq,
      output.data,
      {
        frame: context.frames++,
        pts: Math.round(this.now() - context.startedAt),
        type: output.keyframe ? 'IDR' : 'P',
        csc: 'YUV420P',
        'full-range': false,
      },
      {},
    ]);
    this.deps.metrics?.roundTrip.observe(
      { request: 'context-compress', encoding: context.encoding },
      elapsed / 1000,
    );
  }

  close(packet: XpraValue[]): void {
    const seq = seqOf(packet);
    const context = this.contexts.get(seq);
    if (!context) return;
    this.contexts.delete(seq);
    this.end(context);
  }

  private end(context: Context): void {
    if (context.closed) return;
    context.closed = true;
    void context.encoder
      .then((encoder) => {
        if (context.counted) this.deps.metrics?.contexts.dec({ encoding: context.encoding });
        for (const pending of encoder.pending.values()) clearTimeout(pending.timer);
        return encoder.stream.close();
      })
      .catch(() => undefined);
  }

  /** The node of each open context's stream now (it changes when a session fails over). */
  nodes(): string[] {
    const nodes: string[] = [];
    for (const context of this.contexts.values()) {
      const node = context.current?.stream.node;
      if (node && !context.closed) nodes.push(node);
    }
    return nodes;
  }

  closeAll(): void {
    for (const context of this.contexts.values()) this.end(context);
    this.contexts.clear();
  }
}
