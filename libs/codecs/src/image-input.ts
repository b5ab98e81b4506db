import sharp, { type Metadata } from 'sharp';
import { InputTooLargeError, UnsupportedInputError } from './errors.js';

/** Formats accepted for uploaded (already encoded) frames. */
export const ACCEPTED_IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type AcceptedImageFormat = (typeof ACCEPTED_IMAGE_FORMATS)[number];

/** Default pixel limit for uploaded images: 8K UHD (7680x4320, ~33 Mpx). */
export const DEFAULT_MAX_INPUT_PIXELS = 7680 * 4320;

export interface DecodedRgbaFrame {
  data: Buffer;
  width: number;
  height: number;
  format: 'rgba';
  /** The format the upload was in. */
  source: AcceptedImageFormat;
}

export interface DecodeImageOptions {
  /** Largest width * height accepted; images declaring more are refused before decoding. */
  maxPixels?: number;
}

/**
 * Decodes an uploaded PNG, JPEG or WebP into a raw 8-bit sRGB RGBA frame (first page only, pixels as
 * stored: EXIF orientation is not applied). Refuses anything else with UnsupportedInputError, and
 * images over `maxPixels` (decompression bombs) with InputTooLargeError, from the header alone.
 */
export async function decodeImageToRgba(
  input: Buffer,
  options: DecodeImageOptions = {},
): Promise<DecodedRgbaFrame> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  let metadata: Metadata;
  try {
    metadata = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new UnsupportedInputError('the upload is not a PNG, JPEG or WebP image', { cause: error });
  }
  const format = metadata.format as string | undefined;
  if (!format || !(ACCEPTED_IMAGE_FORMATS as readonly string[]).includes(format)) {
    throw new UnsupportedInputError(`images must be PNG, JPEG or WebP, got ${format ?? 'an unknown format'}`);
  }
  const { width = 0, height = 0 } = metadata;
  if (width * height > maxPixels) {
    throw new InputTooLargeError(
      `the image is ${width}x${height} (${width * height} pixels); at most ${maxPixels} pixels are accepted`,
      maxPixels,
    );
  }
  try {
    const { data, info } = await sharp(input, { limitInputPixels: maxPixels, failOn: 'error' })
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 4 || data.length !== info.width * info.height * 4) {
      throw new UnsupportedInputError(
        `the image decoded to an unexpected layout (${info.channels} channels)`,
      );
    }
    return {
      data,
      width: info.width,
      height: info.height,
      format: 'rgba',
      source: format as AcceptedImageFormat,
    };
  } catch (error) {
    if (error instanceof UnsupportedInputError) throw error;
    const message = (error as Error).message;
    if (/pixel limit/i.test(message)) {
      throw new InputTooLargeError(`the image has more than ${maxPixels} pixels`, maxPixels, {
        cause: error,
      });
    }
    throw new UnsupportedInputError(`the ${format} image is corrupt or truncated: ${message}`, {
      cause: error,
    });
  }
}
