import { IMAGE_CODECS, VIDEO_CODECS, type EncodeSettings } from '#contracts';
import { UnsupportedInputError } from './errors.js';
import {
  avifOptions,
  describeSettingsMapping,
  jpegOptions,
  normalizeSettings,
  pngOptions,
  settingsMappingMarkdown,
  videoKnobs,
  vp8Quantizer,
  webpOptions,
  X26X_PRESETS,
} from './settings.js';
import { expectNonDecreasing } from './testing/monotonic.js';

const KNOB_STEPS = Array.from({ length: 101 }, (_, i) => i);
const at = (quality: number, speed: number): EncodeSettings => ({ quality, speed, fps: 30 });
const VIDEO_IMPLEMENTATIONS = [
  'libx264',
  'libx265',
  'libvpx',
  'libvpx-vp9',
  'libsvtav1',
  'libaom-av1',
  'h264_nvenc',
  'hevc_qsv',
  'h264_vaapi',
  'vp9_vaapi',
];

describe('normalizeSettings', () => {
  it('fills defaults, rounds, and refuses values out of range', () => {
    expect(normalizeSettings({})).toEqual({ quality: 80, speed: 80, fps: 30 });
    expect(normalizeSettings({ quality: 49.6, speed: 0.2, fps: 29.97 })).toEqual({
      quality: 50,
      speed: 0,
      fps: 29.97,
    });
    for (const bad of [{ quality: -1 }, { speed: 101 }, { quality: Number.NaN }, { fps: 0 }, { fps: 1000 }]) {
      expect(() => normalizeSettings(bad)).toThrow(UnsupportedInputError);
    }
  });

  it('keeps oddSize when given and refuses unknown values', () => {
    expect(normalizeSettings({ oddSize: 'pad' })).toEqual({
      quality: 80,
      speed: 80,
      fps: 30,
      oddSize: 'pad',
    });
    expect(() => normalizeSettings({ oddSize: 'crop' as never })).toThrow(
      /oddSize must be one of exact, pad/,
    );
  });
});

describe('knob mapping (pure)', () => {
  it.each(VIDEO_IMPLEMENTATIONS)(
    '%s: higher quality never gives a worse rate-control value',
    (implementation) => {
      const values = KNOB_STEPS.map((q) => videoKnobs(implementation, at(q, 50)).rateControl.value);
      expectNonDecreasing(
        values.map((v) => -v),
        `${implementation} quality`,
      );
      expect(values[0]).toBeGreaterThan(values[100]); // and it really moves
    },
  );

  it.each(VIDEO_IMPLEMENTATIONS)('%s: higher speed never gives a slower setting', (implementation) => {
    const knobs = KNOB_STEPS.map((s) => videoKnobs(implementation, at(50, s)));
    expectNonDecreasing(
      knobs.map((k) => k.speedRank),
      `${implementation} speed rank`,
    );
    expect(knobs[100].speedRank).toBeGreaterThan(knobs[0].speedRank);
    // the actual encoder settings, not just the rank
    if (implementation === 'libx264' || implementation === 'libx265') {
      expectNonDecreasing(
        knobs.map((k) => X26X_PRESETS.indexOf(k.preset as (typeof X26X_PRESETS)[number])),
        'x26x preset',
      );
      expect(knobs[100].preset).toBe('ultrafast');
    }
    if (knobs[0].mode !== undefined) {
      const modeRank = (mode?: string) => (mode === 'realtime' ? 1 : 0);
      expectNonDecreasing(
        knobs.map((k) => modeRank(k.mode) * 100 + (k.cpuUsed ?? 0)),
        `${implementation} mode/cpu-used`,
      );
    }
    if (implementation === 'libsvtav1')
      expectNonDecreasing(
        knobs.map((k) => Number(k.preset)),
        'svt preset',
      );
  });

  it('x264 at quality 70 is its default CRF 23; speed 100 is ultrafast, 0 is veryslow', () => {
    expect(videoKnobs('libx264', at(70, 100))).toMatchObject({
      rateControl: { value: 23 },
      preset: 'ultrafast',
    });
    expect(videoKnobs('libx264', at(70, 0)).preset).toBe('veryslow');
    expect(videoKnobs('libx264', at(80, 80)).args).toEqual(['-preset', 'veryfast', '-crf', '19']);
    // VP8 realtime: a negative cpu-used pins the speed instead of adapting it to timing (deterministic)
    const vp8 = videoKnobs('libvpx', at(80, 100));
    expect(vp8.args[vp8.args.indexOf('-cpu-used') + 1]).toBe('-16');
  });

  it('VP8 quantizer follows a curve from 63 to 4 (its PSNR flattens at low quantizers)', () => {
    expect([0, 30, 50, 70, 80, 90, 100].map(vp8Quantizer)).toEqual([63, 39, 25, 14, 9, 6, 4]);
    expect(videoKnobs('libvpx', at(90, 80)).rateControl).toEqual({ option: 'qmin/qmax', value: 6 });
  });

  it('image codecs: quality only goes up, effort only goes down with speed', () => {
    expectNonDecreasing(
      KNOB_STEPS.map((q) => jpegOptions(at(q, 50)).quality ?? 0),
      'jpeg quality',
    );
    expectNonDecreasing(
      KNOB_STEPS.map((q) => webpOptions(at(q, 50)).quality ?? 0),
      'webp quality',
    );
    expectNonDecreasing(
      KNOB_STEPS.map((q) => avifOptions(at(q, 50)).quality ?? 0),
      'avif quality',
    );
    const jpegEffort = (s: number) => {
      const o = jpegOptions(at(80, s));
      return o.mozjpeg ? 2 : o.optimiseCoding ? 1 : 0;
    };
    expectNonDecreasing(
      KNOB_STEPS.map((s) => -jpegEffort(s)),
      'jpeg effort',
    );
    expectNonDecreasing(
      KNOB_STEPS.map((s) => -(webpOptions(at(80, s)).effort ?? 0)),
      'webp effort',
    );
    expectNonDecreasing(
      KNOB_STEPS.map((s) => -(avifOptions(at(80, s)).effort ?? 0)),
      'avif effort',
    );
    expectNonDecreasing(
      KNOB_STEPS.map((s) => -(pngOptions(at(80, s)).compressionLevel ?? 0)),
      'png level',
    );
    expect(pngOptions(at(80, 100)).compressionLevel).toBe(1);
    expect(pngOptions(at(80, 0)).compressionLevel).toBe(9);
  });

  it('quality 100 is lossless WebP; below it is lossy', () => {
    expect(webpOptions(at(100, 50))).toMatchObject({ lossless: true, exact: true });
    expect(webpOptions(at(99, 50)).lossless).toBe(false);
  });

  it('documents every codec, with examples computed from the mapping itself', () => {
    const rows = describeSettingsMapping();
    for (const codec of [...IMAGE_CODECS, ...VIDEO_CODECS]) {
      expect(rows.some((row) => row.codec === codec)).toBe(true);
    }
    const x264 = rows.find((row) => row.encoder === 'libx264');
    expect(x264?.samples).toContain('q80/s80: crf 19, preset veryfast');
    expect(settingsMappingMarkdown().split('\n')).toHaveLength(rows.length + 2);
  });
});
