import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  IMAGE_CODECS,
  VIDEO_CODECS,
  isVideoCodec,
  type Codec,
  type EncodeSettings,
  type VideoCodec,
} from '#contracts';
import { ffmpegBinaries, type FfmpegBinaries } from './ffmpeg-binaries.js';
import { SharpImageEncoder } from './image-encoders.js';
import { EncoderRegistry } from './registry.js';
import {
  HARDWARE_VIDEO_ENCODERS,
  SOFTWARE_VIDEO_ENCODERS,
  isHardwareEncoder,
} from './video-implementations.js';
import { FfmpegVideoEncoder, type VideoEncoderOptions } from './video-encoders.js';

const execFileAsync = promisify(execFile);

export interface ProbeOptions {
  binaries?: FfmpegBinaries;
  /** Choose a working hardware encoder over software where there is one. */
  preferHardware?: boolean;
  /** Time limit of each test encode (default 15 s; they run in parallel). */
  timeoutMs?: number;
  vaapiDevice?: string;
  /** Only probe these codecs (default: all). */
  codecs?: readonly Codec[];
  /** Test encodes run at once (default 4). */
  parallel?: number;
}

export interface EncoderProbeResult {
  codec: Codec;
  implementation: string;
  hardware: boolean;
  ok: boolean;
  ms: number;
  /** Why it is not available (first line of the failure). */
  error?: string;
}

export interface EncoderCapabilities {
  /** Codecs this node proved it can encode. */
  codecs: Codec[];
  /** Hardware encoders that really encoded a test frame. */
  hardware: string[];
  /** The implementation chosen per codec: 'sharp' for images, an ffmpeg encoder name for video. */
  encoders: Partial<Record<Codec, string>>;
  /** Per video codec, a working software encoder for frames the chosen one cannot take (odd sizes). */
  fallbacks: Partial<Record<VideoCodec, string>>;
  /** Every attempt, for logs. */
  results: EncoderProbeResult[];
  ffmpeg: { available: boolean; encoders: string[]; error?: string };
}

const PROBE_SIZE = 256;
const PROBE_FRAMES = 2;
const PROBE_SETTINGS: EncodeSettings = { quality: 50, speed: 100, fps: 30 };
const PROBE_PARALLEL = 4;

/** Runs tasks with at most `limit` at a time; results in task order. */
async function runLimited<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, lane));
  return results;
}

/** Video encoders compiled into this ffmpeg (from `ffmpeg -encoders`). */
export async function listFfmpegEncoders(binaries: FfmpegBinaries = ffmpegBinaries()): Promise<Set<string>> {
  const { stdout } = await execFileAsync(binaries.ffmpeg, ['-hide_banner', '-encoders'], { timeout: 10_000 });
  const names = new Set<string>();
  for (const line of stdout.split('\n')) {
    const match = /^\s*V[A-Z.]{5}\s+(\S+)/.exec(line);
    if (match && match[1] !== '=') names.add(match[1]);
  }
  return names;
}

async function* probeFrames(): AsyncGenerator<Buffer> {
  for (let i = 0; i < PROBE_FRAMES; i++) {
    const frame = Buffer.alloc(PROBE_SIZE * PROBE_SIZE * 4, 0x40 + i * 0x20);
    yield frame;
  }
}

async function timed(
  codec: Codec,
  implementation: string,
  attempt: () => Promise<Buffer>,
): Promise<EncoderProbeResult> {
  const started = performance.now();
  const hardware = isHardwareEncoder(implementation);
  try {
    const output = await attempt();
    if (output.length === 0) throw new Error('produced no output');
    return { codec, implementation, hardware, ok: true, ms: Math.round(performance.now() - started) };
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    return {
      codec,
      implementation,
      hardware,
      ok: false,
      ms: Math.round(performance.now() - started),
      error: message,
    };
  }
}

function probeVideoEncoder(
  codec: VideoCodec,
  implementation: string,
  options: ProbeOptions,
  binaries: FfmpegBinaries,
): Promise<EncoderProbeResult> {
  const encoder = new FfmpegVideoEncoder(codec, implementation, {
    binaries,
    threads: 1,
    vaapiDevice: options.vaapiDevice,
  });
  const layout = { width: PROBE_SIZE, height: PROBE_SIZE, format: 'rgba' as const };
  const signal = AbortSignal.timeout(options.timeoutMs ?? 15_000);
  return timed(codec, implementation, () =>
    encoder.encode(probeFrames(), PROBE_FRAMES, layout, PROBE_SETTINGS, { signal }),
  );
}

/**
 * Finds out, once at start, what this node can really encode: every software and hardware encoder
 * that ffmpeg lists is given a tiny test encode (in parallel, each with a time limit); only those
 * that produce output count. Hardware compiled into ffmpeg but absent on the machine fails here.
 */
export async function probeEncoders(options: ProbeOptions = {}): Promise<EncoderCapabilities> {
  const binaries = options.binaries ?? ffmpegBinaries();
  const wanted = new Set<Codec>(options.codecs ?? [...IMAGE_CODECS, ...VIDEO_CODECS]);

  let listed = new Set<string>();
  let ffmpegError: string | undefined;
  try {
    listed = await listFfmpegEncoders(binaries);
  } catch (error) {
    ffmpegError = `cannot run ${binaries.ffmpeg}: ${(error as Error).message.split('\n')[0]}`;
  }

  const attempts: (() => Promise<EncoderProbeResult>)[] = [];
  for (const codec of IMAGE_CODECS) {
    if (!wanted.has(codec)) continue;
    const encoder = new SharpImageEncoder(codec);
    attempts.push(() =>
      timed(codec, 'sharp', () =>
        encoder.encode(
          Buffer.alloc(16 * 16 * 4, 0x80),
          { width: 16, height: 16, format: 'rgba' },
          PROBE_SETTINGS,
        ),
      ),
    );
  }
  for (const codec of VIDEO_CODECS) {
    if (!wanted.has(codec)) continue;
    for (const implementation of [...SOFTWARE_VIDEO_ENCODERS[codec], ...HARDWARE_VIDEO_ENCODERS[codec]]) {
      if (listed.has(implementation))
        attempts.push(() => probeVideoEncoder(codec, implementation, options, binaries));
    }
  }
  const results = await runLimited(attempts, options.parallel ?? PROBE_PARALLEL);

  const working = (codec: Codec, hardware: boolean) =>
    results.filter((r) => r.ok && r.codec === codec && r.hardware === hardware).map((r) => r.implementation);
  const encoders: Partial<Record<Codec, string>> = {};
  const fallbacks: Partial<Record<VideoCodec, string>> = {};
  for (const codec of [...IMAGE_CODECS, ...VIDEO_CODECS]) {
    const software = working(codec, false);
    const hardware = working(codec, true);
    const chosen = options.preferHardware ? (hardware[0] ?? software[0]) : (software[0] ?? hardware[0]);
    if (!chosen) continue;
    encoders[codec] = chosen;
    if (isVideoCodec(codec)) {
      const fallback = software.find((name) => name !== chosen);
      if (fallback) fallbacks[codec] = fallback;
    }
  }
  return {
    codecs: Object.keys(encoders) as Codec[],
    hardware: results.filter((r) => r.ok && r.hardware).map((r) => r.implementation),
    encoders,
    fallbacks,
    results,
    ffmpeg: { available: ffmpegError === undefined, encoders: [...listed].sort(), error: ffmpegError },
  };
}

/** The encoders of a probed node, one per codec, with the probe's fallbacks. */
export function registryFromCapabilities(
  capabilities: EncoderCapabilities,
  options: VideoEncoderOptions = {},
): EncoderRegistry {
  return EncoderRegistry.fromImplementations(capabilities.encoders, {
    ...options,
    fallbacks: capabilities.fallbacks,
  });
}
