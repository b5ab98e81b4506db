import type { EncodeSettings } from '#contracts';
import { createEncoder } from './registry.js';
import { framesOf } from './testing/media-check.js';
import { expectNonDecreasing } from './testing/monotonic.js';
import { syntheticFrame } from './testing/synthetic-frames.js';

const at = (quality: number, speed: number): EncodeSettings => ({ quality, speed, fps: 30 });

describe('knob mapping on real encoders: higher quality never gives a smaller file', () => {
  const QUALITIES = [10, 30, 50, 70, 90];
  const layout = { width: 160, height: 120, format: 'bgra' as const };
  const frame = syntheticFrame(layout);

  it.each(['jpeg', 'webp', 'avif'] as const)('%s', async (codec) => {
    const encoder = createEncoder(codec);
    const sizes: number[] = [];
    for (const quality of QUALITIES)
      sizes.push((await encoder.encode(frame, layout, at(quality, 80))).length);
    expectNonDecreasing(sizes, `${codec} size over quality ${QUALITIES.join(',')}`);
    expect(sizes[4]).toBeGreaterThan(sizes[0] * 1.5);
  });

  it.each(['h264', 'vp9'] as const)('%s', async (codec) => {
    const encoder = createEncoder(codec, undefined, { threads: 1 });
    const frames = [0, 1, 2].map((i) => syntheticFrame({ ...layout, frameIndex: i }));
    const sizes = await Promise.all(
      QUALITIES.map(
        async (quality) => (await encoder.encode(framesOf(frames), 3, layout, at(quality, 90))).length,
      ),
    );
    expectNonDecreasing(sizes, `${codec} size over quality ${QUALITIES.join(',')}`);
    expect(sizes[4]).toBeGreaterThan(sizes[0] * 1.5);
  });
});
