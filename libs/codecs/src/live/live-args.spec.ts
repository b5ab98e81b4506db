import type { EncodeSettings } from '#contracts';
import { UnsupportedCodecError, UnsupportedInputError } from '../errors.js';
import { buildVideoEncodeArgs } from '../ffmpeg-args.js';
import { createEncoder } from '../registry.js';
import {
  buildLiveEncodeArgs,
  liveImplementation,
  lowLatencyArgs,
  type LiveEncodeRequest,
} from './live-args.js';

const settings: EncodeSettings = { quality: 80, speed: 80, fps: 25 };

function request(overrides: Partial<LiveEncodeRequest> = {}): LiveEncodeRequest {
  return {
    codec: 'h264',
    implementation: 'libx264',
    layout: { width: 1280, height: 720, format: 'bgra' },
    settings,
    threads: 2,
    keyframeInterval: 120,
    ...overrides,
  };
}

/** The value that follows `option` in an argument list. */
function valueOf(args: string[], option: string): string | undefined {
  const index = args.indexOf(option);
  return index < 0 ? undefined : args[index + 1];
}

describe('liveImplementation', () => {
  it('maps SVT-AV1 (which buffers frames) to libaom-av1 and leaves the rest alone', () => {
    expect(liveImplementation('libsvtav1')).toBe('libaom-av1');
    for (const name of [
      'libx264',
      'libx265',
      'libvpx',
      'libvpx-vp9',
      'libaom-av1',
      'h264_nvenc',
      'av1_qsv',
    ]) {
      expect(liveImplementation(name)).toBe(name);
    }
  });
});

describe('buildLiveEncodeArgs', () => {
  it('reads raw frames like the segment encoder and writes AVI, one flushed packet per frame, no frame limit', () => {
    const { input, output } = buildLiveEncodeArgs(request());
    const segment = buildVideoEncodeArgs({ ...request(), frameCount: 10 });
    expect(input).toEqual(segment.input);
    expect(valueOf(input, '-f')).toBe('rawvideo');
    expect(valueOf(input, '-framerate')).toBe('25');
    expect(output).not.toContain('-frames:v');
    expect(valueOf(output, '-c:v')).toBe('libx264');
    expect(valueOf(output, '-tune')).toBe('zerolatency');
    expect(valueOf(output, '-g')).toBe('120');
    expect(valueOf(output, '-threads')).toBe('2');
    expect(valueOf(output, '-vf')).toBe(valueOf(segment.output, '-vf'));
    expect(valueOf(output, '-colorspace')).toBe('bt709');
    expect(valueOf(output, '-fps_mode')).toBe('passthrough');
    expect(valueOf(output, '-flush_packets')).toBe('1');
    expect(output.slice(-2)).toEqual(['-f', 'avi']);
    // The quality/speed mapping is the segment encoder's.
    expect(valueOf(output, '-crf')).toBe(valueOf(segment.output, '-crf'));
    expect(valueOf(output, '-preset')).toBe(valueOf(segment.output, '-preset'));
  });

  it('keeps odd sizes exact through 4:4:4 on x264/x265, like the segment encoder', () => {
    const layout = { width: 321, height: 181, format: 'rgb' as const };
    expect(valueOf(buildLiveEncodeArgs(request({ layout })).output, '-vf')).toMatch(/format=yuv444p$/);
    expect(
      valueOf(
        buildLiveEncodeArgs(request({ layout, codec: 'vp9', implementation: 'libvpx-vp9' })).output,
        '-vf',
      ),
    ).toMatch(/format=yuv420p$/);
  });

  it('with oddSize pad encodes H.264/HEVC 4:2:0 at the next even size, edge repeated, like the segment encoder', () => {
    const layout = { width: 321, height: 181, format: 'rgb' as const };
    const pad: EncodeSettings = { ...settings, oddSize: 'pad' };
    for (const [codec, implementation] of [
      ['h264', 'libx264'],
      ['hevc', 'libx265'],
      ['h264', 'h264_nvenc'],
    ] as const) {
      const live = buildLiveEncodeArgs(request({ codec, implementation, layout, settings: pad }));
      const segment = buildVideoEncodeArgs({
        codec,
        implementation,
        layout,
        settings: pad,
        frameCount: 1,
        threads: 2,
      });
      expect(valueOf(live.input, '-video_size')).toBe('321x181');
      expect(valueOf(live.output, '-vf')).toBe(
        'format=gbrp,pad=322:182,fillborders=right=1:bottom=1:mode=smear,' +
          'scale=out_color_matrix=bt709:out_range=tv:flags=neighbor+accurate_rnd,format=yuv420p',
      );
      expect(valueOf(live.output, '-vf')).toBe(valueOf(segment.output, '-vf'));
    }
    const vp9 = request({ layout, codec: 'vp9', implementation: 'libvpx-vp9' });
    expect(buildLiveEncodeArgs({ ...vp9, settings: pad })).toEqual(buildLiveEncodeArgs(vp9));
  });

  it.each([
    ['hevc', 'libx265', ['-tune', 'zerolatency']],
    ['vp8', 'libvpx', ['-lag-in-frames', '0', '-auto-alt-ref', '0']],
    ['vp9', 'libvpx-vp9', ['-lag-in-frames', '0', '-auto-alt-ref', '0']],
    ['av1', 'libaom-av1', ['-lag-in-frames', '0']],
    ['h264', 'h264_nvenc', ['-zerolatency', '1', '-delay', '0', '-bf', '0']],
    ['hevc', 'hevc_nvenc', ['-zerolatency', '1', '-delay', '0', '-bf', '0']],
    ['h264', 'h264_qsv', ['-async_depth', '1', '-bf', '0']],
    ['hevc', 'hevc_vaapi', ['-async_depth', '1', '-bf', '0']],
  ] as const)('%s on %s gets zero-latency options %j', (codec, implementation, expected) => {
    const { output } = buildLiveEncodeArgs(request({ codec, implementation }));
    const at = output.indexOf(expected[0]);
    expect(at).toBeGreaterThan(0);
    expect(output.slice(at, at + expected.length)).toEqual(expected);
    expect(lowLatencyArgs(implementation)).toEqual(expected);
  });

  it('threads x265 through its pools and leaves hardware encoders without -threads', () => {
    expect(
      valueOf(
        buildLiveEncodeArgs(request({ codec: 'hevc', implementation: 'libx265' })).output,
        '-x265-params',
      ),
    ).toBe('log-level=error:pools=2');
    expect(buildLiveEncodeArgs(request({ implementation: 'h264_nvenc' })).output).not.toContain('-threads');
  });

  it('sets up VAAPI and QSV devices and uploads frames to them', () => {
    const vaapi = buildLiveEncodeArgs(
      request({ codec: 'hevc', implementation: 'hevc_vaapi', vaapiDevice: '/dev/dri/renderD129' }),
    );
    expect(valueOf(vaapi.input, '-vaapi_device')).toBe('/dev/dri/renderD129');
    expect(valueOf(vaapi.output, '-vf')).toMatch(/format=nv12,hwupload$/);
    const qsv = buildLiveEncodeArgs(request({ implementation: 'h264_qsv' }));
    expect(valueOf(qsv.input, '-init_hw_device')).toBe('qsv=hw');
    expect(valueOf(qsv.output, '-vf')).toMatch(/hwupload=extra_hw_frames=64$/);
  });

  it('refuses SVT-AV1, unknown encoders, a codec mismatch and a bad keyframe interval', () => {
    expect(() => buildLiveEncodeArgs(request({ codec: 'av1', implementation: 'libsvtav1' }))).toThrow(
      UnsupportedCodecError,
    );
    expect(() => lowLatencyArgs('mpeg4')).toThrow(UnsupportedCodecError);
    expect(() => buildLiveEncodeArgs(request({ codec: 'vp9', implementation: 'libx264' }))).toThrow(
      /'libx264' is not an encoder for vp9/,
    );
    expect(() => buildLiveEncodeArgs(request({ keyframeInterval: 0 }))).toThrow(RangeError);
    expect(() => buildLiveEncodeArgs(request({ keyframeInterval: 2.5 }))).toThrow(RangeError);
  });
});

describe('FfmpegVideoEncoder.liveImplementationFor', () => {
  it('runs live AV1 on libaom-av1 at any size, even where SVT-AV1 would take it', () => {
    const av1 = createEncoder('av1', 'libsvtav1');
    expect(av1.liveImplementationFor({ width: 1280, height: 720, format: 'rgba' })).toBe('libaom-av1');
    expect(av1.liveImplementationFor({ width: 33, height: 17, format: 'rgba' })).toBe('libaom-av1');
  });

  it('keeps the main encoder, or its fallback, and refuses layouts none can take', () => {
    expect(createEncoder('h264').liveImplementationFor({ width: 321, height: 181, format: 'rgb' })).toBe(
      'libx264',
    );
    const nvenc = createEncoder('h264', 'h264_nvenc', { fallbackImplementation: 'libx264' });
    expect(nvenc.liveImplementationFor({ width: 64, height: 64, format: 'rgb' })).toBe('h264_nvenc');
    expect(nvenc.liveImplementationFor({ width: 65, height: 64, format: 'rgb' })).toBe('libx264');
    expect(() =>
      createEncoder('h264', 'h264_nvenc').liveImplementationFor({ width: 65, height: 64, format: 'rgb' }),
    ).toThrow(UnsupportedInputError);
  });
});
