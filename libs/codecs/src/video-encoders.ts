import os from 'node:os';
import type { EncodeSettings, OddSizePolicy, VideoCodec } from '#contracts';
import type { RawLayout, VideoEncoder } from './encoder.js';
import { UnsupportedInputError } from './errors.js';
import { buildVideoEncodeArgs, layoutRejection, VIDEO_CONTAINERS, type FfmpegArgs } from './ffmpeg-args.js';
import { ffmpegBinaries, type FfmpegBinaries } from './ffmpeg-binaries.js';
import { runFfmpegPipe } from './ffmpeg-process.js';
import { liveImplementation } from './live/live-args.js';
import { LiveVideoSession } from './live/live-video-session.js';
import { assertValidLayout, frameBytes } from './pixel-formats.js';
import { normalizeSettings } from './settings.js';

export interface VideoEncoderOptions {
  binaries?: FfmpegBinaries;
  /** ffmpeg encoder threads; default: all cores. Size it as cores / concurrent jobs on a node. */
  threads?: number;
  /** Used for frames the main implementation cannot take (e.g. libaom-av1 for odd sizes under SVT-AV1). */
  fallbackImplementation?: string;
  /** Frames between keyframes; default: one keyframe per segment, at its start. */
  keyframeInterval?: number;
  vaapiDevice?: string;
  maxOutputBytes?: number;
}

export interface VideoEncodeOptions {
  /** Aborting kills ffmpeg and rejects with EncodeAbortedError. */
  signal?: AbortSignal;
}

/**
 * Encodes a batch of raw frames into one self-contained segment (starting with a keyframe) by
 * piping them through an ffmpeg child process: frames are pulled from the AsyncIterable only as
 * fast as ffmpeg reads its stdin, and the container comes back on stdout, no temp files.
 */
export class FfmpegVideoEncoder implements VideoEncoder {
  readonly kind = 'video' as const;
  readonly contentType: string;
  private readonly binaries: FfmpegBinaries;

  constructor(
    readonly codec: VideoCodec,
    readonly implementation: string,
    private readonly options: VideoEncoderOptions = {},
  ) {
    this.contentType = VIDEO_CONTAINERS[codec].contentType;
    this.binaries = options.binaries ?? ffmpegBinaries();
  }

  /**
   * The ffmpeg encoder that will take frames of this layout (coded as `oddSize` says), or a typed
   * error saying why none can.
   */
  implementationFor(layout: RawLayout, oddSize?: OddSizePolicy): string {
    const rejection = layoutRejection(this.implementation, layout, oddSize);
    if (!rejection) return this.implementation;
    const fallback = this.options.fallbackImplementation;
    if (fallback && !layoutRejection(fallback, layout, oddSize)) return fallback;
    throw new UnsupportedInputError(
      `${this.codec} cannot encode ${layout.width}x${layout.height} on this node: ${rejection}`,
    );
  }

  /**
   * The encoder a live session uses for this layout: the live variant (liveImplementation) of the main
   * implementation when it takes the layout, else of the one implementationFor picks.
   */
  liveImplementationFor(layout: RawLayout, oddSize?: OddSizePolicy): string {
    const main = liveImplementation(this.implementation);
    if (!layoutRejection(main, layout, oddSize)) return main;
    return liveImplementation(this.implementationFor(layout, oddSize));
  }

  /**
   * Starts a live session: one ffmpeg for one stream, one packet back per frame (see LiveVideoSession),
   * with this encoder's binaries, threads and VAAPI device.
   */
  async startLive(
    layout: RawLayout,
    settings: EncodeSettings,
    keyframeInterval: number,
  ): Promise<LiveVideoSession> {
    assertValidLayout(layout); // rejects, like every other failure here
    const implementation = this.liveImplementationFor(layout, settings.oddSize);
    return LiveVideoSession.start({
      binary: this.binaries.ffmpeg,
      codec: this.codec,
      implementation,
      layout,
      settings,
      keyframeInterval,
      threads: this.options.threads ?? os.availableParallelism(),
      vaapiDevice: this.options.vaapiDevice,
      label: `${this.codec} live (${implementation})`,
    });
  }

  buildArgs(frameCount: number, layout: RawLayout, settings: EncodeSettings): FfmpegArgs {
    return buildVideoEncodeArgs({
      codec: this.codec,
      implementation: this.implementationFor(layout, settings.oddSize),
      layout,
      settings: normalizeSettings(settings),
      frameCount,
      threads: this.options.threads ?? os.availableParallelism(),
      keyframeInterval: this.options.keyframeInterval,
      vaapiDevice: this.options.vaapiDevice,
    });
  }

  async encode(
    frames: AsyncIterable<Buffer>,
    frameCount: number,
    layout: RawLayout,
    settings: EncodeSettings,
    options: VideoEncodeOptions = {},
  ): Promise<Buffer> {
    assertValidLayout(layout);
    if (!Number.isInteger(frameCount) || frameCount < 1) {
      throw new UnsupportedInputError(`frame count must be a positive integer, got ${frameCount}`);
    }
    const args = this.buildArgs(frameCount, layout, settings);
    return runFfmpegPipe({
      binary: this.binaries.ffmpeg,
      args,
      input: takeExactBytes(frames, frameCount, frameBytes(layout)),
      signal: options.signal,
      maxOutputBytes: this.options.maxOutputBytes,
      label: `${this.codec} (${this.implementationFor(layout, settings.oddSize)})`,
    });
  }
}

/**
 * Passes on exactly frameCount * frameSize bytes from `source`, whatever its chunking, and stops
 * pulling once they are through. Fails with UnsupportedInputError when the source has fewer bytes,
 * or when a chunk runs past the end.
 */
export async function* takeExactBytes(
  source: AsyncIterable<Buffer>,
  frameCount: number,
  frameSize: number,
): AsyncGenerator<Buffer> {
  const total = frameCount * frameSize;
  let seen = 0;
  if (total === 0) return;
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    const remaining = total - seen;
    if (chunk.length > remaining) {
      throw new UnsupportedInputError(
        `got more than the ${frameCount} frames of ${frameSize} bytes that were declared`,
      );
    }
    seen += chunk.length;
    yield chunk;
    if (seen === total) return;
  }
  throw new UnsupportedInputError(
    `expected ${frameCount} frames of ${frameSize} bytes (${total} bytes), got ${seen} bytes` +
      ` (${Math.floor(seen / frameSize)} whole frames)`,
  );
}
