import type { EncodeSettings } from '#contracts';
import {
  buildVideoEncodeArgs,
  codedLayout,
  edgePadFilter,
  ffmpegArgv,
  formatCommandLine,
  layoutRejection,
  outputPixelFormat,
  type VideoEncodeRequest,
} from './ffmpeg-args.js';
import { UnsupportedInputError } from './errors.js';
import { createEncoder } from './registry.js';

const settings: EncodeSettings = { quality: 80, speed: 80, fps: 25 };

function request(overrides: Partial<VideoEncodeRequest> = {}): VideoEncodeRequest {
  return {
    codec: 'h264',
    implementation: 'libx264',
    layout: { width: 1920, height: 1080, format: 'bgra' },
    settings,
    frameCount: 30,
    threads: 2,
    ...overrides,
  };
}

/** The value that follows `option` in an argument list. */
function valueOf(args: string[], option: string): string | undefined {
  const index = args.indexOf(option);
  return index < 0 ? undefined : args[index + 1];
}

describe('buildVideoEncodeArgs', () => {
  it('reads raw frames of the given layout from stdin and writes fragmented MP4 for H.264', () => {
    const { input, output } = buildVideoEncodeArgs(request());
    expect(valueOf(input, '-f')).toBe('rawvideo');
    expect(valueOf(input, '-pix_fmt')).toBe('bgra');
    expect(valueOf(input, '-video_size')).toBe('1920x1080');
    expect(valueOf(input, '-framerate')).toBe('25');
    expect(valueOf(output, '-c:v')).toBe('libx264');
    expect(valueOf(output, '-frames:v')).toBe('30');
    expect(valueOf(output, '-g')).toBe('30'); // one keyframe per segment, at its start
    expect(valueOf(output, '-movflags')).toBe('frag_keyframe+empty_moov+default_base_moof');
    expect(valueOf(output, '-f')).toBe('mp4');
    expect(output).toContain('-an');
    expect(valueOf(output, '-vf')).toMatch(/out_color_matrix=bt709.*format=yuv420p$/);
    expect(valueOf(output, '-threads')).toBe('2');
  });

  it('converts VP8 with BT.601 (all its bitstream can signal) and everything else with BT.709', () => {
    const vp8 = buildVideoEncodeArgs(request({ codec: 'vp8', implementation: 'libvpx' })).output;
    expect(valueOf(vp8, '-vf')).toMatch(/out_color_matrix=bt601.*format=yuv420p$/);
    expect(valueOf(vp8, '-colorspace')).toBe('bt470bg');
    const vp9 = buildVideoEncodeArgs(request({ codec: 'vp9', implementation: 'libvpx-vp9' })).output;
    expect(valueOf(vp9, '-vf')).toMatch(/out_color_matrix=bt709/);
    expect(valueOf(vp9, '-colorspace')).toBe('bt709');
  });

  it.each([
    ['rgba', 'rgba'],
    ['bgra', 'bgra'],
    ['rgbx', 'rgb0'],
    ['bgrx', 'bgr0'],
    ['rgb', 'rgb24'],
    ['bgr', 'bgr24'],
  ] as const)('passes %s to ffmpeg as rawvideo %s (no conversion in JS)', (format, pixFmt) => {
    const { input } = buildVideoEncodeArgs(request({ layout: { width: 64, height: 48, format } }));
    expect(valueOf(input, '-pix_fmt')).toBe(pixFmt);
  });

  it.each([
    ['hevc', 'libx265', 'mp4'],
    ['vp8', 'libvpx', 'webm'],
    ['vp9', 'libvpx-vp9', 'webm'],
    ['av1', 'libsvtav1', 'mp4'],
    ['av1', 'libaom-av1', 'mp4'],
  ] as const)('%s with %s goes into %s', (codec, implementation, container) => {
    const { output } = buildVideoEncodeArgs(request({ codec, implementation }));
    expect(valueOf(output, '-c:v')).toBe(implementation);
    expect(valueOf(output, '-f')).toBe(container);
    if (codec === 'hevc') expect(valueOf(output, '-tag:v')).toBe('hvc1');
  });

  it('sizes threads the way each encoder takes them', () => {
    expect(
      valueOf(
        buildVideoEncodeArgs(request({ codec: 'hevc', implementation: 'libx265' })).output,
        '-x265-params',
      ),
    ).toBe('log-level=error:pools=2');
    expect(
      valueOf(
        buildVideoEncodeArgs(request({ codec: 'av1', implementation: 'libsvtav1' })).output,
        '-svtav1-params',
      ),
    ).toBe('lp=2');
    expect(valueOf(buildVideoEncodeArgs(request({ threads: 0 })).output, '-threads')).toBe('1');
  });

  it('uses 4:4:4 for odd sizes on x264/x265 (exact size) and 4:2:0 otherwise', () => {
    const odd = { width: 321, height: 181, format: 'rgb' as const };
    expect(outputPixelFormat('libx264', odd)).toBe('yuv444p');
    expect(outputPixelFormat('libx265', { ...odd, height: 180 })).toBe('yuv444p');
    expect(outputPixelFormat('libx264', { ...odd, width: 320, height: 180 })).toBe('yuv420p');
    expect(outputPixelFormat('libvpx-vp9', odd)).toBe('yuv420p');
    expect(valueOf(buildVideoEncodeArgs(request({ layout: odd })).output, '-vf')).toMatch(/format=yuv444p$/);
  });

  describe('oddSize pad', () => {
    const odd = { width: 321, height: 181, format: 'rgba' as const };
    const pad: EncodeSettings = { ...settings, oddSize: 'pad' };
    const padFilter = 'format=gbrp,pad=322:182,fillborders=right=1:bottom=1:mode=smear,';

    it.each(['libx264', 'libx265'])(
      '%s: grows an odd size to the next even one, edge repeated, and encodes 4:2:0',
      (implementation) => {
        const codec = implementation === 'libx264' ? 'h264' : 'hevc';
        const { input, output } = buildVideoEncodeArgs(
          request({ codec, implementation, layout: odd, settings: pad }),
        );
        expect(valueOf(input, '-video_size')).toBe('321x181'); // the frames as sent
        expect(valueOf(output, '-vf')).toBe(
          padFilter + 'scale=out_color_matrix=bt709:out_range=tv:flags=neighbor+accurate_rnd,format=yuv420p',
        );
      },
    );

    it('pads only the odd dimension, and nothing at even sizes or with exact', () => {
      expect(edgePadFilter('libx264', { ...odd, height: 180 }, 'pad')).toBe(
        'format=gbrp,pad=322:180,fillborders=right=1:bottom=0:mode=smear,',
      );
      expect(edgePadFilter('libx264', { ...odd, width: 320 }, 'pad')).toBe(
        'format=gbrp,pad=320:182,fillborders=right=0:bottom=1:mode=smear,',
      );
      expect(edgePadFilter('libx264', { ...odd, width: 320, height: 180 }, 'pad')).toBe('');
      expect(edgePadFilter('libx264', odd, 'exact')).toBe('');
      expect(edgePadFilter('libx264', odd)).toBe('');
      // Unchanged without pad: 4:4:4 at the exact size.
      expect(valueOf(buildVideoEncodeArgs(request({ layout: odd })).output, '-vf')).toBe(
        'scale=out_color_matrix=bt709:out_range=tv:flags=neighbor+accurate_rnd,format=yuv444p',
      );
    });

    it('leaves VP8, VP9 and AV1 alone: they keep odd sizes exact in 4:2:0', () => {
      for (const [codec, implementation] of [
        ['vp8', 'libvpx'],
        ['vp9', 'libvpx-vp9'],
        ['av1', 'libaom-av1'],
      ] as const) {
        const withPad = buildVideoEncodeArgs(request({ codec, implementation, layout: odd, settings: pad }));
        const without = buildVideoEncodeArgs(request({ codec, implementation, layout: odd }));
        expect(withPad).toEqual(without);
        expect(codedLayout(implementation, odd, 'pad')).toEqual(odd);
      }
      // SVT-AV1 still cannot take it: pad does not apply to AV1.
      expect(layoutRejection('libsvtav1', odd, 'pad')).toMatch(/even/);
    });

    it('lets the hardware H.264/HEVC encoders take odd sizes, padded before the upload', () => {
      expect(layoutRejection('h264_nvenc', odd, 'pad')).toBeNull();
      expect(layoutRejection('hevc_qsv', odd, 'pad')).toBeNull();
      expect(layoutRejection('h264_vaapi', odd)).toMatch(/needs an even width and height/);
      const nvenc = buildVideoEncodeArgs(
        request({ implementation: 'h264_nvenc', layout: odd, settings: pad }),
      );
      expect(valueOf(nvenc.output, '-vf')).toBe(
        padFilter + 'scale=out_color_matrix=bt709:out_range=tv:flags=neighbor+accurate_rnd,format=yuv420p',
      );
      const vaapi = buildVideoEncodeArgs(
        request({ codec: 'hevc', implementation: 'hevc_vaapi', layout: odd, settings: pad }),
      );
      expect(valueOf(vaapi.output, '-vf')).toBe(
        padFilter +
          'scale=out_color_matrix=bt709:out_range=tv:flags=neighbor+accurate_rnd,format=nv12,hwupload',
      );
    });
  });

  it('knows which encoders cannot take a size', () => {
    expect(layoutRejection('libsvtav1', { width: 321, height: 180, format: 'rgba' })).toMatch(/even/);
    expect(layoutRejection('libsvtav1', { width: 64, height: 48, format: 'rgba' })).toMatch(/64x64/);
    expect(layoutRejection('libsvtav1', { width: 64, height: 64, format: 'rgba' })).toBeNull();
    expect(layoutRejection('h264_nvenc', { width: 321, height: 180, format: 'rgba' })).toMatch(/even/);
    expect(layoutRejection('libx264', { width: 321, height: 181, format: 'rgba' })).toBeNull();
    expect(layoutRejection('libaom-av1', { width: 3, height: 3, format: 'rgba' })).toBeNull();
  });

  it('sets up hardware upload for VAAPI and QSV, and nothing extra for NVENC', () => {
    const vaapi = buildVideoEncodeArgs(
      request({ implementation: 'h264_vaapi', vaapiDevice: '/dev/dri/renderD129' }),
    );
    expect(valueOf(vaapi.input, '-vaapi_device')).toBe('/dev/dri/renderD129');
    expect(valueOf(vaapi.output, '-vf')).toMatch(/format=nv12,hwupload$/);
    const qsv = buildVideoEncodeArgs(request({ implementation: 'h264_qsv' }));
    expect(valueOf(qsv.input, '-init_hw_device')).toBe('qsv=hw');
    expect(valueOf(qsv.output, '-vf')).toMatch(/hwupload=extra_hw_frames=64$/);
    const nvenc = buildVideoEncodeArgs(request({ implementation: 'h264_nvenc' }));
    expect(nvenc.input).not.toContain('-vaapi_device');
    expect(valueOf(nvenc.output, '-preset')).toMatch(/^p[1-7]$/);
    expect(nvenc.output).not.toContain('-threads');
  });

  it('honours an explicit keyframe interval and refuses a frame count of 0', () => {
    expect(valueOf(buildVideoEncodeArgs(request({ keyframeInterval: 10 })).output, '-g')).toBe('10');
    expect(() => buildVideoEncodeArgs(request({ frameCount: 0 }))).toThrow(RangeError);
  });

  it('is an array of plain words: no shell string anywhere', () => {
    const argv = ffmpegArgv(buildVideoEncodeArgs(request()));
    expect(argv.indexOf('-i')).toBeGreaterThan(0);
    expect(argv[argv.indexOf('-i') + 1]).toBe('pipe:0');
    expect(argv[argv.length - 1]).toBe('pipe:1');
    for (const word of argv) expect(word).not.toMatch(/\s/);
  });
});

describe('formatCommandLine', () => {
  it('quotes words a shell would split or expand', () => {
    expect(formatCommandLine('ffmpeg', ['-vf', 'scale=1:2,format=yuv420p', "it's", 'a b', '$HOME'])).toBe(
      `ffmpeg -vf scale=1:2,format=yuv420p 'it'\\''s' 'a b' '$HOME'`,
    );
  });
});

describe('FfmpegVideoEncoder layout choice', () => {
  it('uses libaom-av1 for sizes SVT-AV1 cannot take, else SVT-AV1', () => {
    const av1 = createEncoder('av1');
    expect(av1.implementationFor({ width: 321, height: 181, format: 'rgba' })).toBe('libaom-av1');
    expect(av1.implementationFor({ width: 320, height: 180, format: 'rgba' })).toBe('libsvtav1');
  });

  it('throws a typed, explained error when no encoder of the node can take the size', () => {
    const nvencOnly = createEncoder('h264', 'h264_nvenc');
    expect(() => nvencOnly.implementationFor({ width: 321, height: 181, format: 'rgba' })).toThrow(
      UnsupportedInputError,
    );
    expect(() => nvencOnly.implementationFor({ width: 321, height: 181, format: 'rgba' })).toThrow(
      /h264_nvenc needs an even width and height/,
    );
  });

  it('uses the hardware encoder for odd sizes with oddSize pad, and its software fallback without', () => {
    const odd = { width: 321, height: 181, format: 'rgba' as const };
    const nvenc = createEncoder('hevc', 'hevc_nvenc', { fallbackImplementation: 'libx265' });
    expect(nvenc.implementationFor(odd, 'pad')).toBe('hevc_nvenc');
    expect(nvenc.implementationFor(odd)).toBe('libx265');
    expect(nvenc.liveImplementationFor(odd, 'pad')).toBe('hevc_nvenc');
    const args = nvenc.buildArgs(2, odd, { ...settings, oddSize: 'pad' });
    expect(valueOf(args.output, '-c:v')).toBe('hevc_nvenc');
    expect(valueOf(args.output, '-vf')).toMatch(/^format=gbrp,pad=322:182,fillborders=/);
  });

  it('refuses an encoder name that does not belong to the codec', () => {
    expect(() => createEncoder('vp9', 'libx264')).toThrow(/not an encoder for vp9/);
  });
});
