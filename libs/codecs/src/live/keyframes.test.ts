import type { VideoCodec } from '#contracts';
import { AviPacketParser } from './avi-packets.js';
import { isKeyframePacket } from './keyframes.js';
import { decodedKeyFrames, ffmpegAvi, playableStream } from './testing.js';

/** Encoder arguments that give one packet per frame (as live sessions use) and a keyframe every 2 frames. */
const REAL: [string, VideoCodec, string[]][] = [
  [
    'libx264',
    'h264',
    ['-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency'],
  ],
  [
    'libx265 (open GOP: later keyframes are CRA)',
    'hevc',
    ['-pix_fmt', 'yuv420p', '-c:v', 'libx265', '-preset', 'ultrafast', '-tune', 'zerolatency'],
  ],
  [
    'libvpx',
    'vp8',
    ['-pix_fmt', 'yuv420p', '-c:v', 'libvpx', '-deadline', 'realtime', '-lag-in-frames', '0'],
  ],
  [
    'libvpx-vp9',
    'vp9',
    ['-pix_fmt', 'yuv420p', '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-lag-in-frames', '0'],
  ],
  [
    'libvpx-vp9 profile 1 (4:4:4)',
    'vp9',
    ['-pix_fmt', 'yuv444p', '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-lag-in-frames', '0'],
  ],
  [
    'libaom-av1',
    'av1',
    [
      '-pix_fmt',
      'yuv420p',
      '-c:v',
      'libaom-av1',
      '-usage',
      'realtime',
      '-cpu-used',
      '8',
      '-lag-in-frames',
      '0',
    ],
  ],
];

describe('isKeyframePacket on real ffmpeg output (checked against an independent decode)', () => {
  it.each(REAL)('%s', async (_name, codec, encoderArgs) => {
    const args = [...encoderArgs, '-g', '2', '-threads', '1'];
    if (codec === 'hevc') args.push('-x265-params', 'log-level=error');
    const packets = new AviPacketParser().push(await ffmpegAvi(args, 5));
    expect(packets).toHaveLength(5);
    const flags = packets.map((packet) => isKeyframePacket(codec, packet));
    expect(flags).toEqual(await decodedKeyFrames(playableStream(codec, packets, 128, 96)));
    expect(flags[0]).toBe(true);
    expect(flags.filter(Boolean).length).toBeGreaterThanOrEqual(2); // keyframes later in the stream too
    expect(flags).toContain(false);
  });
});
