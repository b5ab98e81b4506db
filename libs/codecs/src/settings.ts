import type { AvifOptions, JpegOptions, PngOptions, WebpOptions } from 'sharp';
import { ODD_SIZE_POLICIES, type EncodeSettings } from '#contracts';
import { UnsupportedInputError } from './errors.js';
import { hardwareFamily } from './video-implementations.js';

/**
 * The knobs with one meaning across codecs (Xpra semantics):
 * - quality 0-100: higher = better picture, bigger output (100 = lossless where the codec can be);
 * - speed 0-100: higher = faster, less compression effort;
 * - fps: frame rate of video segments.
 * Everything codec-specific is derived here, in pure functions, so tests and docs see one mapping.
 */
export const DEFAULT_ENCODE_SETTINGS: Readonly<EncodeSettings> = { quality: 80, speed: 80, fps: 30 };

export const MAX_FPS = 240;

/**
 * Fills in defaults, rounds quality/speed to integers and refuses values outside their ranges.
 * `oddSize` is kept only when given (absent means exact).
 */
export function normalizeSettings(settings: Partial<EncodeSettings> = {}): EncodeSettings {
  const quality = settings.quality ?? DEFAULT_ENCODE_SETTINGS.quality;
  const speed = settings.speed ?? DEFAULT_ENCODE_SETTINGS.speed;
  const fps = settings.fps ?? DEFAULT_ENCODE_SETTINGS.fps;
  for (const [name, value] of [
    ['quality', quality],
    ['speed', speed],
  ] as const) {
    if (!Number.isFinite(value) || value < 0 || value > 100) {
      throw new UnsupportedInputError(`${name} must be a number from 0 to 100, got ${value}`);
    }
  }
  if (!Number.isFinite(fps) || fps <= 0 || fps > MAX_FPS) {
    throw new UnsupportedInputError(`fps must be a number above 0 and at most ${MAX_FPS}, got ${fps}`);
  }
  const { oddSize } = settings;
  if (oddSize !== undefined && !ODD_SIZE_POLICIES.includes(oddSize)) {
    throw new UnsupportedInputError(
      `oddSize must be one of ${ODD_SIZE_POLICIES.join(', ')}, got ${String(oddSize)}`,
    );
  }
  return { quality: Math.round(quality), speed: Math.round(speed), fps, ...(oddSize ? { oddSize } : {}) };
}

/** Linear map of a 0-100 knob onto [at0, at100], rounded. */
function scale(knob: number, at0: number, at100: number): number {
  return Math.round(at0 + ((at100 - at0) * knob) / 100);
}

/** Maps the upper or lower half of the speed range (0-49 or 50-100) linearly onto [from, to]. */
function scaleHalf(speed: number, half: 'low' | 'high', from: number, to: number): number {
  const position = half === 'low' ? speed / 50 : (speed - 50) / 50;
  return Math.round(from + (to - from) * position);
}

/**
 * libvpx's deadline / libaom's usage and cpu-used: speed below 50 is the 'good' mode over the `good`
 * cpu-used range, from 50 the 'realtime' mode over the `realtime` range.
 */
function vpxSpeed(
  speed: number,
  good: [from: number, to: number],
  realtime: [from: number, to: number],
): { mode: 'good' | 'realtime'; cpuUsed: number } {
  return speed < 50
    ? { mode: 'good', cpuUsed: scaleHalf(speed, 'low', ...good) }
    : { mode: 'realtime', cpuUsed: scaleHalf(speed, 'high', ...realtime) };
}

/** VP9 and AV1 (libvpx-vp9, libaom-av1): constant quality, row multithreading. */
function crf63Args(modeOption: '-deadline' | '-usage', mode: string, cpuUsed: number, crf: number): string[] {
  return [modeOption, mode, '-cpu-used', String(cpuUsed), '-crf', String(crf), '-b:v', '0', '-row-mt', '1'];
}

// ---------------------------------------------------------------------------------------------
// Image codecs (sharp)

export function jpegOptions(settings: EncodeSettings): JpegOptions {
  const { quality, speed } = settings;
  return {
    quality: Math.max(1, quality),
    // Full-resolution chroma keeps coloured text sharp; worth its bytes only at high quality.
    chromaSubsampling: quality >= 90 ? '4:4:4' : '4:2:0',
    // mozjpeg's trellis quantisation and scan optimisation are the slow, small-output end.
    mozjpeg: speed < 30,
    optimiseCoding: speed < 70,
  };
}

export function webpOptions(settings: EncodeSettings): WebpOptions {
  const { quality, speed } = settings;
  const lossless = quality >= 100;
  return {
    quality,
    lossless,
    // Keep RGB under fully transparent pixels so lossless really is bit-exact.
    exact: lossless,
    effort: scale(speed, 6, 0),
    smartSubsample: !lossless && quality >= 90 && speed < 50,
  };
}

/** PNG is always lossless: quality is ignored, speed trades zlib effort. */
export function pngOptions(settings: EncodeSettings): PngOptions {
  const { speed } = settings;
  return {
    compressionLevel: scale(speed, 9, 1),
    adaptiveFiltering: speed < 50,
    palette: false,
  };
}

export function avifOptions(settings: EncodeSettings): AvifOptions {
  const { quality, speed } = settings;
  return {
    quality: Math.max(1, quality),
    lossless: false,
    effort: scale(speed, 9, 0),
    chromaSubsampling: quality >= 90 ? '4:4:4' : '4:2:0',
  };
}

// ---------------------------------------------------------------------------------------------
// Video codecs (ffmpeg)

export const X26X_PRESETS = [
  'veryslow',
  'slower',
  'slow',
  'medium',
  'fast',
  'faster',
  'veryfast',
  'superfast',
  'ultrafast',
] as const;

export const QSV_PRESETS = ['veryslow', 'slower', 'slow', 'medium', 'fast', 'faster', 'veryfast'] as const;

/** What a video encoder is told, both as ffmpeg arguments and as named values for docs and tests. */
export interface VideoKnobs {
  implementation: string;
  /** The encoder option that carries quality, and its value (lower = better for all of them). */
  rateControl: { option: string; value: number };
  /** Named preset (x264/x265/nvenc/qsv) or numeric preset (SVT-AV1). */
  preset?: string | number;
  /** libvpx deadline or libaom usage: 'good' (slower) or 'realtime' (faster). */
  mode?: 'good' | 'realtime';
  /** libvpx/libaom cpu-used: higher = faster (VP8 realtime passes it negated: a fixed, not adaptive, speed). */
  cpuUsed?: number;
  /** 0 = slowest setting of this encoder; grows with speed. Comparable only within one encoder. */
  speedRank: number;
  /** ffmpeg output arguments carrying the above. */
  args: string[];
}

/** x264/x265-style CRF 0-51: quality 70 ~ the encoders' default (CRF 23), 100 -> 11, 0 -> 51. */
export function x26xCrf(quality: number): number {
  return scale(quality, 51, 11);
}

/** CRF 0-63 of libvpx-vp9, SVT-AV1 and libaom: quality 100 -> 13, 80 -> 23, 0 -> 63. */
export function crf63(quality: number): number {
  return scale(quality, 63, 13);
}

/**
 * VP8's constant quantizer: 63 at q0, 4 at q100, on a curve rather than a line because VP8's PSNR
 * flattens at low quantizers (a 320x180 desktop scene: qp 4 -> 42.2 dB, 8 -> 40.7, 14 -> 38.5,
 * 25 -> 35.8, 36 -> 32.8), so that the same quality lands where H.264/HEVC/VP9/AV1 do (q80 -> 9, q90 -> 6).
 */
export function vp8Quantizer(quality: number): number {
  return Math.round(4 + 59 * ((100 - quality) / 100) ** 1.5);
}

export function videoKnobs(implementation: string, settings: EncodeSettings): VideoKnobs {
  const { quality, speed } = settings;
  switch (implementation) {
    case 'libx264':
    case 'libx265': {
      const presetIndex = scale(speed, 0, X26X_PRESETS.length - 1);
      const preset = X26X_PRESETS[presetIndex];
      const crf = x26xCrf(quality);
      return {
        implementation,
        rateControl: { option: 'crf', value: crf },
        preset,
        speedRank: presetIndex,
        args: ['-preset', preset, '-crf', String(crf)],
      };
    }
    case 'libvpx': {
      // VP8 with -b:v 0 silently falls back to a 256 kbit/s cap, so quality is a constant quantizer.
      const qp = vp8Quantizer(quality);
      const { mode, cpuUsed } = vpxSpeed(speed, [0, 5], [6, 16]);
      return {
        implementation,
        rateControl: { option: 'qmin/qmax', value: qp },
        mode,
        cpuUsed,
        speedRank: cpuUsed,
        args: [
          '-deadline',
          mode,
          '-cpu-used',
          // VP8 realtime adapts a positive cpu-used to encode timing; negative pins that speed.
          String(mode === 'realtime' ? -cpuUsed : cpuUsed),
          '-qmin',
          String(qp),
          '-qmax',
          String(qp),
          '-b:v',
          '1G',
        ],
      };
    }
    case 'libvpx-vp9': {
      const crf = crf63(quality);
      const { mode, cpuUsed } = vpxSpeed(speed, [0, 4], [5, 8]);
      return {
        implementation,
        rateControl: { option: 'crf', value: crf },
        mode,
        cpuUsed,
        speedRank: cpuUsed,
        args: crf63Args('-deadline', mode, cpuUsed, crf),
      };
    }
    case 'libsvtav1': {
      const preset = scale(speed, 4, 12);
      const crf = crf63(quality);
      return {
        implementation,
        rateControl: { option: 'crf', value: crf },
        preset,
        speedRank: preset,
        args: ['-preset', String(preset), '-crf', String(crf)],
      };
    }
    case 'libaom-av1': {
      const crf = crf63(quality);
      const { mode, cpuUsed } = vpxSpeed(speed, [2, 6], [6, 8]);
      return {
        implementation,
        rateControl: { option: 'crf', value: crf },
        mode,
        cpuUsed,
        // realtime at the same cpu-used is faster than good
        speedRank: cpuUsed * 2 + (mode === 'realtime' ? 1 : 0),
        args: crf63Args('-usage', mode, cpuUsed, crf),
      };
    }
  }
  return hardwareKnobs(implementation, settings);
}

function hardwareKnobs(implementation: string, settings: EncodeSettings): VideoKnobs {
  const { quality, speed } = settings;
  const family = hardwareFamily(implementation);
  switch (family) {
    case 'nvenc': {
      const presetNumber = scale(speed, 7, 1); // p7 slowest .. p1 fastest
      const cq = Math.max(1, x26xCrf(quality));
      return {
        implementation,
        rateControl: { option: 'cq', value: cq },
        preset: `p${presetNumber}`,
        speedRank: 7 - presetNumber,
        args: ['-preset', `p${presetNumber}`, '-rc', 'vbr', '-cq', String(cq), '-b:v', '0'],
      };
    }
    case 'qsv': {
      const presetIndex = scale(speed, 0, QSV_PRESETS.length - 1);
      const globalQuality = Math.max(1, x26xCrf(quality));
      return {
        implementation,
        rateControl: { option: 'global_quality', value: globalQuality },
        preset: QSV_PRESETS[presetIndex],
        speedRank: presetIndex,
        args: ['-preset', QSV_PRESETS[presetIndex], '-global_quality', String(globalQuality)],
      };
    }
    case 'vaapi': {
      // VAAPI drivers differ in what they offer; constant QP is the one mode they all have.
      const wideQp =
        implementation === 'vp8_vaapi' || implementation === 'vp9_vaapi' || implementation === 'av1_vaapi';
      const qp = wideQp ? scale(quality, 255, 20) : x26xCrf(quality);
      const compressionLevel = scale(speed, 1, 7);
      return {
        implementation,
        rateControl: { option: wideQp ? 'global_quality' : 'qp', value: qp },
        speedRank: compressionLevel,
        args: [
          '-rc_mode',
          'CQP',
          wideQp ? '-global_quality' : '-qp',
          String(qp),
          '-compression_level',
          String(compressionLevel),
        ],
      };
    }
    default:
      throw new Error(`no settings mapping for video encoder ${implementation}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Documentation

export interface SettingsMappingRow {
  codec: string;
  encoder: string;
  quality: string;
  speed: string;
  /** Values the functions above give for a few sample settings, so the table cannot drift. */
  samples: string;
}

const SAMPLE_SETTINGS: EncodeSettings[] = [
  { quality: 30, speed: 20, fps: 30 },
  { quality: 80, speed: 80, fps: 30 },
  { quality: 100, speed: 100, fps: 30 },
];

function describeSample(codecOrEncoder: string, settings: EncodeSettings): string {
  const head = `q${settings.quality}/s${settings.speed}: `;
  switch (codecOrEncoder) {
    case 'jpeg': {
      const o = jpegOptions(settings);
      return `${head}quality ${o.quality}, ${o.chromaSubsampling}, ${o.mozjpeg ? 'mozjpeg' : o.optimiseCoding ? 'optimised' : 'plain'}`;
    }
    case 'webp': {
      const o = webpOptions(settings);
      return `${head}${o.lossless ? 'lossless' : `quality ${o.quality}`}, effort ${o.effort}`;
    }
    case 'png': {
      const o = pngOptions(settings);
      return `${head}compressionLevel ${o.compressionLevel}${o.adaptiveFiltering ? ', adaptive filtering' : ''}`;
    }
    case 'avif': {
      const o = avifOptions(settings);
      return `${head}quality ${o.quality}, effort ${o.effort}, ${o.chromaSubsampling}`;
    }
    default: {
      const k = videoKnobs(codecOrEncoder, settings);
      const speedPart = [
        k.preset !== undefined ? `preset ${k.preset}` : '',
        k.mode ? k.mode : '',
        k.cpuUsed !== undefined ? `cpu-used ${k.args[k.args.indexOf('-cpu-used') + 1]}` : '',
      ]
        .filter(Boolean)
        .join(' ');
      return `${head}${k.rateControl.option} ${k.rateControl.value}, ${speedPart}`;
    }
  }
}

const MAPPING_TEXT: Omit<SettingsMappingRow, 'samples'>[] = [
  {
    codec: 'jpeg',
    encoder: 'sharp (mozjpeg)',
    quality: 'quality = max(1, q); 4:4:4 chroma at q >= 90, else 4:2:0',
    speed: 's < 30: mozjpeg trellis + scan optimisation; s < 70: optimised Huffman; else plain',
  },
  {
    codec: 'webp',
    encoder: 'sharp (libwebp)',
    quality: 'quality = q; q = 100: lossless (exact)',
    speed: 'effort = 6 .. 0',
  },
  {
    codec: 'png',
    encoder: 'sharp (libpng)',
    quality: 'ignored: always lossless',
    speed: 'compressionLevel = 9 .. 1; adaptive filtering at s < 50',
  },
  {
    codec: 'avif',
    encoder: 'sharp (libheif + aom)',
    quality: 'quality = max(1, q); 4:4:4 chroma at q >= 90',
    speed: 'effort = 9 .. 0',
  },
  {
    codec: 'h264',
    encoder: 'libx264',
    quality: 'crf = 51 .. 11 (q70 = 23)',
    speed: 'preset veryslow .. ultrafast',
  },
  { codec: 'hevc', encoder: 'libx265', quality: 'crf = 51 .. 11', speed: 'preset veryslow .. ultrafast' },
  {
    codec: 'vp8',
    encoder: 'libvpx',
    quality: 'qmin = qmax = 4 + 59 * (1 - q/100)^1.5 (63 .. 4); BT.601 matrix',
    speed: 's < 50: deadline good, cpu-used 0..5; else realtime, cpu-used -6..-16 (fixed speed)',
  },
  {
    codec: 'vp9',
    encoder: 'libvpx-vp9',
    quality: 'crf = 63 .. 13 with b:v 0 (constant quality)',
    speed: 's < 50: deadline good, cpu-used 0..4; else realtime, cpu-used 5..8',
  },
  { codec: 'av1', encoder: 'libsvtav1', quality: 'crf = 63 .. 13', speed: 'preset 4 .. 12' },
  {
    codec: 'av1',
    encoder: 'libaom-av1',
    quality: 'crf = 63 .. 13 with b:v 0',
    speed: 's < 50: usage good, cpu-used 2..6; else realtime, cpu-used 6..8',
  },
  {
    codec: 'h264/hevc/av1',
    encoder: '*_nvenc',
    quality: 'rc vbr, cq = 51 .. 11, b:v 0',
    speed: 'preset p7 .. p1',
  },
  {
    codec: 'h264/hevc/vp9/av1',
    encoder: '*_qsv',
    quality: 'global_quality (ICQ) = 51 .. 11',
    speed: 'preset veryslow .. veryfast',
  },
  {
    codec: 'all video',
    encoder: '*_vaapi',
    quality: 'rc_mode CQP; h264/hevc qp 51 .. 11, vp8/vp9/av1 global_quality 255 .. 20',
    speed: 'compression_level 1 .. 7',
  },
];

/** The quality/speed mapping as rows for documentation (README table). */
export function describeSettingsMapping(): SettingsMappingRow[] {
  return MAPPING_TEXT.map((row) => {
    const key = row.encoder.startsWith('sharp') ? row.codec : row.encoder;
    const samples = key.startsWith('*')
      ? ''
      : SAMPLE_SETTINGS.map((settings) => describeSample(key, settings)).join('; ');
    return { ...row, samples };
  });
}

/** The mapping rows as a Markdown table. */
export function settingsMappingMarkdown(): string {
  const lines = [
    '| codec | encoder | quality q (0-100) | speed s (0-100) | examples |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const row of describeSettingsMapping()) {
    lines.push(`| ${row.codec} | ${row.encoder} | ${row.quality} | ${row.speed} | ${row.samples} |`);
  }
  return lines.join('\n');
}
