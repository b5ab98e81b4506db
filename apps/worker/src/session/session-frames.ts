import { uncompress, uncompressSync } from 'lz4-napi';

/** A binary message that is not one frame of the stream's layout: the session closes with 4400. */
export class BadFrameError extends Error {}

export type FrameCompression = 'none' | 'lz4';

/** The compressed form may be a little bigger than the frame (LZ4's worst case: n + n/255 + 16). */
export function maxFrameMessageBytes(frameSize: number, compression: FrameCompression): number {
  return compression === 'lz4' ? 4 + frameSize + Math.ceil(frameSize / 255) + 16 : frameSize;
}

/**
 * Checks a binary message against the stream's frame size, before anything is decompressed: the raw
 * frame (exactly `frameSize` bytes), or with `lz4` a little-endian u32 of the raw size followed by one
 * LZ4 block (Xpra's form). Throws BadFrameError, saying what was expected.
 */
export function checkFrame(message: Buffer, frameSize: number, compression: FrameCompression): void {
  if (compression === 'none') {
    if (message.length !== frameSize) {
      throw new BadFrameError(
        `a frame of this stream is ${frameSize} bytes (its width x height x bytes per pixel), got ${message.length}`,
      );
    }
    return;
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
}

function checkDecoded(frame: Buffer, frameSize: number): Buffer {
  if (frame.length !== frameSize) {
    throw new BadFrameError(
      `the lz4 block decodes to ${frame.length} bytes, not the ${frameSize} it declares`,
    );
  }
  return frame;
}

/**
 * The frame of a checked message: a raw frame as it is (no copy); an LZ4 one decompressed on libuv's
 * thread pool, so that the event loop (every other session of the node) never waits for it and the next
 * frame decompresses while this one encodes. lz4-napi's block format is exactly the wire form (a u32
 * size prefix, then the block): the message goes to the native decoder as it came.
 */
export async function frameOf(
  message: Buffer,
  frameSize: number,
  compression: FrameCompression,
): Promise<Buffer> {
  checkFrame(message, frameSize, compression);
  if (compression === 'none') return message;
  let frame: Buffer;
  try {
    frame = await uncompress(message);
  } catch (error) {
    throw new BadFrameError(`corrupt lz4 block: ${(error as Error).message}`);
  }
  return checkDecoded(frame, frameSize);
}

/** frameOf on the calling thread (benchmarks, tests). */
export function decodeFrame(message: Buffer, frameSize: number, compression: FrameCompression): Buffer {
  checkFrame(message, frameSize, compression);
  if (compression === 'none') return message;
  let frame: Buffer;
  try {
    frame = uncompressSync(message);
  } catch (error) {
    throw new BadFrameError(`corrupt lz4 block: ${(error as Error).message}`);
  }
  return checkDecoded(frame, frameSize);
}
