import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { ffmpegBinaries } from '../ffmpeg-binaries.js';

/**
 * Helpers that check encoder output the honest way: decode it with an independent decoder
 * (libvips for images, the ffmpeg/ffprobe CLIs for video) and compare pixels with the input.
 */

/** PSNR in dB of two equally long 8-bit buffers; Infinity when identical. */
export function psnr(expected: Buffer, actual: Buffer): number {
  if (expected.length !== actual.length) {
    throw new Error(`psnr: lengths differ (${expected.length} vs ${actual.length})`);
  }
  let squaredError = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = expected[i] - actual[i];
    squaredError += d * d;
  }
  if (squaredError === 0) return Infinity;
  const mse = squaredError / expected.length;
  return 10 * Math.log10((255 * 255) / mse);
}

export interface PaddedFrames {
  /** The pictures cropped back to width x height, packed RGB. */
  cropped: Buffer;
  /** PSNR of the padding columns against the last real column (Infinity with none). */
  columnRepeat: number;
  /** PSNR of the padding rows against the last real row (Infinity with none). */
  rowRepeat: number;
}

/**
 * Splits decoded packed-RGB frames coded at `coded` (bigger than width x height by padding on the right
 * and bottom) into the picture cropped back to width x height and how closely the padding repeats the
 * picture's last column and row: a padding that repeats the edge decodes close to it; a coloured one
 * (black, or whatever `pad` fills with) does not.
 */
export function splitPadding(
  rgb: Buffer,
  coded: { width: number; height: number },
  width: number,
  height: number,
): PaddedFrames {
  const frameBytes = coded.width * coded.height * 3;
  if (rgb.length % frameBytes !== 0) {
    throw new Error(`splitPadding: ${rgb.length} bytes is not whole ${coded.width}x${coded.height} frames`);
  }
  const pixel = (frame: number, x: number, y: number) => {
    const at = frame * frameBytes + (y * coded.width + x) * 3;
    return rgb.subarray(at, at + 3);
  };
  const cropped: Buffer[] = [];
  const [padColumns, lastColumns, padRows, lastRows]: Buffer[][] = [[], [], [], []];
  for (let frame = 0; frame < rgb.length / frameBytes; frame++) {
    for (let y = 0; y < height; y++) {
      const start = frame * frameBytes + y * coded.width * 3;
      cropped.push(rgb.subarray(start, start + width * 3));
      for (let x = width; x < coded.width; x++) {
        padColumns.push(pixel(frame, x, y));
        lastColumns.push(pixel(frame, width - 1, y));
      }
    }
    for (let y = height; y < coded.height; y++) {
      for (let x = 0; x < width; x++) {
        padRows.push(pixel(frame, x, y));
        lastRows.push(pixel(frame, x, height - 1));
      }
    }
  }
  return {
    cropped: Buffer.concat(cropped),
    columnRepeat: psnr(Buffer.concat(lastColumns), Buffer.concat(padColumns)),
    rowRepeat: psnr(Buffer.concat(lastRows), Buffer.concat(padRows)),
  };
}

export interface DecodedImage {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
  format: string;
}

/** Decodes an encoded image to raw pixels with `channels` 3 (RGB) or 4 (RGBA, alpha added if absent). */
export async function decodeImage(encoded: Buffer, channels: 3 | 4): Promise<DecodedImage> {
  const metadata = await sharp(encoded).metadata();
  let image = sharp(encoded);
  image = channels === 3 ? image.removeAlpha() : image.ensureAlpha();
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  return {
    data,
    width: info.width,
    height: info.height,
    channels: info.channels,
    format: metadata.format ?? '',
  };
}

function run(binary: string, args: string[], stdin: Buffer): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr });
      else reject(new Error(`${binary} ${args.join(' ')} exited ${code}: ${stderr.slice(-1500)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

/** All frames of an encoded video as packed RGB24, decoded by the ffmpeg CLI. */
export async function decodeVideoToRgb(encoded: Buffer): Promise<Buffer> {
  const { stdout } = await run(
    ffmpegBinaries().ffmpeg,
    ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
    encoded,
  );
  return stdout;
}

export interface VideoProbe {
  codecName: string;
  width: number;
  height: number;
  pixFmt: string;
  profile?: string;
  /** Frames counted by decoding (ffprobe -count_frames). */
  frames: number;
  formatName: string;
  firstFrame: { keyFrame: boolean; pictType: string };
}

interface FfprobeJson {
  streams?: {
    codec_name: string;
    width: number;
    height: number;
    pix_fmt: string;
    profile?: string;
    nb_read_frames?: string;
  }[];
  frames?: { key_frame: number; pict_type: string }[];
  format?: { format_name: string };
}

/** Stream facts from one ffprobe run that decodes every frame (so the count is exact). */
export async function probeVideo(encoded: Buffer): Promise<VideoProbe> {
  const { stdout } = await run(
    ffmpegBinaries().ffprobe,
    [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-of',
      'json',
      '-count_frames',
      '-show_frames',
      '-show_entries',
      'stream=codec_name,width,height,pix_fmt,profile,nb_read_frames:format=format_name:frame=key_frame,pict_type',
      '-i',
      'pipe:0',
    ],
    encoded,
  );
  const info = JSON.parse(stdout.toString()) as FfprobeJson;
  const stream = info.streams?.[0];
  if (!stream) throw new Error('ffprobe found no video stream');
  const frames = info.frames ?? [];
  if (frames.length !== Number(stream.nb_read_frames)) {
    throw new Error(`ffprobe listed ${frames.length} frames but counted ${stream.nb_read_frames}`);
  }
  return {
    codecName: stream.codec_name,
    width: stream.width,
    height: stream.height,
    pixFmt: stream.pix_fmt,
    profile: stream.profile,
    frames: frames.length,
    formatName: info.format?.format_name ?? '',
    firstFrame: { keyFrame: frames[0]?.key_frame === 1, pictType: frames[0]?.pict_type ?? '' },
  };
}

export async function* framesOf(buffers: Buffer[]): AsyncGenerator<Buffer> {
  for (const buffer of buffers) yield buffer;
}

/**
 * An output coded bigger than width x height (oddSize=pad), probed, decoded, cropped back and compared:
 * its probe, the PSNR of the cropped picture against `expectedRgb`, and how closely the padding
 * repeats the picture's edge.
 */
export async function checkPaddedVideo(
  encoded: Buffer,
  expectedRgb: Buffer,
  width: number,
  height: number,
): Promise<{ probe: VideoProbe; quality: number; columnRepeat: number; rowRepeat: number }> {
  const probe = await probeVideo(encoded);
  const padded = splitPadding(await decodeVideoToRgb(encoded), probe, width, height);
  return {
    probe,
    quality: psnr(expectedRgb, padded.cropped),
    columnRepeat: padded.columnRepeat,
    rowRepeat: padded.rowRepeat,
  };
}
