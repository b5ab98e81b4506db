import { BadRequestException, UnsupportedMediaTypeException } from '@nestjs/common';
import type { Request } from 'express';
import type { InputEncoding } from '#contracts';
import { INPUT_ENCODINGS, parseContentEncoding } from '#codecs/decompress.js';

export type UploadKind = { kind: 'raw'; encoding: InputEncoding } | { kind: 'multipart' };

const CONTENT_TYPES =
  'application/octet-stream (raw frames, parameters in the query) or multipart/form-data (PNG, JPEG or WebP images in "frame" file parts, parameters as form fields)';

/**
 * What `POST /v1/jobs` got, from its Content-Type and Content-Encoding; 415 (with the supported
 * values) for anything else. Raw frames may be compressed (lz4, gzip, deflate); multipart bodies may
 * not: their images are compressed already.
 */
export function uploadKindOf(
  contentType: string | undefined,
  contentEncoding: string | undefined,
): UploadKind {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/octet-stream' && type !== 'multipart/form-data') {
    throw new UnsupportedMediaTypeException({
      message: `Content-Type must be ${CONTENT_TYPES}${type ? `, got ${type}` : ''}`,
      supported: ['application/octet-stream', 'multipart/form-data'],
    });
  }
  const encoding = parseContentEncoding(contentEncoding);
  if (type === 'multipart/form-data') {
    if (encoding === 'identity') return { kind: 'multipart' };
    throw new UnsupportedMediaTypeException({
      message: `Content-Encoding ${contentEncoding?.trim()} is not supported for multipart/form-data (its images are compressed already); send it without Content-Encoding`,
      supported: ['identity'],
    });
  }
  if (encoding === null) {
    throw new UnsupportedMediaTypeException({
      message: `Content-Encoding ${contentEncoding?.trim()} is not supported; raw frames may be sent as ${INPUT_ENCODINGS.join(', ')}`,
      supported: INPUT_ENCODINGS,
    });
  }
  return { kind: 'raw', encoding };
}

/** The request's declared body length, or null when it has none (a chunked body). */
export function contentLengthOf(request: Request): number | null {
  const header = request.headers['content-length'];
  if (header === undefined) return null;
  const value = Number(header);
  if (!Number.isSafeInteger(value) || value < 0)
    throw new BadRequestException('Content-Length is not a valid length');
  return value;
}
