import type { VideoCodec } from '#contracts';
import { isKeyframePacket } from './keyframes.js';

const hex = (text: string) => Buffer.from(text.replace(/\s/g, ''), 'hex');

describe('isKeyframePacket on hand-made headers', () => {
  it.each<[string, VideoCodec, string, boolean]>([
    ['H.264 SPS PPS IDR', 'h264', '00000001 6764 00000001 68ee 00000001 6588', true],
    ['H.264 IDR after a 3-byte start code and AUD/SEI', 'h264', '000001 09f0 000001 0605 000001 6588', true],
    ['H.264 non-IDR slice', 'h264', '00000001 419a', false],
    ['H.264 SPS only (no slice)', 'h264', '00000001 6764', false],
    ['H.264 no start code', 'h264', '6588 0000', false],
    ['HEVC VPS SPS PPS IDR_W_RADL', 'hevc', '00000001 4001 00000001 4201 00000001 4401 00000001 2601', true],
    ['HEVC CRA', 'hevc', '00000001 2a01', true],
    ['HEVC BLA_W_LP', 'hevc', '00000001 2001', true],
    ['HEVC TRAIL_R', 'hevc', '00000001 0201', false],
    ['HEVC prefix SEI only', 'hevc', '00000001 4e01', false],
    ['VP8 key frame', 'vp8', '9047009d012aa0007800', true],
    ['VP8 key bit without start code', 'vp8', '9047000000000000000000', false],
    ['VP8 inter frame', 'vp8', '510d000510ac00180cc1', false],
    // VP9: marker 10, profile bits low/high, [reserved in profile 3], show_existing, frame_type, show, err, sync
    ['VP9 profile 0 key frame', 'vp9', '82 498342 00', true],
    ['VP9 profile 1 key frame', 'vp9', 'a2 498342 00', true],
    ['VP9 profile 2 key frame', 'vp9', '92 498342 00', true],
    ['VP9 profile 3 key frame (reserved bit)', 'vp9', 'b1 24c1a1 00', true],
    ['VP9 profile 3 with the reserved bit set', 'vp9', 'b9 24c1a1 00', false],
    ['VP9 inter frame', 'vp9', '86004092', false],
    ['VP9 show_existing_frame', 'vp9', '88', false],
    ['VP9 key bit without sync code', 'vp9', '82 000000 00', false],
    ['VP9 bad frame marker', 'vp9', '42 498342 00', false],
    // AV1: temporal delimiter, sequence header, frame OBU
    ['AV1 TD + sequence header + KEY_FRAME frame', 'av1', '1200 0a03 000000 3202 1000', true],
    ['AV1 frame header OBU, KEY_FRAME', 'av1', '1a01 10', true],
    ['AV1 INTER_FRAME', 'av1', '1200 3202 3000', false],
    ['AV1 INTRA_ONLY_FRAME', 'av1', '3202 5000', false],
    ['AV1 show_existing_frame', 'av1', '1a01 80', false],
    ['AV1 OBU extension byte before the size', 'av1', '3600 02 1000', true],
    ['AV1 reduced still picture header', 'av1', '0a01 08 3201 ff', true],
    ['AV1 truncated size', 'av1', '3210 10', false],
    ['AV1 sequence header only', 'av1', '0a03 000000', false],
  ])('%s', (_name, codec, bytes, expected) => {
    expect(isKeyframePacket(codec, hex(bytes))).toBe(expected);
  });

  it('is false for empty packets of every codec', () => {
    for (const codec of ['h264', 'hevc', 'vp8', 'vp9', 'av1'] as const) {
      expect(isKeyframePacket(codec, Buffer.alloc(0))).toBe(false);
    }
  });
});
