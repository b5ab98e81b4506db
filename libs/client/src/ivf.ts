/**
 * IVF, the minimal container of libvpx/libaom: a 32-byte file header, then per frame a 12-byte header
 * (size, pts) and the frame's bytes. Live VP8/VP9/AV1 packets come without a container; written after
 * these headers they make a file that ffmpeg, ffplay and browsers' tooling play as is.
 */

export type IvfCodec = 'vp8' | 'vp9' | 'av1';

export const IVF_FILE_HEADER_BYTES = 32;
export const IVF_FRAME_HEADER_BYTES = 12;

const FOURCC: Readonly<Record<IvfCodec, string>> = { vp8: 'VP80', vp9: 'VP90', av1: 'AV01' };

/** Time base ticks per second: pts counts frames, one tick = 1000 / round(fps * 1000) s. */
export function ivfTimebase(fps: number): { rate: number; scale: number } {
  if (!Number.isFinite(fps) || fps <= 0) throw new RangeError(`fps must be above 0, got ${fps}`);
  const rate = Math.round(fps * 1000);
  if (rate < 1 || rate > 0xffffffff) throw new RangeError(`fps ${fps} does not fit an IVF time base`);
  return { rate, scale: 1000 };
}

/**
 * The 32-byte IVF file header. `frameCount` may stay 0 for a live recording (players read to the end);
 * pts in the frame headers then count frames at `fps`.
 */
export function ivfFileHeader(
  codec: IvfCodec,
  width: number,
  height: number,
  fps: number,
  frameCount = 0,
): Buffer {
  const fourcc = FOURCC[codec];
  if (!fourcc) throw new RangeError(`IVF carries vp8, vp9 or av1, not ${String(codec)}`);
  checkUint('width', width, 0xffff, 1);
  checkUint('height', height, 0xffff, 1);
  checkUint('frameCount', frameCount, 0xffffffff, 0);
  const { rate, scale } = ivfTimebase(fps);
  const header = Buffer.alloc(IVF_FILE_HEADER_BYTES);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(0, 4); // version
  header.writeUInt16LE(IVF_FILE_HEADER_BYTES, 6);
  header.write(fourcc, 8, 'latin1');
  header.writeUInt16LE(width, 12);
  header.writeUInt16LE(height, 14);
  header.writeUInt32LE(rate, 16); // time base denominator
  header.writeUInt32LE(scale, 20); // time base numerator
  header.writeUInt32LE(frameCount, 24);
  return header;
}

/** The 12-byte header before each frame: its size and its pts (in frames, see ivfFileHeader). */
export function ivfFrameHeader(size: number, pts: number): Buffer {
  checkUint('size', size, 0xffffffff, 0);
  checkUint('pts', pts, Number.MAX_SAFE_INTEGER, 0);
  const header = Buffer.alloc(IVF_FRAME_HEADER_BYTES);
  header.writeUInt32LE(size, 0);
  header.writeBigUInt64LE(BigInt(pts), 4);
  return header;
}

function checkUint(name: string, value: number, max: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
}
