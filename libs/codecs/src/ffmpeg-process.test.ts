import { readdirSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { EncodeSettings } from '#contracts';
import { EncodeAbortedError, EncoderFailedError, UnsupportedInputError } from './errors.js';
import { buildVideoEncodeArgs } from './ffmpeg-args.js';
import { runFfmpegPipe } from './ffmpeg-process.js';
import { createEncoder } from './registry.js';
import { decodeVideoToRgb, framesOf, probeVideo, psnr } from './testing/media-check.js';
import { rgbaToPixelFormat, rgbaToRgb, syntheticFrame, syntheticRgba } from './testing/synthetic-frames.js';

const settings: EncodeSettings = { quality: 60, speed: 100, fps: 20 };
const layout = { width: 320, height: 240, format: 'rgba' as const };
const frame = syntheticFrame(layout);

/** Running ffmpeg processes whose arguments contain `option value` (read from /proc). */
function ffmpegProcessesWith(option: string, value: string): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    const at = argv.indexOf(option);
    if (argv[0].endsWith('ffmpeg') && at > 0 && argv[at + 1] === value) count++;
  }
  return count;
}

describe('ffmpeg child process handling', () => {
  it('pulls frames only as fast as ffmpeg consumes them (backpressure)', async () => {
    // -re makes ffmpeg read its input at the frame rate: 20 fps, so frame i is wanted at ~i * 50 ms.
    const count = 12;
    const args = buildVideoEncodeArgs({
      codec: 'h264',
      implementation: 'libx264',
      layout,
      settings,
      frameCount: count,
      threads: 1,
    });
    args.input.unshift('-re');
    const pulledAt: number[] = [];
    const started = performance.now();
    async function* frames(): AsyncGenerator<Buffer> {
      for (let i = 0; i < count; i++) {
        pulledAt.push(performance.now() - started);
        yield frame;
      }
    }
    const output = await runFfmpegPipe({
      binary: 'ffmpeg',
      args,
      input: Readable.from(frames(), { objectMode: true, highWaterMark: 1 }),
    });
    expect(output.length).toBeGreaterThan(0);
    // Without backpressure all 12 frames (3.7 MB) would be pulled at once. With it, only the pipe's
    // and stream's buffers (a few 300 KB frames) run ahead of ffmpeg's 50 ms per frame.
    const slack = 4;
    for (let i = slack; i < count; i++) expect(pulledAt[i] - pulledAt[0]).toBeGreaterThan((i - slack) * 50);
  });

  it('kills ffmpeg and rejects with EncodeAbortedError on abort, releasing the frame source', async () => {
    let released = false;
    async function* endless(): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          yield frame;
        }
      } finally {
        released = true;
      }
    }
    const controller = new AbortController();
    const encoder = createEncoder('h264', undefined, { threads: 1, keyframeInterval: 4242 });
    const encoding = encoder.encode(endless(), 1000, layout, settings, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(ffmpegProcessesWith('-g', '4242')).toBe(1);
    controller.abort(new Error('job cancelled'));
    const error = await encoding.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EncodeAbortedError);
    expect((error as Error).message).toMatch(/job cancelled/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(ffmpegProcessesWith('-g', '4242')).toBe(0);
    expect(released).toBe(true);
  });

  it('puts the command line and the tail of stderr into EncoderFailedError', async () => {
    const args = buildVideoEncodeArgs({
      codec: 'h264',
      implementation: 'libx264',
      layout,
      settings,
      frameCount: 1,
      threads: 1,
    });
    args.output.splice(args.output.indexOf('-preset') + 1, 1, 'no-such-preset');
    const error = await runFfmpegPipe({
      binary: 'ffmpeg',
      args,
      input: Readable.from(framesOf([frame])),
      label: 'h264 (libx264)',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EncoderFailedError);
    const failure = error as EncoderFailedError;
    expect(failure.message).toContain('h264 (libx264) failed');
    expect(failure.message).toContain('command: ffmpeg -hide_banner');
    expect(failure.commandLine).toContain('-preset no-such-preset');
    expect(failure.stderrTail).toMatch(/preset|Error/i);
    expect(failure.retryable).toBe(true);
  });

  it('fails with EncoderFailedError, not a crash, when the ffmpeg binary cannot be started', async () => {
    // A run first: fluent-ffmpeg, used here before, threw a TypeError out of its child's 'error'
    // handler (an uncaught exception: the worker died) once its capability cache was warm.
    await createEncoder('h264', undefined, { threads: 1 }).encode(framesOf([frame]), 1, layout, settings);
    const error = await createEncoder('h264', undefined, {
      threads: 1,
      binaries: { ffmpeg: '/nonexistent/ffmpeg', ffprobe: 'ffprobe' },
    })
      .encode(framesOf([frame]), 1, layout, settings)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EncoderFailedError);
    expect((error as Error).message).toMatch(/could not be started[\s\S]*command: \/nonexistent\/ffmpeg /);
  });

  it('kills ffmpeg and fails with EncoderFailedError when the run outlives its timeout', async () => {
    const args = buildVideoEncodeArgs({
      codec: 'h264',
      implementation: 'libx264',
      layout,
      settings,
      frameCount: 1000,
      threads: 1,
      keyframeInterval: 4243,
    });
    async function* slow(): AsyncGenerator<Buffer> {
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        yield frame;
      }
    }
    const error = await runFfmpegPipe({
      binary: 'ffmpeg',
      args,
      input: slow(),
      timeoutMs: 300,
      label: 'slow',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EncoderFailedError);
    expect((error as Error).message).toMatch(/^slow timed out after 300 ms\ncommand: ffmpeg /);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(ffmpegProcessesWith('-g', '4243')).toBe(0);
  });

  it('lets the source refill a frame buffer as soon as it is asked for the next frame (pooled frames)', async () => {
    // The node reads frames into pooled buffers, reused once the encoder asks for the next one. Each
    // stdin write is awaited until the pipe has taken it; fluent-ffmpeg's pipe() read ahead, and
    // frames refilled while still queued came out as copies of later ones.
    const small = { width: 320, height: 180, format: 'bgrx' as const };
    const rgba = Array.from({ length: 8 }, (_, i) => syntheticRgba(small.width, small.height, i * 7));
    const shared = Buffer.alloc(small.width * small.height * 4);
    async function* refilled(): AsyncGenerator<Buffer> {
      for (const frame of rgba) {
        rgbaToPixelFormat(frame, small.format).copy(shared);
        yield shared;
      }
    }
    const output = await createEncoder('h264', undefined, { threads: 1 }).encode(
      refilled(),
      rgba.length,
      small,
      { ...settings, quality: 90 },
    );
    const quality = psnr(Buffer.concat(rgba.map(rgbaToRgb)), await decodeVideoToRgb(output));
    expect(quality).toBeGreaterThan(30);
  });

  it('refuses too few frames with UnsupportedInputError, not as an ffmpeg failure', async () => {
    const error = await createEncoder('h264', undefined, { threads: 1 })
      .encode(framesOf([frame, frame]), 3, layout, settings)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedInputError);
    expect((error as Error).message).toMatch(/expected 3 frames/);
  });

  it('takes exactly frameCount frames, in any chunking, and no more from the source', async () => {
    let pulled = 0;
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield frame.subarray(0, frame.length / 2);
        yield frame.subarray(frame.length / 2);
      }
    }
    const output = await createEncoder('vp8', undefined, { threads: 1 }).encode(
      chunks(),
      2,
      layout,
      settings,
    );
    expect(pulled).toBe(2);
    expect((await probeVideo(output)).frames).toBe(2);
  });
});
