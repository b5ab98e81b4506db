import sharp from 'sharp';
import zlib from 'node:zlib';
import { InputTooLargeError, UnsupportedInputError } from './errors.js';
import { decodeImageToRgba } from './image-input.js';
import { psnr } from './testing/media-check.js';
import { syntheticRgba } from './testing/synthetic-frames.js';

const WIDTH = 120;
const HEIGHT = 80;
const scene = syntheticRgba(WIDTH, HEIGHT);
const raw = { raw: { width: WIDTH, height: HEIGHT, channels: 4 as const } };

function crc32(data: Buffer): number {
  let crc = ~0;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A ~100-byte PNG whose header declares width x height RGB pixels (a decompression bomb's shape). */
function pngDeclaring(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const rows = zlib.deflateSync(Buffer.alloc((width * 3 + 1) * 4));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', rows),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decodeImageToRgba', () => {
  it('decodes PNG bit-exactly to RGBA', async () => {
    const png = await sharp(scene, raw).png().toBuffer();
    const frame = await decodeImageToRgba(png);
    expect(frame).toMatchObject({ width: WIDTH, height: HEIGHT, format: 'rgba', source: 'png' });
    expect(frame.data.equals(scene)).toBe(true);
  });

  it('decodes lossless WebP bit-exactly and JPEG closely, adding opaque alpha to JPEG', async () => {
    const webp = await sharp(scene, raw).webp({ lossless: true, exact: true }).toBuffer();
    expect((await decodeImageToRgba(webp)).data.equals(scene)).toBe(true);
    const jpeg = await sharp(scene, raw).removeAlpha().jpeg({ quality: 95 }).toBuffer();
    const frame = await decodeImageToRgba(jpeg);
    expect(frame.source).toBe('jpeg');
    const opaque = Buffer.from(scene);
    for (let i = 3; i < opaque.length; i += 4) opaque[i] = 255;
    expect(psnr(opaque, frame.data)).toBeGreaterThan(30);
  });

  it('expands greyscale and 16-bit PNGs to 8-bit RGBA', async () => {
    const grey = await sharp(scene, raw).greyscale().png().toBuffer();
    const sixteen = await sharp(scene, raw).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(sixteen).metadata()).depth).toBe('ushort');
    for (const input of [grey, sixteen]) {
      const frame = await decodeImageToRgba(input);
      expect(frame.data.length).toBe(WIDTH * HEIGHT * 4);
    }
  });

  it('refuses a small PNG declaring 20000x20000 pixels from its header', async () => {
    const bomb = pngDeclaring(20000, 20000);
    expect(bomb.length).toBeLessThan(1000);
    const error = await decodeImageToRgba(bomb, { maxPixels: 50_000_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputTooLargeError);
    expect((error as Error).message).toMatch(/20000x20000/);
  });

  it('applies a configurable pixel limit', async () => {
    const png = await sharp(scene, raw).png().toBuffer();
    await expect(decodeImageToRgba(png, { maxPixels: WIDTH * HEIGHT - 1 })).rejects.toBeInstanceOf(
      InputTooLargeError,
    );
    await expect(decodeImageToRgba(png, { maxPixels: WIDTH * HEIGHT })).resolves.toMatchObject({
      width: WIDTH,
    });
  });

  it('refuses non-images, other image formats and truncated images', async () => {
    const notImage = await decodeImageToRgba(Buffer.from('{"frames": "not pixels"}')).catch(
      (e: unknown) => e,
    );
    expect(notImage).toBeInstanceOf(UnsupportedInputError);
    const gif = await sharp(scene, raw).gif().toBuffer();
    await expect(decodeImageToRgba(gif)).rejects.toThrow(/PNG, JPEG or WebP, got gif/);
    const png = await sharp(scene, raw).png().toBuffer();
    const truncated = await decodeImageToRgba(png.subarray(0, png.length / 2)).catch((e: unknown) => e);
    expect(truncated).toBeInstanceOf(UnsupportedInputError);
  });
});
