import { setTimeout as sleep } from 'node:timers/promises';
import type { EncodeSettings, ImageCodec } from '#contracts';
import { IMAGE_CONTENT_TYPES, type ImageEncoder, type RawLayout } from '#codecs';

/**
 * A valid 1x1 grey image per codec (made once with sharp, kept here as bytes), so that what a synthetic
 * node returns is still the content type it announces.
 */
const ONE_PIXEL_IMAGES: Readonly<Record<ImageCodec, Buffer>> = {
  jpeg: Buffer.from(
    '/9j/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAABAAEDASIAAhEBAxEB/8QAFAABAAAAAAAAAAAAAAAAAAAAAP/EABQQAQAAAAAAAAAAAAAAAAAAAAD/xAAUAQEAAAAAAAAAAAAAAAAAAAAA/8QAFBEBAAAAAAAAAAAAAAAAAAAAAP/aAAwDAQACEQMRAD8AAA//2Q==',
    'base64',
  ),
  png: Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAADElEQVQI12NoaGgAAAMEAYGa8M1PAAAAAElFTkSuQmCC',
    'base64',
  ),
  webp: Buffer.from('UklGRiQAAABXRUJQVlA4IBgAAABQAQCdASoBAAEAAsBMJaQABHQAAORAAAA=', 'base64'),
  avif: Buffer.from(
    'AAAAHGZ0eXBhdmlmAAAAAG1pZjFhdmlmbWlhZgAAANZtZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAAACJpbG9jAAAAAERAAAEAAQAAAAAA+gABAAAAAAAAABwAAAAjaWluZgAAAAAAAQAAABVpbmZlAgAAAAABAABhdjAxAAAAAA5waXRtAAAAAAABAAAAVmlwcnAAAAA4aXBjbwAAAAxhdjFDgSACAAAAABRpc3BlAAAAAAAAAAEAAAABAAAAEHBpeGkAAAAAAwgICAAAABZpcG1hAAAAAAAAAAEAAQOBAgMAAAAkbWRhdBIACgc4AAaQENBpMg8ZQmMEw88880EgAJBAzeg=',
    'base64',
  ),
};

/**
 * Test only (`--synthetic-cost-ms`): an image "encoder" that costs a fixed time per frame without using
 * the CPU (it awaits a timer) and returns a 1x1 image of its codec, whatever the frame. A cluster of
 * such nodes measures the service's dispatch (HTTP, Redis, BullMQ, events), not the machine's cores.
 */
export class SyntheticImageEncoder implements ImageEncoder {
  readonly kind = 'image' as const;
  readonly contentType: string;

  constructor(
    readonly codec: ImageCodec,
    readonly costMs: number,
  ) {
    this.contentType = IMAGE_CONTENT_TYPES[codec];
  }

  async encode(_frame: Buffer, _layout: RawLayout, _settings: EncodeSettings): Promise<Buffer> {
    await sleep(this.costMs);
    // A copy: the caller owns what it gets back.
    return Buffer.from(ONE_PIXEL_IMAGES[this.codec]);
  }
}
