import { paddedOutputSize } from './job-view.js';

describe('paddedOutputSize', () => {
  it('names the coded size only where oddSize=pad grows an H.264/HEVC picture', () => {
    expect(paddedOutputSize('h264', 321, 181, 'pad')).toEqual({ outputWidth: 322, outputHeight: 182 });
    expect(paddedOutputSize('hevc', 320, 181, 'pad')).toEqual({ outputWidth: 320, outputHeight: 182 });
    expect(paddedOutputSize('h264', 320, 180, 'pad')).toEqual({});
    expect(paddedOutputSize('h264', 321, 181, 'exact')).toEqual({});
    expect(paddedOutputSize('h264', 321, 181, undefined)).toEqual({});
    for (const codec of ['vp8', 'vp9', 'av1', 'png', 'jpeg'] as const) {
      expect(paddedOutputSize(codec, 321, 181, 'pad')).toEqual({});
    }
  });
});
