import { existsSync, readdirSync } from 'node:fs';
import { IMAGE_CODECS, VIDEO_CODECS } from '#contracts';
import { listFfmpegEncoders, probeEncoders, registryFromCapabilities } from './probe.js';
import { HARDWARE_VIDEO_ENCODERS } from './video-implementations.js';

/** Whether this machine has any GPU device node an encoder could open. */
const hasGpuDevice =
  existsSync('/dev/dri') ||
  (existsSync('/dev') && readdirSync('/dev').some((name) => name.startsWith('nvidia')));

describe('probeEncoders (real ffmpeg and sharp)', () => {
  let capabilities: Awaited<ReturnType<typeof probeEncoders>>;
  let listed: Set<string>;

  beforeAll(async () => {
    [capabilities, listed] = await Promise.all([probeEncoders({ timeoutMs: 20_000 }), listFfmpegEncoders()]);
  }, 60_000);

  it('finds every image codec and every software video codec', () => {
    expect(capabilities.ffmpeg.available).toBe(true);
    expect([...capabilities.codecs].sort()).toEqual([...IMAGE_CODECS, ...VIDEO_CODECS].sort());
    expect(capabilities.encoders).toMatchObject({
      jpeg: 'sharp',
      h264: 'libx264',
      hevc: 'libx265',
      vp8: 'libvpx',
      vp9: 'libvpx-vp9',
      av1: 'libsvtav1',
    });
    expect(capabilities.fallbacks.av1).toBe('libaom-av1');
  });

  it('claims only hardware encoders that really encoded a frame', () => {
    const encodedByHardware = capabilities.results
      .filter((r) => r.hardware && r.ok)
      .map((r) => r.implementation);
    expect(capabilities.hardware).toEqual(encodedByHardware);
    for (const name of capabilities.hardware) expect(listed.has(name)).toBe(true);
  });

  it('does not claim the NVENC/VAAPI/QSV encoders compiled into this ffmpeg when there is no such hardware', () => {
    const compiledIn = Object.values(HARDWARE_VIDEO_ENCODERS)
      .flat()
      .filter((name) => listed.has(name));
    expect(compiledIn).toContain('h264_nvenc'); // Debian's ffmpeg has them; they must have been tried
    const tried = capabilities.results.filter((r) => r.hardware).map((r) => r.implementation);
    expect(tried.sort()).toEqual([...compiledIn].sort());
    if (hasGpuDevice) return; // on a GPU box some may rightly work; the test above still holds
    // No GPU device here: every one of them must have failed, with a reason.
    expect(capabilities.hardware).toEqual([]);
    for (const result of capabilities.results.filter((r) => r.hardware)) expect(result.error).toBeTruthy();
    expect(Object.values(capabilities.encoders)).not.toContain('h264_nvenc');
  });

  it('builds a registry whose encoders are the chosen ones', () => {
    const registry = registryFromCapabilities(capabilities, { threads: 1 });
    expect(registry.video('h264').implementation).toBe('libx264');
    expect(registry.image('png').contentType).toBe('image/png');
    expect(registry.codecs().sort()).toEqual([...capabilities.codecs].sort());
  });

  it('reports a missing ffmpeg instead of crashing, keeping the image codecs', async () => {
    const result = await probeEncoders({ binaries: { ffmpeg: '/nonexistent/ffmpeg', ffprobe: 'ffprobe' } });
    expect(result.ffmpeg.available).toBe(false);
    expect(result.codecs.sort()).toEqual([...IMAGE_CODECS].sort());
  });
});
