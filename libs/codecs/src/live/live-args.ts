import type { EncodeSettings, VideoCodec } from '#contracts';
import type { RawLayout } from '../encoder.js';
import { UnsupportedCodecError } from '../errors.js';
import {
  colourTags,
  encoderArgs,
  rawVideoInputArgs,
  threadArgs,
  VIDEO_ONLY,
  type FfmpegArgs,
} from '../ffmpeg-args.js';
import { codecOfImplementation, hardwareFamily } from '../video-implementations.js';

/**
 * ffmpeg arguments of a live session: one long-running ffmpeg per stream that must give back each
 * frame's packet as soon as that frame is written, never holding one back for the next. So:
 * encoders without lookahead, B-frames or alt-ref frames; `-fps_mode passthrough` so ffmpeg neither
 * drops nor duplicates frames (one input frame = one packet); AVI on stdout with `-flush_packets 1`,
 * the one ffmpeg 5.1 muxer that writes each packet at once with its own boundaries (see avi-packets.ts).
 */

/**
 * The encoder a live session uses for `implementation`: SVT-AV1 keeps frames in its internal
 * pipeline (no zero-latency mode in ffmpeg 5.1), so live AV1 runs on libaom-av1; the rest unchanged.
 */
export function liveImplementation(implementation: string): string {
  return implementation === 'libsvtav1' ? 'libaom-av1' : implementation;
}

export interface LiveEncodeRequest {
  codec: VideoCodec;
  /** ffmpeg encoder name, already mapped by liveImplementation. */
  implementation: string;
  layout: RawLayout;
  settings: EncodeSettings;
  threads: number;
  /** Frames between keyframes (the first packet is always one). */
  keyframeInterval: number;
  /** VAAPI render node for *_vaapi encoders. */
  vaapiDevice?: string;
}

/** Encoder options that make `implementation` emit every frame's packet before it takes the next frame. */
export function lowLatencyArgs(implementation: string): string[] {
  switch (implementation) {
    case 'libx264':
    case 'libx265':
      // No B-frames, no lookahead, no frame threads (x264 uses sliced threads instead).
      return ['-tune', 'zerolatency'];
    case 'libvpx':
    case 'libvpx-vp9':
      return ['-lag-in-frames', '0', '-auto-alt-ref', '0'];
    case 'libaom-av1':
      return ['-lag-in-frames', '0'];
    case 'libsvtav1':
      throw new UnsupportedCodecError('libsvtav1 has no zero-latency mode; live AV1 uses libaom-av1');
  }
  switch (hardwareFamily(implementation)) {
    case 'nvenc':
      return ['-zerolatency', '1', '-delay', '0', '-bf', '0'];
    case 'qsv':
    case 'vaapi':
      // async_depth 1: hand each packet back before the next frame goes in.
      return ['-async_depth', '1', '-bf', '0'];
    default:
      throw new UnsupportedCodecError(`no live (zero-latency) settings for video encoder ${implementation}`);
  }
}

/** Output as AVI with each frame's packet written as soon as it is encoded, timestamps kept as sent. */
export const AVI_PER_FRAME = ['-fps_mode', 'passthrough', '-flush_packets', '1', '-f', 'avi'];

/** The ffmpeg arguments of a live session: raw frames on stdin, one AVI chunk per frame on stdout. */
export function buildLiveEncodeArgs(request: LiveEncodeRequest): FfmpegArgs {
  const { codec, implementation, layout, settings, threads, keyframeInterval } = request;
  if (codecOfImplementation(implementation) !== codec) {
    throw new UnsupportedCodecError(`'${implementation}' is not an encoder for ${codec}`);
  }
  if (!Number.isInteger(keyframeInterval) || keyframeInterval < 1) {
    throw new RangeError(`keyframeInterval must be a positive integer, got ${keyframeInterval}`);
  }
  const low = lowLatencyArgs(implementation);
  const input = rawVideoInputArgs(implementation, layout, settings, request.vaapiDevice);
  const output = [
    ...VIDEO_ONLY,
    ...encoderArgs(implementation, layout, settings),
    ...low,
    ...threadArgs(implementation, threads),
    '-g',
    String(keyframeInterval),
    ...colourTags(implementation),
    ...AVI_PER_FRAME,
  ];
  return { input, output };
}
