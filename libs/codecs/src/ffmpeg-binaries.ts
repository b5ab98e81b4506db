/** Where the ffmpeg and ffprobe binaries are: FFMPEG_PATH / FFPROBE_PATH, else found on PATH. */
export interface FfmpegBinaries {
  ffmpeg: string;
  ffprobe: string;
}

export function ffmpegBinaries(env: NodeJS.ProcessEnv = process.env): FfmpegBinaries {
  return {
    ffmpeg: env.FFMPEG_PATH?.trim() || 'ffmpeg',
    ffprobe: env.FFPROBE_PATH?.trim() || 'ffprobe',
  };
}
