import { UnsupportedInputError } from './errors.js';
import type { AcceptedImageFormat } from './image-input.js';

export interface ImageHeader {
  format: AcceptedImageFormat;
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * The format and size of a PNG, JPEG or WebP image from its first bytes, so that an upload can be
 * refused before the rest of it is received: null while `head` is too short to tell, an
 * UnsupportedInputError as soon as it cannot be one of those images. A JPEG's size comes after its
 * metadata segments, so its head may need to be longer (each segment is at most 64 KiB).
 */
export function readImageHeader(head: Buffer): ImageHeader | null {
  if (head.length === 0) return null;
  if (head[0] === 0x89) return readPng(head);
  if (head[0] === 0xff) return readJpeg(head);
  if (head[0] === 0x52) return readWebp(head);
  throw notAnImage(head);
}

/** Other image formats, named in the refusal so that the caller knows what it sent. */
const OTHER_FORMATS: [string, (head: Buffer) => boolean][] = [
  ['gif', (head) => head.toString('latin1', 0, 4) === 'GIF8'],
  ['tiff', (head) => ['II*\0', 'MM\0*'].includes(head.toString('latin1', 0, 4))],
  ['bmp', (head) => head.toString('latin1', 0, 2) === 'BM'],
  ['heif or avif', (head) => head.toString('latin1', 4, 8) === 'ftyp'],
];

function notAnImage(head: Buffer): UnsupportedInputError {
  const other = OTHER_FORMATS.find(([, matches]) => matches(head))?.[0];
  return new UnsupportedInputError(
    other ? `images must be PNG, JPEG or WebP, got ${other}` : 'the upload is not a PNG, JPEG or WebP image',
  );
}

function corrupt(format: string, what: string): UnsupportedInputError {
  return new UnsupportedInputError(`the ${format} image is corrupt: ${what}`);
}

/** Whether `head` agrees with `expected` as far as it goes. */
function startsLike(head: Buffer, expected: Buffer): boolean {
  const length = Math.min(head.length, expected.length);
  return head.subarray(0, length).equals(expected.subarray(0, length));
}

function sized(format: AcceptedImageFormat, width: number, height: number): ImageHeader {
  if (width === 0 || height === 0) throw corrupt(format, `its header declares ${width}x${height} pixels`);
  return { format, width, height };
}

/** Signature, then the IHDR chunk first: length 13, width and height as big-endian u32. */
function readPng(head: Buffer): ImageHeader | null {
  if (!startsLike(head, PNG_SIGNATURE)) throw notAnImage(head);
  if (head.length < 24) return null;
  if (head.readUInt32BE(8) !== 13 || head.toString('latin1', 12, 16) !== 'IHDR') {
    throw corrupt('png', 'it does not start with an IHDR chunk');
  }
  return sized('png', head.readUInt32BE(16), head.readUInt32BE(20));
}

/** Markers without a length field. */
function standalone(marker: number): boolean {
  return marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8);
}

/** SOF0-SOF15, less DHT (C4), JPG (C8) and DAC (CC), which share the range. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** SOI, then segments (marker, big-endian length) up to a start of frame: precision, height, width. */
function readJpeg(head: Buffer): ImageHeader | null {
  if (head.length < 2) return null;
  if (head[1] !== 0xd8) throw notAnImage(head);
  let offset = 2;
  for (;;) {
    if (offset >= head.length) return null;
    if (head[offset] !== 0xff) throw corrupt('jpeg', `no marker at byte ${offset}`);
    // Any number of 0xff fill bytes may come before a marker.
    while (offset < head.length && head[offset] === 0xff) offset++;
    if (offset >= head.length) return null;
    const marker = head[offset++];
    if (standalone(marker)) continue;
    if (marker === 0xd9 || marker === 0xda) throw corrupt('jpeg', 'its image data starts before its size');
    if (offset + 2 > head.length) return null;
    const length = head.readUInt16BE(offset);
    if (length < 2) throw corrupt('jpeg', `a segment at byte ${offset} is ${length} bytes long`);
    if (isStartOfFrame(marker)) {
      if (offset + 7 > head.length) return null;
      return sized('jpeg', head.readUInt16BE(offset + 5), head.readUInt16BE(offset + 3));
    }
    offset += length;
  }
}

/** RIFF....WEBP, then the first chunk: VP8 (lossy), VP8L (lossless) or VP8X (extended: the canvas). */
function readWebp(head: Buffer): ImageHeader | null {
  if (!startsLike(head, Buffer.from('RIFF'))) throw notAnImage(head);
  if (head.length < 12) return null;
  if (head.toString('latin1', 8, 12) !== 'WEBP') throw notAnImage(head);
  if (head.length < 30) return null;
  const chunk = head.toString('latin1', 12, 16);
  if (chunk === 'VP8 ') {
    if (head[23] !== 0x9d || head[24] !== 0x01 || head[25] !== 0x2a) {
      throw corrupt('webp', 'its VP8 frame has no start code');
    }
    return sized('webp', head.readUInt16LE(26) & 0x3fff, head.readUInt16LE(28) & 0x3fff);
  }
  if (chunk === 'VP8L') {
    if (head[20] !== 0x2f) throw corrupt('webp', 'its VP8L data has no signature');
    const bits = head.readUInt32LE(21);
    return sized('webp', (bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
  }
  if (chunk === 'VP8X') return sized('webp', head.readUIntLE(24, 3) + 1, head.readUIntLE(27, 3) + 1);
  throw corrupt('webp', `its first chunk is "${chunk}", not VP8, VP8L or VP8X`);
}
