import { uncompressSync } from 'lz4-napi';

/** A binary message that is not one frame of the stream's layout: the session closes with 4400. */
export class BadFrameError extends Error {}

export type FrameCompression = 'none' | 'lz4';

/** The compressed form may be a little bigger than the frame (LZ4's worst case: n + n/255 + 16). */
export function maxFrameMessageBytes(frameSize: number, compression: FrameCompression): number {
  return compression === 'lz4' ? 4 + frameSize + Math.ceil(frameSize / 255) + 16 : frameSize;
}

/**
 * One frame from one binary message: the raw frame (exactly `frameSize` bytes, used as it is), or with
 * `lz4` a little-endian u32 of the raw size followed by one LZ4 block (Xpra's form), which is checked
 * against the frame size before anything is decompressed. lz4-napi's block format is exactly this (a
 * u32 size prefix, then the block): the message goes to the native decoder as it came.
 */
export function decodeFrame(message: Buffer, frameSize: number, compression: FrameCompression): Buffer {
  if (compression === 'none') {
    if (message.length !== frameSize) {
      throw new BadFrameError(
        `a frame of this stream is ${frameSize} bytes (its width x height x bytes per pixel), got ${message.length}`,
      );
    }
    return message;
  }
  if (message.length < 5) {
    throw new BadFrameError(
      `an lz4 frame is a u32 LE raw size and one LZ4 block; got ${message.length} bytes`,
    );
  }
  const declared = message.readUInt32LE(0);
  if (declared !== frameSize) {
    throw new BadFrameError(
      `the lz4 frame declares ${declared} raw bytes; a frame of this stream is ${frameSize} bytes`,
    );
  }
  let frame: Buffer;
  try {
    frame = uncompressSync(message);
  } catch (error) {
    throw new BadFrameError(`corrupt lz4 block: ${(error as Error).message}`);
  }
  if (frame.length !== frameSize) {
    throw new BadFrameError(
      `the lz4 block decodes to ${frame.length} bytes, not the ${frameSize} it declares`,
    );
  }
  return frame;
}
