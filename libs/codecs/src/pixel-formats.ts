import sharp, { type Sharp } from 'sharp';
import { PIXEL_FORMATS, type PixelFormat } from '#contracts';
import type { RawLayout } from './encoder.js';
import { UnsupportedInputError } from './errors.js';

/** The largest frame edge accepted (libvips and every video encoder here handle at least this). */
export const MAX_FRAME_EDGE = 16384;

interface PixelFormatTraits {
  bytesPerPixel: 3 | 4;
  /** Blue comes first in memory. */
  blueFirst: boolean;
  /** The 4th byte is alpha (true) or padding to ignore (false); false for 3-byte formats. */
  alpha: boolean;
  /** ffmpeg's name for this layout as rawvideo input. */
  ffmpegPixFmt: string;
}

export const PIXEL_FORMAT_TRAITS: Readonly<Record<PixelFormat, PixelFormatTraits>> = {
  rgba: { bytesPerPixel: 4, blueFirst: false, alpha: true, ffmpegPixFmt: 'rgba' },
  bgra: { bytesPerPixel: 4, blueFirst: true, alpha: true, ffmpegPixFmt: 'bgra' },
  rgbx: { bytesPerPixel: 4, blueFirst: false, alpha: false, ffmpegPixFmt: 'rgb0' },
  bgrx: { bytesPerPixel: 4, blueFirst: true, alpha: false, ffmpegPixFmt: 'bgr0' },
  rgb: { bytesPerPixel: 3, blueFirst: false, alpha: false, ffmpegPixFmt: 'rgb24' },
  bgr: { bytesPerPixel: 3, blueFirst: true, alpha: false, ffmpegPixFmt: 'bgr24' },
};

export function ffmpegRawPixFmt(format: PixelFormat): string {
  return PIXEL_FORMAT_TRAITS[format].ffmpegPixFmt;
}

export function frameBytes(layout: RawLayout): number {
  return layout.width * layout.height * PIXEL_FORMATS[layout.format];
}

/** Refuses layouts no encoder can take: non-integer or non-positive sizes, unknown formats. */
export function assertValidLayout(layout: RawLayout): void {
  const { width, height, format } = layout;
  if (!Object.prototype.hasOwnProperty.call(PIXEL_FORMAT_TRAITS, format)) {
    throw new UnsupportedInputError(
      `unknown pixel format '${String(format)}'; use one of ${Object.keys(PIXEL_FORMAT_TRAITS).join(', ')}`,
    );
  }
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_FRAME_EDGE) {
      throw new UnsupportedInputError(`${name} must be an integer from 1 to ${MAX_FRAME_EDGE}, got ${value}`);
    }
  }
}

export function assertFrameLength(frame: Buffer, layout: RawLayout): void {
  const expected = frameBytes(layout);
  if (frame.length !== expected) {
    throw new UnsupportedInputError(
      `a ${layout.width}x${layout.height} ${layout.format} frame is ${expected} bytes, got ${frame.length}`,
    );
  }
}

/** Swaps red and blue of the colour bands; sharp applies a 3x3 recomb to colour bands only, alpha stays. */
const SWAP_RED_BLUE: [[number, number, number], [number, number, number], [number, number, number]] = [
  [0, 0, 1],
  [0, 1, 0],
  [1, 0, 0],
];

/**
 * Wraps a raw frame in a sharp pipeline that yields sRGB in RGB(A) order, without copying it in JS:
 * padding bytes are dropped, and so is alpha unless `keepAlpha`; BGR orders are swapped inside
 * libvips (measured at 1080p: about as fast as a JS swap loop, and off the event loop).
 */
export function rawFrameToSharp(frame: Buffer, layout: RawLayout, options: { keepAlpha: boolean }): Sharp {
  assertValidLayout(layout);
  assertFrameLength(frame, layout);
  const traits = PIXEL_FORMAT_TRAITS[layout.format];
  let image = sharp(frame, {
    raw: { width: layout.width, height: layout.height, channels: traits.bytesPerPixel },
    limitInputPixels: false,
  });
  if (traits.bytesPerPixel === 4 && !(traits.alpha && options.keepAlpha)) {
    image = image.removeAlpha();
  }
  if (traits.blueFirst) {
    image = image.recomb(SWAP_RED_BLUE);
  }
  return image;
}
