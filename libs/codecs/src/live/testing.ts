import { execFile } from 'node:child_process';
import type { VideoCodec } from '#contracts';
import { ivfFileHeader, ivfFrameHeader } from '#client/ivf.js';
import { ffmpegBinaries } from '../ffmpeg-binaries.js';
import { AVI_PER_FRAME } from './live-args.js';

/**
 * Test helpers for live packets: turn them into streams an independent decoder reads (Annex B as is,
 * VP8/VP9/AV1 in IVF) and run the ffmpeg/ffprobe CLIs on them.
 */

export function playableStream(
  codec: VideoCodec,
  packets: Buffer[],
  width: number,
  height: number,
  fps = 30,
): Buffer {
  if (codec === 'h264' || codec === 'hevc') return Buffer.concat(packets);
  return Buffer.concat([
    ivfFileHeader(codec, width, height, fps, packets.length),
    ...packets.flatMap((packet, pts) => [ivfFrameHeader(packet.length, pts), packet]),
  ]);
}

/** Runs a CLI with `stdin`, resolving with stdout; rejects with stderr's tail on failure. */
export function runTool(binary: string, args: string[], stdin?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary,
      args,
      { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new Error(`${binary} ${args.join(' ')}: ${error.message} ${stderr.toString().slice(-1500)}`),
          );
        else resolve(stdout);
      },
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
  });
}

/** ffmpeg reading `frames` frames of its test pattern: the arguments before the encoder's. */
export function testPatternArgs(frames: number, size = '128x96'): string[] {
  return [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=s=${size}:r=30`,
    '-frames:v',
    String(frames),
  ];
}

/** A few frames of ffmpeg's test pattern, encoded by `encoderArgs` into AVI on stdout (as live sessions get it). */
export function ffmpegAvi(encoderArgs: string[], frames: number, size = '128x96'): Promise<Buffer> {
  return runTool(ffmpegBinaries().ffmpeg, [
    ...testPatternArgs(frames, size),
    ...encoderArgs,
    ...AVI_PER_FRAME,
    'pipe:1',
  ]);
}

/** key_frame of every frame an independent decode (ffprobe) finds in `stream`. */
export async function decodedKeyFrames(stream: Buffer): Promise<boolean[]> {
  const out = await runTool(
    ffmpegBinaries().ffprobe,
    ['-v', 'error', '-show_frames', '-show_entries', 'frame=key_frame', '-of', 'csv=p=0', '-i', 'pipe:0'],
    stream,
  );
  return out
    .toString()
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => line.startsWith('1'));
}
