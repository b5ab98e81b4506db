export const IMAGE_CODECS = ['jpeg', 'webp', 'png', 'avif'] as const;
export const VIDEO_CODECS = ['h264', 'hevc', 'vp8', 'vp9', 'av1'] as const;
export const CODECS = [...IMAGE_CODECS, ...VIDEO_CODECS] as const;

export type ImageCodec = (typeof IMAGE_CODECS)[number];
export type VideoCodec = (typeof VIDEO_CODECS)[number];
export type Codec = ImageCodec | VideoCodec;

export function isCodec(value: string): value is Codec {
  return (CODECS as readonly string[]).includes(value);
}

export function isVideoCodec(codec: Codec): codec is VideoCodec {
  return (VIDEO_CODECS as readonly string[]).includes(codec);
}

/** Bytes per pixel of each raw layout a screen grabber produces ("x" = padding byte, ignored). */
export const PIXEL_FORMATS = { rgba: 4, bgra: 4, rgbx: 4, bgrx: 4, rgb: 3, bgr: 3 } as const;
export type PixelFormat = keyof typeof PIXEL_FORMATS;

export function isPixelFormat(value: string): value is PixelFormat {
  return Object.prototype.hasOwnProperty.call(PIXEL_FORMATS, value);
}

export function frameByteLength(width: number, height: number, format: PixelFormat): number {
  return width * height * PIXEL_FORMATS[format];
}

export const POOLS = ['auto', 'cpu', 'gpu'] as const;
export type PoolPreference = (typeof POOLS)[number];
export type Pool = Exclude<PoolPreference, 'auto'>;

/**
 * What an odd width or height becomes where a codec's 4:2:0 cannot store it (H.264 and HEVC, whose
 * cropping counts in pairs of luma samples):
 * - exact: the exact size, encoded 4:4:4 (High 4:4:4 / Main 4:4:4: few browsers or hardware decoders play it);
 * - pad: 4:2:0 at the next even size, the extra column/row repeating the last one (widely playable;
 *   the receiver crops it back to width x height).
 * VP8, VP9 and AV1 keep odd sizes exact in 4:2:0 and ignore it.
 */
export const ODD_SIZE_POLICIES = ['exact', 'pad'] as const;
export type OddSizePolicy = (typeof ODD_SIZE_POLICIES)[number];

/** Codecs whose 4:2:0 cannot signal an odd size, so `oddSize` applies to them. */
export const ODD_SIZE_PADDED_CODECS: readonly Codec[] = ['h264', 'hevc'];

/** The size of the pictures in the output: the input's, or the next even size when `oddSize` pads. */
export function codedSize(
  codec: Codec,
  width: number,
  height: number,
  oddSize: OddSizePolicy = 'exact',
): { width: number; height: number } {
  if (oddSize !== 'pad' || !ODD_SIZE_PADDED_CODECS.includes(codec)) return { width, height };
  return { width: width + (width % 2), height: height + (height % 2) };
}
