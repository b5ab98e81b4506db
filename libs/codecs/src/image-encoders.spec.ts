import { IMAGE_CODECS, PIXEL_FORMATS, type EncodeSettings, type PixelFormat } from '#contracts';
import type { RawLayout } from './encoder.js';
import { UnsupportedInputError } from './errors.js';
import { createEncoder } from './registry.js';
import { decodeImage, psnr } from './testing/media-check.js';
import { rgbaToPixelFormat, rgbaToRgb, syntheticRgba } from './testing/synthetic-frames.js';

const FORMATS = Object.keys(PIXEL_FORMATS) as PixelFormat[];
const WIDTH = 96;
const HEIGHT = 64;
const scene = syntheticRgba(WIDTH, HEIGHT);
const sceneRgb = rgbaToRgb(scene);
const settings = (quality: number, speed = 80): EncodeSettings => ({ quality, speed, fps: 30 });
const hasAlpha = (format: PixelFormat) => format === 'rgba' || format === 'bgra';

describe('sharp image encoders', () => {
  describe.each(IMAGE_CODECS.filter((codec) => codec !== 'png'))('%s (lossy) at quality 90', (codec) => {
    const encoder = createEncoder(codec);

    it.each(FORMATS)('decodes to the same picture from %s (PSNR >= 30 dB)', async (format) => {
      const layout: RawLayout = { width: WIDTH, height: HEIGHT, format };
      const encoded = await encoder.encode(rgbaToPixelFormat(scene, format), layout, settings(90));
      const decoded = await decodeImage(encoded, 3);
      expect(decoded.format).toBe(codec === 'avif' ? 'heif' : codec);
      expect([decoded.width, decoded.height]).toEqual([WIDTH, HEIGHT]);
      expect(psnr(sceneRgb, decoded.data)).toBeGreaterThanOrEqual(30);
    });
  });

  describe('alpha', () => {
    it.each(['webp', 'png', 'avif'] as const)(
      '%s keeps alpha of rgba/bgra and has none for x formats',
      async (codec) => {
        const encoder = createEncoder(codec);
        for (const format of FORMATS) {
          const encoded = await encoder.encode(
            rgbaToPixelFormat(scene, format),
            { width: WIDTH, height: HEIGHT, format },
            settings(90),
          );
          const decoded = await decodeImage(encoded, 4);
          const alphas = new Set<number>();
          for (let i = 3; i < decoded.data.length; i += 4) alphas.add(decoded.data[i]);
          if (hasAlpha(format)) expect(alphas.size).toBeGreaterThan(1);
          else expect([...alphas]).toEqual([255]);
        }
      },
    );

    it('jpeg drops alpha (and padding) without touching colour', async () => {
      const encoder = createEncoder('jpeg');
      const a = await encoder.encode(
        rgbaToPixelFormat(scene, 'rgba'),
        { width: WIDTH, height: HEIGHT, format: 'rgba' },
        settings(90),
      );
      const b = await encoder.encode(
        rgbaToPixelFormat(scene, 'rgb'),
        { width: WIDTH, height: HEIGHT, format: 'rgb' },
        settings(90),
      );
      expect(a.equals(b)).toBe(true);
    });
  });

  describe('lossless', () => {
    it.each(FORMATS)('png from %s is bit-exact', async (format) => {
      const encoded = await createEncoder('png').encode(
        rgbaToPixelFormat(scene, format),
        { width: WIDTH, height: HEIGHT, format },
        settings(50),
      );
      if (hasAlpha(format)) expect((await decodeImage(encoded, 4)).data.equals(scene)).toBe(true);
      else expect((await decodeImage(encoded, 3)).data.equals(sceneRgb)).toBe(true);
    });

    it.each(FORMATS)('webp at quality 100 from %s is bit-exact', async (format) => {
      const encoded = await createEncoder('webp').encode(
        rgbaToPixelFormat(scene, format),
        { width: WIDTH, height: HEIGHT, format },
        settings(100),
      );
      if (hasAlpha(format)) expect((await decodeImage(encoded, 4)).data.equals(scene)).toBe(true);
      else expect((await decodeImage(encoded, 3)).data.equals(sceneRgb)).toBe(true);
    });

    it('a BGRA and an RGBA picture of the same scene give identical PNG bytes (and so do BGRX/RGBX, BGR/RGB)', async () => {
      const png = createEncoder('png');
      const encode = (format: PixelFormat) =>
        png.encode(
          rgbaToPixelFormat(scene, format),
          { width: WIDTH, height: HEIGHT, format },
          settings(80, 50),
        );
      expect((await encode('bgra')).equals(await encode('rgba'))).toBe(true);
      expect((await encode('bgrx')).equals(await encode('rgbx'))).toBe(true);
      expect((await encode('bgr')).equals(await encode('rgb'))).toBe(true);
      expect((await encode('rgbx')).equals(await encode('rgb'))).toBe(true);
      // and the channel order really matters: a BGRA buffer declared as RGBA is a different picture
      const swapped = await png.encode(
        rgbaToPixelFormat(scene, 'bgra'),
        { width: WIDTH, height: HEIGHT, format: 'rgba' },
        settings(80, 50),
      );
      expect(swapped.equals(await encode('rgba'))).toBe(false);
    });
  });

  describe('odd sizes', () => {
    it.each(IMAGE_CODECS)('%s encodes 321x181 at its exact size', async (codec) => {
      const rgba = syntheticRgba(321, 181);
      const encoded = await createEncoder(codec).encode(
        rgbaToPixelFormat(rgba, 'bgrx'),
        { width: 321, height: 181, format: 'bgrx' },
        settings(90, 100),
      );
      const decoded = await decodeImage(encoded, 3);
      expect([decoded.width, decoded.height]).toEqual([321, 181]);
      expect(psnr(rgbaToRgb(rgba), decoded.data)).toBeGreaterThanOrEqual(codec === 'png' ? Infinity : 30);
    });
  });

  describe('bad input', () => {
    it('refuses a frame whose length does not match the layout', async () => {
      await expect(
        createEncoder('jpeg').encode(Buffer.alloc(10), { width: 4, height: 4, format: 'rgba' }, settings(80)),
      ).rejects.toBeInstanceOf(UnsupportedInputError);
    });

    it('refuses quality outside 0-100', async () => {
      await expect(
        createEncoder('webp').encode(
          Buffer.alloc(64),
          { width: 4, height: 4, format: 'rgba' },
          settings(101),
        ),
      ).rejects.toThrow(/quality must be/);
    });
  });
});
