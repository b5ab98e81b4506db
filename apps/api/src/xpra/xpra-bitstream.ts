import { spawn } from 'node:child_process';
import type { VideoCodec } from '#contracts';
import { ffmpegBinaries } from '#codecs/ffmpeg-binaries.js';

/**
 * A one-shot video job's output (one frame in MP4 or WebM, as every video job stores it) in the form
 * Xpra's decoders take: H.264/HEVC as an Annex B access unit, VP8/VP9/AV1 as the bare frame. ffmpeg
 * copies the stream (no re-encoding), in the API process: one-shots are rare and small.
 */
const IVF_HEADER_BYTES = 32;
const IVF_FRAME_HEADER_BYTES = 12;
const REMUX_TIMEOUT_MS = 15_000;

function remuxArgs(codec: VideoCodec): string[] {
  const input = ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-map', '0:v:0', '-c', 'copy'];
  switch (codec) {
    case 'h264':
      return [...input, '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', 'pipe:1'];
    case 'hevc':
      return [...input, '-bsf:v', 'hevc_mp4toannexb', '-f', 'hevc', 'pipe:1'];
    default:
      return [...input, '-f', 'ivf', 'pipe:1'];
  }
}

/** The frames of an IVF file (header and frame headers dropped), concatenated. */
export function ivfPayload(ivf: Buffer): Buffer {
  if (ivf.length < IVF_HEADER_BYTES || ivf.toString('latin1', 0, 4) !== 'DKIF')
    throw new Error('ffmpeg did not write an IVF file');
  const frames: Buffer[] = [];
  let at = ivf.readUInt16LE(6);
  while (at + IVF_FRAME_HEADER_BYTES <= ivf.length) {
    const size = ivf.readUInt32LE(at);
    frames.push(ivf.subarray(at + IVF_FRAME_HEADER_BYTES, at + IVF_FRAME_HEADER_BYTES + size));
    at += IVF_FRAME_HEADER_BYTES + size;
  }
  return Buffer.concat(frames);
}

export function toXpraBitstream(codec: VideoCodec, container: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegBinaries().ffmpeg, remuxArgs(codec), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), REMUX_TIMEOUT_MS);
    child.stdout.on('data', (data: Buffer) => out.push(data));
    child.stderr.on('data', (data: Buffer) => (stderr = (stderr + data.toString()).slice(-1000)));
    child.stdin.on('error', () => undefined); // an early exit is reported below
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`ffmpeg remux failed (${signal ?? code}): ${stderr.trim()}`));
      try {
        const data = Buffer.concat(out);
        resolve(codec === 'h264' || codec === 'hevc' ? data : ivfPayload(data));
      } catch (error) {
        reject(error as Error);
      }
    });
    child.stdin.end(container);
  });
}
