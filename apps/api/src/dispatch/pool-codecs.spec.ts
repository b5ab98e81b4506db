import { CODECS } from '#contracts';
import { loadScaleFromZeroConfig, parsePoolCodecs } from './pool-codecs.js';

describe('POOL_CODECS, NO_NODE_WAIT_SECONDS, GPU_WAIT_SECONDS', () => {
  it('parses the codecs of each pool; unset means no scale from zero', () => {
    expect(parsePoolCodecs(undefined)).toBeNull();
    expect(parsePoolCodecs('  ')).toBeNull();
    expect(parsePoolCodecs('cpu:jpeg, webp,H264; gpu:h264,hevc')).toEqual({
      cpu: ['jpeg', 'webp', 'h264'],
      gpu: ['h264', 'hevc'],
    });
    expect(parsePoolCodecs('cpu:*')).toEqual({ cpu: [...CODECS], gpu: [] });
  });

  it('names the setting and what is wrong', () => {
    expect(() => parsePoolCodecs('cpu:jpeg,mpeg2')).toThrow(
      /POOL_CODECS: "mpeg2" \(cpu pool\) is not a codec/,
    );
    expect(() => parsePoolCodecs('tpu:jpeg')).toThrow(/POOL_CODECS: "tpu:jpeg" is not POOL:CODEC,CODEC/);
    expect(() => parsePoolCodecs('cpu:jpeg;cpu:png')).toThrow(/names the cpu pool twice/);
    expect(() => parsePoolCodecs(';')).toThrow(/names no codec/);
  });

  it('keeps the wait under the retention time, which the waiting frames would not outlive', () => {
    expect(loadScaleFromZeroConfig({}, 3600)).toEqual({
      poolCodecs: null,
      noNodeWaitSeconds: 600,
      gpuWaitSeconds: 0,
    });
    expect(loadScaleFromZeroConfig({}, 300).noNodeWaitSeconds).toBe(150);
    expect(() => loadScaleFromZeroConfig({ NO_NODE_WAIT_SECONDS: '3600' }, 3600)).toThrow(
      /NO_NODE_WAIT_SECONDS must be less than RETENTION_SECONDS \(3600\)/,
    );
    expect(() => loadScaleFromZeroConfig({ GPU_WAIT_SECONDS: '-1' }, 3600)).toThrow(
      /GPU_WAIT_SECONDS must be an integer from 0 to 86400, got "-1"/,
    );
  });
});
