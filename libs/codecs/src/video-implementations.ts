import type { VideoCodec } from '#contracts';

/** Software encoders per codec, most preferred first. */
export const SOFTWARE_VIDEO_ENCODERS: Readonly<Record<VideoCodec, readonly string[]>> = {
  h264: ['libx264'],
  hevc: ['libx265'],
  vp8: ['libvpx'],
  vp9: ['libvpx-vp9'],
  av1: ['libsvtav1', 'libaom-av1'],
};

/** Hardware encoders per codec, most preferred first. Only those listed by `ffmpeg -encoders` are tried. */
export const HARDWARE_VIDEO_ENCODERS: Readonly<Record<VideoCodec, readonly string[]>> = {
  h264: ['h264_nvenc', 'h264_qsv', 'h264_vaapi'],
  hevc: ['hevc_nvenc', 'hevc_qsv', 'hevc_vaapi'],
  vp8: ['vp8_vaapi'],
  vp9: ['vp9_qsv', 'vp9_vaapi'],
  av1: ['av1_nvenc', 'av1_qsv', 'av1_vaapi'],
};

export type HardwareFamily = 'nvenc' | 'qsv' | 'vaapi';

export function hardwareFamily(implementation: string): HardwareFamily | null {
  const match = /_(nvenc|qsv|vaapi)$/.exec(implementation);
  return match ? (match[1] as HardwareFamily) : null;
}

export function isHardwareEncoder(implementation: string): boolean {
  return hardwareFamily(implementation) !== null;
}

/** The codec an ffmpeg encoder name belongs to, or null for names this layer does not know. */
export function codecOfImplementation(implementation: string): VideoCodec | null {
  for (const table of [SOFTWARE_VIDEO_ENCODERS, HARDWARE_VIDEO_ENCODERS]) {
    for (const [codec, names] of Object.entries(table)) {
      if (names.includes(implementation)) return codec as VideoCodec;
    }
  }
  return null;
}

export function defaultVideoImplementation(codec: VideoCodec): string {
  return SOFTWARE_VIDEO_ENCODERS[codec][0];
}
