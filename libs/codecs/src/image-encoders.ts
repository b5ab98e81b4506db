import type { EncodeSettings, ImageCodec } from '#contracts';
import type { ImageEncoder, RawLayout } from './encoder.js';
import { rawFrameToSharp } from './pixel-formats.js';
import { avifOptions, jpegOptions, normalizeSettings, pngOptions, webpOptions } from './settings.js';

export const IMAGE_CONTENT_TYPES: Readonly<Record<ImageCodec, string>> = {
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  png: 'image/png',
  avif: 'image/avif',
};

/** Codecs that can store an alpha channel; for the others alpha is dropped. */
const KEEPS_ALPHA: Readonly<Record<ImageCodec, boolean>> = { jpeg: false, webp: true, png: true, avif: true };

/** One image per raw frame through sharp (libvips), off the event loop on libuv's pool. */
export class SharpImageEncoder implements ImageEncoder {
  readonly kind = 'image' as const;
  readonly contentType: string;

  constructor(readonly codec: ImageCodec) {
    this.contentType = IMAGE_CONTENT_TYPES[codec];
  }

  async encode(frame: Buffer, layout: RawLayout, settings: EncodeSettings): Promise<Buffer> {
    const normalized = normalizeSettings(settings);
    const image = rawFrameToSharp(frame, layout, { keepAlpha: KEEPS_ALPHA[this.codec] });
    switch (this.codec) {
      case 'jpeg':
        return image.jpeg(jpegOptions(normalized)).toBuffer();
      case 'webp':
        return image.webp(webpOptions(normalized)).toBuffer();
      case 'png':
        return image.png(pngOptions(normalized)).toBuffer();
      case 'avif':
        return image.avif(avifOptions(normalized)).toBuffer();
    }
  }
}
