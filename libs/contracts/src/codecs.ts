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
