import type { EncodeSettings, PixelFormat, VideoCodec } from '#contracts';
import type { RawLayout } from '../encoder.js';
import { EncodeAbortedError, EncoderFailedError, UnsupportedInputError } from '../errors.js';
import { createEncoder } from '../registry.js';
import { checkPaddedVideo, decodeVideoToRgb, probeVideo, psnr } from '../testing/media-check.js';
import { rgbaToPixelFormat, rgbaToRgb, syntheticRgba } from '../testing/synthetic-frames.js';
import { LiveVideoSession, type LivePacket } from './live-video-session.js';
import { playableStream } from './testing.js';

const settings: EncodeSettings = { quality: 90, speed: 100, fps: 30 };

function layout(width: number, height: number, format: PixelFormat): RawLayout {
  return { width, height, format };
}

/** Frames first..first+count-1 of a moving desktop scene, canonical RGBA. */
function scenes(width: number, height: number, first: number, count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => syntheticRgba(width, height, first + i));
}

/** Re-chunks frames into pieces of `size` bytes that straddle frame boundaries. */
async function* rechunked(frames: Buffer[], size: number): AsyncGenerator<Buffer> {
  const all = Buffer.concat(frames);
  for (let offset = 0; offset < all.length; offset += size) yield all.subarray(offset, offset + size);
}

/** An input that sends `bytes` and then never more: the encode can only end by timeout, abort or death. */
async function* stalled(bytes: number): AsyncGenerator<Buffer> {
  if (bytes > 0) yield Buffer.alloc(bytes);
  await new Promise(() => undefined);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Three scenes of a 161x121 bgrx layout through one live session of `codec` in a single encode, as a
 * stream an independent decoder reads at `coded` size.
 */
async function oddSizeLiveStream(
  codec: VideoCodec,
  sessionSettings: EncodeSettings,
  coded: { width: number; height: number },
): Promise<{ raw: RawLayout; rgba: Buffer[]; stream: Buffer }> {
  const raw = layout(161, 121, 'bgrx');
  const session = await createEncoder(codec, undefined, { threads: 1 }).startLive(raw, sessionSettings, 1000);
  const rgba = scenes(raw.width, raw.height, 0, 3);
  let packets: LivePacket[];
  try {
    packets = await session.encode([Buffer.concat(rgba.map((frame) => rgbaToPixelFormat(frame, 'bgrx')))], 3);
  } finally {
    await session.close();
  }
  const stream = playableStream(
    codec,
    packets.map((packet) => packet.data),
    coded.width,
    coded.height,
  );
  return { raw, rgba, stream };
}

function startH264(raw: RawLayout, keyframeInterval = 1000): Promise<LiveVideoSession> {
  return LiveVideoSession.start({
    codec: 'h264',
    implementation: 'libx264',
    layout: raw,
    settings,
    keyframeInterval,
    threads: 1,
  });
}

const CASES: [VideoCodec, RawLayout, string][] = [
  ['h264', layout(160, 120, 'bgrx'), 'libx264'],
  ['hevc', layout(161, 121, 'rgba'), 'libx265'], // odd size: 4:4:4, like the segment encoder
  ['vp8', layout(160, 120, 'rgb'), 'libvpx'],
  ['vp9', layout(160, 120, 'bgra'), 'libvpx-vp9'],
  ['av1', layout(160, 120, 'rgbx'), 'libaom-av1'], // createEncoder picks SVT-AV1; live maps it to libaom
];

describe('LiveVideoSession (real ffmpeg)', () => {
  it.each(CASES)(
    '%s %j: batches of 1, 2, 3 frames give one packet per frame, keyframe first, decodable at PSNR > 30 dB',
    async (codec, raw, expectedImplementation) => {
      const session = await createEncoder(codec, undefined, { threads: 1 }).startLive(raw, settings, 1000);
      expect(session.implementation).toBe(expectedImplementation);
      expect(session.contentType).toBe(`video/${codec === 'hevc' ? 'h265' : codec}`);
      const rgba = scenes(raw.width, raw.height, 0, 6);
      const input = rgba.map((frame) => rgbaToPixelFormat(frame, raw.format));
      const packets: LivePacket[] = [];
      try {
        // Batch 1 as an array; batches 2 and 3 queued together (calls are serialized), from iterables
        // whose chunks straddle frame boundaries and from one buffer holding three frames.
        packets.push(...(await session.encode([input[0]], 1)));
        expect(session.framesEncoded).toBe(1);
        const [second, third] = await Promise.all([
          session.encode(rechunked(input.slice(1, 3), 7777), 2),
          session.encode([Buffer.concat(input.slice(3, 6))], 3),
        ]);
        expect([second.length, third.length]).toEqual([2, 3]);
        packets.push(...second, ...third);
        expect(session.framesEncoded).toBe(6);
        expect(session.alive).toBe(true);
      } finally {
        await session.close();
      }
      expect(session.alive).toBe(false);
      expect(packets.map((packet) => packet.keyframe)).toEqual([true, false, false, false, false, false]);
      expect(packets.every((packet) => packet.data.length > 0)).toBe(true);

      const stream = playableStream(
        codec,
        packets.map((packet) => packet.data),
        raw.width,
        raw.height,
      );
      const decoded = await decodeVideoToRgb(stream);
      const expected = Buffer.concat(rgba.map(rgbaToRgb));
      expect(decoded.length).toBe(expected.length);
      const quality = psnr(expected, decoded);
      if (quality < 30) throw new Error(`${codec}: PSNR ${quality.toFixed(1)} dB < 30 dB`);
    },
  );

  it.each(['vp8', 'vp9', 'av1'] as const)(
    '%s keeps an odd size exact in 4:2:0 (161x121), decodable at PSNR > 30 dB',
    async (codec) => {
      const { rgba, stream } = await oddSizeLiveStream(codec, settings, { width: 161, height: 121 });
      const probe = await probeVideo(stream);
      expect([probe.codecName, probe.pixFmt, probe.width, probe.height, probe.frames]).toEqual([
        codec,
        'yuv420p',
        161,
        121,
        3,
      ]);
      const quality = psnr(Buffer.concat(rgba.map(rgbaToRgb)), await decodeVideoToRgb(stream));
      if (quality < 30) throw new Error(`${codec}: PSNR ${quality.toFixed(1)} dB < 30 dB`);
    },
  );

  it.each(['h264', 'hevc'] as const)(
    '%s with oddSize pad: 4:2:0 at the next even size (161x121 -> 162x122), crops back at PSNR > 30 dB',
    async (codec) => {
      const { raw, rgba, stream } = await oddSizeLiveStream(
        codec,
        { ...settings, oddSize: 'pad' },
        { width: 162, height: 122 },
      );
      const { probe, quality, columnRepeat, rowRepeat } = await checkPaddedVideo(
        stream,
        Buffer.concat(rgba.map(rgbaToRgb)),
        raw.width,
        raw.height,
      );
      expect([probe.codecName, probe.pixFmt, probe.width, probe.height, probe.frames]).toEqual([
        codec,
        'yuv420p',
        162,
        122,
        3,
      ]);
      expect({
        quality: quality > 30,
        columnRepeat: columnRepeat > 30,
        rowRepeat: rowRepeat > 30,
      }).toEqual({ quality: true, columnRepeat: true, rowRepeat: true });
    },
  );

  it('puts keyframes where keyframeInterval says, across batches', async () => {
    const raw = layout(128, 96, 'rgba');
    const session = await startH264(raw, 3);
    try {
      const flags: boolean[] = [];
      for (let first = 0; first < 6; first += 2) {
        const packets = await session.encode(scenes(128, 96, first, 2), 2);
        flags.push(...packets.map((packet) => packet.keyframe));
      }
      expect(flags).toEqual([true, false, false, true, false, false]);
    } finally {
      await session.close();
    }
  });

  it('rejects later encodes once ffmpeg is killed, with the command line in the error', async () => {
    const raw = layout(128, 96, 'rgba');
    const session = await startH264(raw);
    await session.encode(scenes(128, 96, 0, 1), 1);
    const pid = session.pid!;
    // An encode waiting for its frames fails when ffmpeg dies under it.
    const pending = session.encode(stalled(1000), 1);
    process.kill(pid, 'SIGKILL');
    await expect(pending).rejects.toThrow(EncoderFailedError);
    await waitFor(() => !session.alive);
    const later = session.encode(scenes(128, 96, 1, 1), 1);
    await expect(later).rejects.toThrow(EncoderFailedError);
    await expect(later).rejects.toThrow(/SIGKILL[\s\S]*command: ffmpeg .*-f avi pipe:1/);
    expect(session.pid).toBeUndefined();
    await session.close(); // still fine on a dead session
  });

  it('close() ends ffmpeg after the encodes already called, is idempotent, and refuses later encodes', async () => {
    const raw = layout(128, 96, 'rgba');
    const session = await startH264(raw);
    await session.encode(scenes(128, 96, 0, 1), 1);
    const pid = session.pid!;
    const queued = session.encode(scenes(128, 96, 1, 2), 2);
    const closing = session.close();
    expect(session.close()).toBe(closing);
    expect(session.alive).toBe(false);
    expect(await queued).toHaveLength(2);
    await closing;
    expect(isRunning(pid)).toBe(false);
    await expect(session.encode(scenes(128, 96, 3, 1), 1)).rejects.toThrow(/session is closed/);
  });

  it('times out and aborts by killing the session with the matching error', async () => {
    const raw = layout(128, 96, 'rgba');
    const timedOut = await startH264(raw);
    await expect(timedOut.encode(stalled(0), 1, { timeoutMs: 200 })).rejects.toThrow(
      /timed out after 200 ms/,
    );
    expect(timedOut.alive).toBe(false);
    await expect(timedOut.encode(scenes(128, 96, 0, 1), 1)).rejects.toThrow(EncoderFailedError);
    await timedOut.close();

    const aborted = await startH264(raw);
    const controller = new AbortController();
    const encoding = aborted.encode(stalled(5000), 1, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stream closed by client')), 50);
    await expect(encoding).rejects.toThrow(EncodeAbortedError);
    await expect(encoding).rejects.toThrow(/stream closed by client/);
    expect(aborted.alive).toBe(false);
    await aborted.close();
  });

  it('refuses input of the wrong size without harm when nothing was written yet', async () => {
    const raw = layout(128, 96, 'rgba');
    const session = await startH264(raw);
    try {
      await expect(session.encode([Buffer.alloc(100)], 1)).rejects.toThrow(UnsupportedInputError);
      await expect(session.encode(scenes(128, 96, 0, 1), 0)).rejects.toThrow(UnsupportedInputError);
      const alreadyAborted = AbortSignal.abort();
      await expect(session.encode(scenes(128, 96, 0, 1), 1, { signal: alreadyAborted })).rejects.toThrow(
        EncodeAbortedError,
      );
      expect(session.alive).toBe(true);
      const [packet] = await session.encode(scenes(128, 96, 0, 1), 1);
      expect(packet.keyframe).toBe(true);
      // Short input from an iterable: part of it went to ffmpeg, so the session cannot go on.
      await expect(session.encode(rechunked(scenes(128, 96, 1, 1), 5000), 2)).rejects.toThrow(
        UnsupportedInputError,
      );
      expect(session.alive).toBe(false);
    } finally {
      await session.close();
    }
  });

  it('fails start() with EncoderFailedError when ffmpeg cannot be run', async () => {
    await expect(
      LiveVideoSession.start({
        binary: '/nonexistent/ffmpeg',
        codec: 'h264',
        implementation: 'libx264',
        layout: layout(64, 64, 'rgba'),
        settings,
        keyframeInterval: 10,
      }),
    ).rejects.toThrow(EncoderFailedError);
  });
});
