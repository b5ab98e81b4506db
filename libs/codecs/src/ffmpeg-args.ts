import { codedSize, type EncodeSettings, type OddSizePolicy, type VideoCodec } from '#contracts';
import type { RawLayout } from './encoder.js';
import { ffmpegRawPixFmt } from './pixel-formats.js';
import { videoKnobs } from './settings.js';
import { codecOfImplementation, hardwareFamily } from './video-implementations.js';

/**
 * Pure builders of ffmpeg argument arrays (never shell strings). Everything the video encoders run
 * is decided here, so unit tests can check it without spawning ffmpeg.
 */

export type VideoContainer = 'mp4' | 'webm';

export interface VideoContainerSpec {
  container: VideoContainer;
  contentType: string;
}

/**
 * Containers, chosen to be writable to a pipe and to decode with exact frame counts:
 * - H.264/HEVC: fragmented MP4 (empty moov + one moof per keyframe) since plain MP4 needs a seekable file;
 * - VP8/VP9: WebM;
 * - AV1: fragmented MP4, because ffmpeg 5.1's WebM muxer rejects libaom-av1's packets on a pipe
 *   ("Invalid data found when processing input"), and one container per codec keeps content types stable.
 */
export const VIDEO_CONTAINERS: Readonly<Record<VideoCodec, VideoContainerSpec>> = {
  h264: { container: 'mp4', contentType: 'video/mp4' },
  hevc: { container: 'mp4', contentType: 'video/mp4' },
  vp8: { container: 'webm', contentType: 'video/webm' },
  vp9: { container: 'webm', contentType: 'video/webm' },
  av1: { container: 'mp4', contentType: 'video/mp4' },
};

export const FRAGMENTED_MP4_FLAGS = 'frag_keyframe+empty_moov+default_base_moof';

export interface VideoEncodeRequest {
  codec: VideoCodec;
  /** ffmpeg encoder name: libx264, h264_nvenc, ... */
  implementation: string;
  layout: RawLayout;
  settings: EncodeSettings;
  frameCount: number;
  /** Encoder threads; size it as cores / concurrent jobs. */
  threads: number;
  /** Frames between keyframes; defaults to frameCount, i.e. one keyframe at the start of the segment. */
  keyframeInterval?: number;
  /** VAAPI render node for *_vaapi encoders. */
  vaapiDevice?: string;
}

/** Input options go before `-i pipe:0`, output options before `pipe:1`. */
export interface FfmpegArgs {
  input: string[];
  output: string[];
}

export const DEFAULT_VAAPI_DEVICE = '/dev/dri/renderD128';

/**
 * The size `implementation` encodes frames of `layout` at: the layout's own, or with `oddSize` pad the
 * next even size for H.264/HEVC (software and hardware encoders alike); other codecs ignore `oddSize`.
 */
export function codedLayout(implementation: string, layout: RawLayout, oddSize?: OddSizePolicy): RawLayout {
  const codec = codecOfImplementation(implementation);
  if (!codec) return layout;
  const { width, height } = codedSize(codec, layout.width, layout.height, oddSize);
  return width === layout.width && height === layout.height ? layout : { ...layout, width, height };
}

/**
 * Why this encoder cannot take frames of this size, or null when it can.
 * libx264/libx265 take odd sizes through 4:4:4 (see outputPixelFormat); SVT-AV1 and the hardware
 * encoders need even sizes (and SVT-AV1 at least 64x64), which `oddSize` pad gives H.264/HEVC.
 */
export function layoutRejection(
  implementation: string,
  layout: RawLayout,
  oddSize?: OddSizePolicy,
): string | null {
  const coded = codedLayout(implementation, layout, oddSize);
  const odd = coded.width % 2 === 1 || coded.height % 2 === 1;
  if (implementation === 'libsvtav1') {
    if (odd) return 'libsvtav1 needs an even width and height with 4:2:0';
    if (coded.width < 64 || coded.height < 64) return 'libsvtav1 needs at least 64x64 pixels';
  }
  if (hardwareFamily(implementation) && odd) {
    return `${implementation} needs an even width and height (oddSize=pad encodes H.264/HEVC at the next even size)`;
  }
  return null;
}

/**
 * The encoded pixel format. 4:2:0 everywhere it can represent the exact size. H.264 and HEVC crop in
 * units of 2 luma samples in 4:2:0, so an odd width or height cannot be signalled exactly there
 * (padding + h264_metadata crop can only give even sizes); for those sizes x264/x265 encode 4:4:4
 * (High 4:4:4 Predictive / Main 4:4:4 RExt), which keeps the exact size at the cost of compatibility,
 * unless `oddSize` pad asks for 4:2:0 at the next even size (see edgePadFilter).
 * VP8, VP9 and AV1 store odd sizes in 4:2:0 directly.
 */
export function outputPixelFormat(
  implementation: string,
  layout: RawLayout,
  oddSize?: OddSizePolicy,
): 'yuv420p' | 'yuv444p' {
  const coded = codedLayout(implementation, layout, oddSize);
  const odd = coded.width % 2 === 1 || coded.height % 2 === 1;
  if (odd && (implementation === 'libx264' || implementation === 'libx265')) return 'yuv444p';
  return 'yuv420p';
}

/**
 * The filters that grow frames of `layout` to the coded size (codedLayout) by repeating the last
 * column and row, as '' when there is nothing to grow, else ending with a comma. `pad` alone can only
 * fill with a colour, whose edge would bleed into the last real column through 4:2:0 chroma and the
 * codec's prediction; `fillborders` smear copies the edge into the new column/row. It works on planar
 * formats, hence gbrp (lossless from packed RGB; alpha is dropped for video anyway).
 */
export function edgePadFilter(implementation: string, layout: RawLayout, oddSize?: OddSizePolicy): string {
  const coded = codedLayout(implementation, layout, oddSize);
  const right = coded.width - layout.width;
  const bottom = coded.height - layout.height;
  if (right === 0 && bottom === 0) return '';
  return `format=gbrp,pad=${coded.width}:${coded.height},fillborders=right=${right}:bottom=${bottom}:mode=smear,`;
}

/**
 * The RGB -> YUV matrix. BT.709 limited range everywhere except VP8, whose bitstream can only say
 * BT.601 (its colour_space bit has no other value), so every VP8 decoder (ffmpeg's, browsers')
 * converts back with BT.601 whatever the container says: a BT.709 encode came back colour-shifted
 * (a 320x180 desktop scene capped at ~34 dB PSNR whatever the quantizer; 42 dB once matched).
 */
export function colourMatrix(implementation: string): 'bt709' | 'bt601' {
  return codecOfImplementation(implementation) === 'vp8' ? 'bt601' : 'bt709';
}

/** Colour tags matching the conversion, so players and ffmpeg decode back to the same RGB. */
export function colourTags(implementation: string): string[] {
  return [
    '-colorspace',
    colourMatrix(implementation) === 'bt601' ? 'bt470bg' : 'bt709',
    '-color_primaries',
    'bt709',
    '-color_trc',
    'bt709',
    '-color_range',
    'tv',
  ];
}

/**
 * swscale flags of the RGB -> YUV conversion. Luma keeps its size, so the flags only choose how chroma
 * is halved vertically (horizontally swscale averages pixel pairs whatever they say): `neighbor` takes
 * one of the two rows instead of filtering four, which halved the conversion's CPU at 1080p for 0.04 dB
 * of PSNR (`node dist/bench/colour.js`, table in the README). `accurate_rnd` costs nothing measurable.
 */
export const RGB_TO_YUV_SCALE_FLAGS = 'neighbor+accurate_rnd';

function rgbToYuvFilter(implementation: string, pixelFormat: string): string {
  return (
    `scale=out_color_matrix=${colourMatrix(implementation)}:out_range=tv:flags=${RGB_TO_YUV_SCALE_FLAGS},` +
    `format=${pixelFormat}`
  );
}

/** Encoder thread options; hardware encoders take none. */
export function threadArgs(implementation: string, threads: number): string[] {
  const count = String(Math.max(1, Math.floor(threads)));
  switch (implementation) {
    case 'libx265':
      return ['-x265-params', `log-level=error:pools=${count}`];
    case 'libsvtav1':
      return ['-svtav1-params', `lp=${count}`];
    default:
      return hardwareFamily(implementation) ? [] : ['-threads', count];
  }
}

/** Device setup for VAAPI/QSV encoders (input options). */
export function hardwareInputArgs(implementation: string, vaapiDevice: string): string[] {
  switch (hardwareFamily(implementation)) {
    case 'vaapi':
      return ['-vaapi_device', vaapiDevice];
    case 'qsv':
      return ['-init_hw_device', 'qsv=hw', '-filter_hw_device', 'hw'];
    default:
      return [];
  }
}

/** RGB -> BT.709 YUV conversion, plus the upload to the device for VAAPI/QSV. */
export function videoFilter(implementation: string, pixelFormat: string): string {
  switch (hardwareFamily(implementation)) {
    case 'vaapi':
      return `${rgbToYuvFilter(implementation, 'nv12')},hwupload`;
    case 'qsv':
      return `${rgbToYuvFilter(implementation, 'nv12')},hwupload=extra_hw_frames=64`;
    default:
      return rgbToYuvFilter(implementation, pixelFormat);
  }
}

/** The whole `-vf` of an encode of `layout`: edge padding to the coded size if any, then videoFilter. */
export function encodeFilter(implementation: string, layout: RawLayout, oddSize?: OddSizePolicy): string {
  return (
    edgePadFilter(implementation, layout, oddSize) +
    videoFilter(implementation, outputPixelFormat(implementation, layout, oddSize))
  );
}

/** The input's first video stream only: no audio, subtitles or data. */
export const VIDEO_ONLY = ['-map', '0:v:0', '-an', '-sn', '-dn'];

/** The filter that lays the raw frames out for the encoder, then the encoder with its knobs for `settings`. */
export function encoderArgs(implementation: string, layout: RawLayout, settings: EncodeSettings): string[] {
  return [
    '-vf',
    encodeFilter(implementation, layout, settings.oddSize),
    '-c:v',
    implementation,
    ...videoKnobs(implementation, settings).args,
  ];
}

function containerArgs(codec: VideoCodec): string[] {
  const { container } = VIDEO_CONTAINERS[codec];
  if (container === 'webm') return ['-f', 'webm'];
  // hvc1: parameter sets only in the sample description, the tag Apple players require.
  const tag = codec === 'hevc' ? ['-tag:v', 'hvc1'] : [];
  return [...tag, '-movflags', FRAGMENTED_MP4_FLAGS, '-f', 'mp4'];
}

/** Input options: raw frames of `layout` on stdin at `settings.fps`, quiet logging, hardware device setup. */
export function rawVideoInputArgs(
  implementation: string,
  layout: RawLayout,
  settings: EncodeSettings,
  vaapiDevice: string = DEFAULT_VAAPI_DEVICE,
): string[] {
  return [
    '-hide_banner',
    '-nostats',
    '-loglevel',
    'error',
    ...hardwareInputArgs(implementation, vaapiDevice),
    '-f',
    'rawvideo',
    '-pix_fmt',
    ffmpegRawPixFmt(layout.format),
    '-video_size',
    `${layout.width}x${layout.height}`,
    '-framerate',
    String(settings.fps),
  ];
}

/** The ffmpeg arguments that encode raw frames from stdin into one segment on stdout. */
export function buildVideoEncodeArgs(request: VideoEncodeRequest): FfmpegArgs {
  const { codec, implementation, layout, settings, frameCount } = request;
  if (!Number.isInteger(frameCount) || frameCount < 1) {
    throw new RangeError(`frameCount must be a positive integer, got ${frameCount}`);
  }
  const keyframeInterval = Math.max(1, Math.floor(request.keyframeInterval ?? frameCount));
  const input = rawVideoInputArgs(implementation, layout, settings, request.vaapiDevice);
  const output = [
    ...VIDEO_ONLY,
    '-frames:v',
    String(frameCount),
    ...encoderArgs(implementation, layout, settings),
    ...threadArgs(implementation, request.threads),
    '-g',
    String(keyframeInterval),
    ...colourTags(implementation),
    ...containerArgs(codec),
  ];
  return { input, output };
}

/** The full argument vector ffmpeg is spawned with. */
export function ffmpegArgv(args: FfmpegArgs): string[] {
  return [...args.input, '-i', 'pipe:0', ...args.output, 'pipe:1'];
}

/** A copy-pasteable command line for logs and error messages (POSIX shell quoting). */
export function formatCommandLine(binary: string, argv: readonly string[]): string {
  return [binary, ...argv].map(shellQuote).join(' ');
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
