import { BadRequestException, PayloadTooLargeException } from '@nestjs/common';
import { readImageHeader, type ImageHeader } from '#codecs/image-header.js';
import { isCodecError } from '#codecs/errors.js';
import { httpErrorFromCodec } from '../common/http-errors.js';
import { imageBytesBound } from '../config/api-config.js';
import type { Reservation } from './upload-limits.js';

/** An image must say what it is and how big within this many bytes (JPEG metadata comes first). */
export const IMAGE_HEADER_MAX_BYTES = 1024 * 1024;

export interface ImagePartLimits {
  maxPixels: number;
  maxBodyBytes: number;
}

/**
 * Judges an uploaded image as its bytes arrive instead of once it is whole: its type and size from
 * its header (400 for what is not a PNG, JPEG or WebP, 413 over the pixel limit), then no more bytes
 * than an image of that size can take (413). What it holds, its bytes so far and the pixels it will
 * decode to (reserved as soon as the header tells), is kept in `memory`, the API's budget for uploaded
 * images (503 when full). Call it with each piece and the part's length so far.
 */
export function imagePartCheck(
  label: string,
  limits: ImagePartLimits,
  memory: Reservation,
): (piece: Buffer, received: number) => void {
  let head: Buffer | null = Buffer.alloc(0);
  let header: ImageHeader | null = null;
  let maxBytes = IMAGE_HEADER_MAX_BYTES;
  let decodedBytes = 0;
  return (piece, received) => {
    if (head) {
      head = Buffer.concat([head, piece]);
      try {
        header = readImageHeader(head);
      } catch (error) {
        throw isCodecError(error) ? httpErrorFromCodec(error, label) : error;
      }
      if (header) {
        head = null;
        const pixels = header.width * header.height;
        if (pixels > limits.maxPixels) {
          throw new PayloadTooLargeException(
            `${label}: the image is ${header.width}x${header.height} (${pixels} pixels); at most ${limits.maxPixels} pixels are accepted`,
          );
        }
        maxBytes = imageBytesBound(pixels, limits.maxBodyBytes);
        decodedBytes = pixels * 4;
      } else if (received > IMAGE_HEADER_MAX_BYTES) {
        throw new BadRequestException(
          `${label}: no image size in its first ${IMAGE_HEADER_MAX_BYTES} bytes; send PNG, JPEG or WebP images with their header first`,
        );
      }
    }
    if (header && received > maxBytes) {
      throw new PayloadTooLargeException(
        `${label} is larger than ${maxBytes} bytes, more than a ${header.width}x${header.height} image can take`,
      );
    }
    memory.resize(received + decodedBytes);
  };
}
