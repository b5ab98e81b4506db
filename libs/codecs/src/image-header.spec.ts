import sharp from 'sharp';
import { UnsupportedInputError } from './errors.js';
import { readImageHeader } from './image-header.js';
import { syntheticRgba } from './testing/synthetic-frames.js';

const WIDTH = 123;
const HEIGHT = 45;
const raw = { raw: { width: WIDTH, height: HEIGHT, channels: 4 as const } };

/** The shortest head from which the size is known, and that every shorter head asks for more. */
function shortestHead(image: Buffer): number {
  for (let length = 0; length <= image.length; length++) {
    if (readImageHeader(image.subarray(0, length))) return length;
  }
  throw new Error('no header found');
}

describe('readImageHeader', () => {
  const scene = syntheticRgba(WIDTH, HEIGHT);
  const images: [string, () => Promise<Buffer>][] = [
    ['png', () => sharp(scene, raw).png().toBuffer()],
    ['png 16-bit', () => sharp(scene, raw).toColourspace('rgb16').png().toBuffer()],
    ['jpeg', () => sharp(scene, raw).jpeg().toBuffer()],
    ['progressive jpeg', () => sharp(scene, raw).jpeg({ progressive: true }).toBuffer()],
    // EXIF and an ICC profile: segments to skip before the frame header.
    ['jpeg with metadata', () => sharp(scene, raw).withMetadata({ icc: 'p3' }).jpeg().toBuffer()],
    ['webp lossy', () => sharp(scene, raw).webp().toBuffer()],
    ['webp lossless', () => sharp(scene, raw).webp({ lossless: true }).toBuffer()],
    ['webp with alpha (VP8X)', () => sharp(scene, raw).ensureAlpha(0.5).webp().toBuffer()],
  ];

  it.each(images)('reads the size of a %s from its first bytes, as sharp sees it', async (_, make) => {
    const image = await make();
    const metadata = await sharp(image).metadata();
    const length = shortestHead(image);
    expect(readImageHeader(image.subarray(0, length))).toEqual({
      format: metadata.format,
      width: metadata.width,
      height: metadata.height,
    });
    expect(length).toBeLessThan(image.length);
  });

  it('skips JPEG metadata segments of any size before the frame header', async () => {
    const jpeg = await sharp(scene, raw).jpeg().toBuffer();
    const comment = Buffer.concat([Buffer.from([0xff, 0xfe, 0xff, 0xff]), Buffer.alloc(0xfffd, 0x20)]);
    const padded = Buffer.concat([jpeg.subarray(0, 2), comment, comment, jpeg.subarray(2)]);
    expect(readImageHeader(padded.subarray(0, 2 * comment.length))).toBeNull();
    expect(readImageHeader(padded)).toMatchObject({ format: 'jpeg', width: WIDTH, height: HEIGHT });
  });

  it('refuses anything else from its first bytes', () => {
    for (const head of ['GIF89a', '{"frames"', 'BM6', '\x89PNX', 'RIFF\0\0\0\0WAVEfmt ']) {
      expect(() => readImageHeader(Buffer.from(head, 'latin1'))).toThrow(UnsupportedInputError);
    }
    expect(() => readImageHeader(Buffer.from('GIF89a', 'latin1'))).toThrow(/PNG, JPEG or WebP, got gif/);
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(readImageHeader(png)).toBeNull();
    // A PNG signature followed by filler instead of an IHDR chunk.
    expect(() => readImageHeader(Buffer.concat([png, Buffer.alloc(64, 0x41)]))).toThrow(/IHDR/);
    expect(() => readImageHeader(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 8]))).toThrow(/corrupt/);
  });

  it('refuses a header that declares no pixels', () => {
    const ihdr = Buffer.from('0000000d49484452000000000000002d', 'hex');
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ihdr]);
    expect(() => readImageHeader(png)).toThrow(/0x45 pixels/);
  });
});
