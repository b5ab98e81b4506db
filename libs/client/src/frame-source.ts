import { open, stat } from 'node:fs/promises';
import { frameByteLength, type PixelFormat } from '#contracts';
import { rgbaToPixelFormat, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import type { FrameSourceSpec } from './cli-args.js';

/** A batch of raw frames, concatenated. */
export interface FrameBatch {
  body: Buffer;
  frames: number;
  /** Index of the batch's first frame in the source. */
  firstFrame: number;
}

/** Raw frames to send: their layout, their count and the frames in batches. */
export interface FrameSource {
  width: number;
  height: number;
  format: PixelFormat;
  frames: number;
  batches(batchFrames: number): AsyncGenerator<FrameBatch>;
}

function toFormat(rgba: Buffer, format: PixelFormat): Buffer {
  return format === 'rgba' ? rgba : rgbaToPixelFormat(rgba, format);
}

/** A file of raw frames (width * height * bytes-per-pixel each), read a batch at a time. */
export async function rawFileSource(
  file: string,
  width: number,
  height: number,
  format: PixelFormat,
): Promise<FrameSource> {
  const frameBytes = frameByteLength(width, height, format);
  const { size } = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new Error(
      `cannot read --input ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`,
    );
  });
  if (size === 0 || size % frameBytes !== 0) {
    throw new Error(
      `--input ${file} is ${size} bytes, not a whole number of ${width}x${height} ${format} frames ` +
        `(${frameBytes} bytes each): check --width, --height and --format`,
    );
  }
  const frames = size / frameBytes;
  return {
    width,
    height,
    format,
    frames,
    async *batches(batchFrames) {
      const handle = await open(file, 'r');
      try {
        for (const { first, count } of batchRanges(frames, batchFrames)) {
          const body = Buffer.allocUnsafe(count * frameBytes);
          let read = 0;
          while (read < body.length) {
            const { bytesRead } = await handle.read(
              body,
              read,
              body.length - read,
              first * frameBytes + read,
            );
            if (bytesRead === 0) throw new Error(`--input ${file} got shorter while it was read`);
            read += bytesRead;
          }
          yield { body, frames: count, firstFrame: first };
        }
      } finally {
        await handle.close();
      }
    },
  };
}

/** The moving desktop-like test pattern of the tests (syntheticRgba), converted to `format`. */
export function syntheticSource(
  frames: number,
  width: number,
  height: number,
  format: PixelFormat,
): FrameSource {
  return {
    width,
    height,
    format,
    frames,
    async *batches(batchFrames) {
      for (const { first, count } of batchRanges(frames, batchFrames)) {
        const parts = Array.from({ length: count }, (_, i) =>
          toFormat(syntheticRgba(width, height, first + i), format),
        );
        yield { body: count === 1 ? parts[0] : Buffer.concat(parts), frames: count, firstFrame: first };
      }
    },
  };
}

/** Images (anything sharp reads), decoded to RGBA and converted to `format`; all must be the same size. */
export async function imageSource(files: string[], format: PixelFormat): Promise<FrameSource> {
  const { default: sharp } = await import('sharp');
  const decode = async (file: string) => {
    try {
      const { data, info } = await sharp(file).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height };
    } catch (error) {
      throw new Error(`cannot decode image ${file}: ${(error as Error).message}`);
    }
  };
  const first = await decode(files[0]);
  const { width, height } = first;
  return {
    width,
    height,
    format,
    frames: files.length,
    async *batches(batchFrames) {
      for (let start = 0; start < files.length; start += batchFrames) {
        const parts: Buffer[] = [];
        for (let i = start; i < Math.min(files.length, start + batchFrames); i++) {
          const image = i === 0 ? first : await decode(files[i]);
          if (image.width !== width || image.height !== height) {
            throw new Error(
              `image ${files[i]} is ${image.width}x${image.height}, not ${width}x${height} like ${files[0]}: ` +
                'all images of a stream must have the same size',
            );
          }
          parts.push(toFormat(image.data, format));
        }
        yield {
          body: parts.length === 1 ? parts[0] : Buffer.concat(parts),
          frames: parts.length,
          firstFrame: start,
        };
      }
    },
  };
}

/** The source a command line asked for. */
export function openFrameSource(
  spec: FrameSourceSpec,
  layout: { width?: number; height?: number; format: PixelFormat },
): Promise<FrameSource> {
  switch (spec.kind) {
    case 'input':
      return rawFileSource(spec.file, layout.width as number, layout.height as number, layout.format);
    case 'images':
      return imageSource(spec.files, layout.format);
    case 'synthetic':
      return Promise.resolve(
        syntheticSource(spec.frames, layout.width ?? 640, layout.height ?? 360, layout.format),
      );
  }
}

/** Frames 0..frames-1 cut into batches of `batchFrames` (the last one may be shorter). */
function* batchRanges(frames: number, batchFrames: number): Generator<{ first: number; count: number }> {
  for (let first = 0; first < frames; first += batchFrames)
    yield { first, count: Math.min(batchFrames, frames - first) };
}
