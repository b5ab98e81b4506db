import sharp from 'sharp';
import { IMAGE_CODECS } from '#contracts';
import { loadCapabilities } from './capabilities.js';
import { parseNodeArgs } from './node-config.js';
import { SyntheticImageEncoder } from './synthetic-encoder.js';

const layout = { width: 16, height: 16, format: 'bgra' as const };
const settings = { quality: 80, speed: 50, fps: 30 };
const frame = Buffer.alloc(16 * 16 * 4, 0x80);
const FORMATS = { jpeg: 'jpeg', png: 'png', webp: 'webp', avif: 'heif' } as const;

describe('SyntheticImageEncoder', () => {
  it('takes about its cost per frame', async () => {
    const encoder = new SyntheticImageEncoder('jpeg', 60);
    const started = performance.now();
    await encoder.encode(frame, layout, settings);
    const elapsed = performance.now() - started;
    // Timers may fire a hair early (millisecond rounding); late is only the event loop being busy.
    expect(elapsed).toBeGreaterThanOrEqual(58);
    expect(elapsed).toBeLessThan(60 + 1000);
  });

  it('waits without using the CPU: many frames at once take one cost, not many', async () => {
    const encoder = new SyntheticImageEncoder('png', 200);
    const started = performance.now();
    await Promise.all(Array.from({ length: 50 }, () => encoder.encode(frame, layout, settings)));
    expect(performance.now() - started).toBeLessThan(200 * 5);
  });

  it.each(IMAGE_CODECS)('returns a valid 1x1 %s under its own content type', async (codec) => {
    const encoder = new SyntheticImageEncoder(codec, 1);
    expect(encoder.kind).toBe('image');
    expect(encoder.codec).toBe(codec);
    expect(encoder.contentType).toBe(`image/${codec}`);
    const output = await encoder.encode(frame, layout, settings);
    const metadata = await sharp(output).metadata();
    expect({ format: metadata.format, width: metadata.width, height: metadata.height }).toEqual({
      format: FORMATS[codec],
      width: 1,
      height: 1,
    });
  });

  it('rejects nothing: any frame, layout or settings gives an image', async () => {
    const encoder = new SyntheticImageEncoder('webp', 1);
    await expect(encoder.encode(Buffer.alloc(0), layout, settings)).resolves.toBeInstanceOf(Buffer);
    await expect(
      encoder.encode(
        Buffer.alloc(3),
        { width: 7680, height: 4320, format: 'rgb' },
        { quality: 1, speed: 0, fps: 1 },
      ),
    ).resolves.toBeInstanceOf(Buffer);
  });

  it('hands out a copy: a caller that writes into its output changes nothing for the next', async () => {
    const encoder = new SyntheticImageEncoder('jpeg', 1);
    const first = await encoder.encode(frame, layout, settings);
    const pristine = Buffer.from(first);
    first.fill(0);
    expect((await encoder.encode(frame, layout, settings)).equals(pristine)).toBe(true);
  });
});

describe('loadCapabilities with --synthetic-cost-ms', () => {
  const configOf = (args: string[]) =>
    parseNodeArgs(['--concurrency', '2', ...args], {}, { cores: 2, pid: 1, host: 'test' });

  it('offers the image codecs asked for as synthetic encoders, without probing them', async () => {
    const capabilities = await loadCapabilities(
      configOf(['--synthetic-cost-ms', '5', '--codecs', 'jpeg,png']),
    );
    expect(capabilities.codecs).toEqual(['jpeg', 'png']);
    expect(capabilities.hardware).toEqual([]);
    const jpeg = capabilities.encoderFor('jpeg');
    expect(jpeg).toBeInstanceOf(SyntheticImageEncoder);
    expect((jpeg as SyntheticImageEncoder).costMs).toBe(5);
    expect(capabilities.encoderFor('webp')).toBeUndefined();
    expect(capabilities.encoderFor('h264')).toBeUndefined();
  });

  it('a software-gpu test node offers them to the gpu pool too', async () => {
    const capabilities = await loadCapabilities(
      configOf(['--synthetic-cost-ms', '5', '--codecs', 'webp', '--pool', 'gpu', '--software-gpu']),
    );
    expect(capabilities.gpuCodecs).toEqual(['webp']);
  });
});
