import { ffmpegBinaries } from '../ffmpeg-binaries.js';
import { AviPacketParser } from './avi-packets.js';
import { ffmpegAvi, runTool, testPatternArgs } from './testing.js';

describe('AviPacketParser on real ffmpeg output', () => {
  it('splits real ffmpeg output into the encoder packets: their concatenation is the raw H.264 stream', async () => {
    const x264 = ['-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency'];
    const avi = await ffmpegAvi([...x264, '-threads', '1'], 4);
    const raw = await runTool(ffmpegBinaries().ffmpeg, [
      ...testPatternArgs(4),
      ...x264,
      '-threads',
      '1',
      '-f',
      'h264',
      'pipe:1',
    ]);
    const packets = new AviPacketParser().push(avi);
    expect(packets).toHaveLength(4);
    expect(Buffer.concat(packets).equals(raw)).toBe(true);
  });
});
