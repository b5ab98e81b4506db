import type { Codec, EncodeSettings, ImageCodec, PixelFormat, VideoCodec } from '#contracts';
import type { LiveVideoSession } from './live/live-video-session.js';

/** Geometry and layout of the raw frames handed to an encoder. */
export interface RawLayout {
  width: number;
  height: number;
  format: PixelFormat;
}

/** One encoded output: an image per frame, or a whole video segment per batch. */
export interface EncodedOutput {
  contentType: string;
  data: Buffer;
}

export interface ImageEncoder {
  readonly kind: 'image';
  readonly codec: ImageCodec;
  readonly contentType: string;
  /** Encodes one raw frame. Never blocks the event loop (sharp runs on libuv's pool). */
  encode(frame: Buffer, layout: RawLayout, settings: EncodeSettings): Promise<Buffer>;
}

export interface VideoEncoder {
  readonly kind: 'video';
  readonly codec: VideoCodec;
  readonly contentType: string;
  /** The ffmpeg encoder used (libx264, h264_nvenc, ...). */
  readonly implementation: string;
  /**
   * Encodes `frameCount` raw frames, pulled from `frames` as the encoder consumes them, into one
   * self-contained segment that starts with a keyframe. Runs ffmpeg in a child process; aborting
   * `options.signal` kills it.
   */
  encode(
    frames: AsyncIterable<Buffer>,
    frameCount: number,
    layout: RawLayout,
    settings: EncodeSettings,
    options?: { signal?: AbortSignal },
  ): Promise<Buffer>;
  /**
   * Starts a live session for one stream: a long-running encoder that returns exactly one packet per
   * frame, immediately, keeping inter-frame state across batches. The first packet is a keyframe.
   */
  startLive(layout: RawLayout, settings: EncodeSettings, keyframeInterval: number): Promise<LiveVideoSession>;
}

export type Encoder = ImageEncoder | VideoEncoder;

export type EncoderFor<C extends Codec> = C extends ImageCodec ? ImageEncoder : VideoEncoder;
