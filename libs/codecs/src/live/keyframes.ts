import type { VideoCodec } from '#contracts';

/**
 * Keyframe detection from the bitstream of one live packet. AVI written to a pipe carries no key flags
 * (they live in the idx1 index, which ffmpeg writes only to seekable files), so the flag a live client
 * needs to know where decoding can start is read from the packet itself. Only the first bytes of each
 * header are parsed; a packet this does not understand counts as not a keyframe.
 */
export function isKeyframePacket(codec: VideoCodec, packet: Buffer): boolean {
  switch (codec) {
    case 'h264':
      return firstSliceNalType(
        packet,
        (header) => header & 0x1f,
        isH264Slice,
        (type) => type === 5,
      );
    case 'hevc':
      return firstSliceNalType(
        packet,
        (header) => (header >> 1) & 0x3f,
        (type) => type <= 31,
        // IRAP: BLA_W_LP .. CRA_NUT. Every picture of a HEVC access unit shares the type of its first slice.
        (type) => type >= 16 && type <= 21,
      );
    case 'vp8':
      return isVp8Keyframe(packet);
    case 'vp9':
      return isVp9Keyframe(packet);
    case 'av1':
      return isAv1Keyframe(packet);
  }
}

/** Slice types 1-5 (non-IDR, partitions A-C, IDR): the first one tells the picture's kind. */
function isH264Slice(type: number): boolean {
  return type >= 1 && type <= 5;
}

/**
 * Walks the NAL units of an Annex B access unit (start codes 00 00 01, with or without a leading
 * zero byte; emulation prevention guarantees none inside a NAL) and applies `isKey` to the first VCL
 * NAL: all slices of one picture are IDR / IRAP or none are.
 */
function firstSliceNalType(
  packet: Buffer,
  nalType: (header: number) => number,
  isSlice: (type: number) => boolean,
  isKey: (type: number) => boolean,
): boolean {
  let position = 0;
  for (;;) {
    const start = packet.indexOf(START_CODE, position);
    if (start < 0 || start + 3 >= packet.length) return false;
    const type = nalType(packet[start + 3]);
    if (isSlice(type)) return isKey(type);
    position = start + 3;
  }
}

const START_CODE = Buffer.from([0, 0, 1]);

/** RFC 6386 9.1: frame tag bit 0 is 0 for key frames, which then carry the start code 9d 01 2a. */
function isVp8Keyframe(packet: Buffer): boolean {
  return (
    packet.length >= 10 &&
    (packet[0] & 1) === 0 &&
    packet[3] === 0x9d &&
    packet[4] === 0x01 &&
    packet[5] === 0x2a
  );
}

/**
 * VP9 uncompressed_header(): frame_marker(2) = 2, profile_low_bit, profile_high_bit, a reserved zero
 * bit in profile 3, show_existing_frame (a repeat of an earlier frame: not a keyframe), frame_type
 * (0 = KEY_FRAME), show_frame, error_resilient_mode, then a key frame's sync code 49 83 42. A superframe starts with its first frame, so the header at byte 0 decides it too.
 */
function isVp9Keyframe(packet: Buffer): boolean {
  if (packet.length < 1) return false;
  const bits = new BitReader(packet);
  if (bits.read(2) !== 2) return false;
  const profile = bits.read(1) | (bits.read(1) << 1);
  if (profile === 3 && bits.read(1) !== 0) return false;
  if (bits.read(1) === 1) return false; // show_existing_frame
  if (bits.read(1) !== 0) return false; // frame_type: NON_KEY_FRAME
  bits.read(2); // show_frame, error_resilient_mode
  return bits.read(24) === VP9_SYNC_CODE;
}

const VP9_SYNC_CODE = 0x498342;

const OBU_SEQUENCE_HEADER = 1;
const OBU_FRAME_HEADER = 3;
const OBU_FRAME = 6;

/**
 * AV1 temporal unit in low-overhead format (OBUs with size fields, as libaom and ffmpeg write them):
 * a keyframe when its first frame header (OBU_FRAME_HEADER or OBU_FRAME) has frame_type KEY_FRAME and
 * is not a show_existing_frame. With reduced_still_picture_header (taken from a sequence header OBU in
 * the same unit) every frame is a key frame and the header has no such bits.
 */
function isAv1Keyframe(packet: Buffer): boolean {
  let position = 0;
  let reducedStillPictureHeader = false;
  while (position < packet.length) {
    const header = packet[position];
    if (header & 0x80) return false; // obu_forbidden_bit
    const type = (header >> 3) & 0x0f;
    const hasExtension = (header >> 2) & 1;
    const hasSizeField = (header >> 1) & 1;
    position += 1 + hasExtension;
    let size = packet.length - position;
    if (hasSizeField) {
      const leb = readLeb128(packet, position);
      if (!leb) return false;
      size = leb.value;
      position += leb.length;
    }
    if (position + size > packet.length) return false;
    const payload = packet.subarray(position, position + size);
    if (type === OBU_SEQUENCE_HEADER && payload.length > 0) {
      // seq_profile(3), still_picture(1), reduced_still_picture_header(1)
      reducedStillPictureHeader = ((payload[0] >> 3) & 1) === 1;
    } else if (type === OBU_FRAME_HEADER || type === OBU_FRAME) {
      if (reducedStillPictureHeader) return true;
      if (payload.length === 0) return false;
      const bits = new BitReader(payload);
      if (bits.read(1) === 1) return false; // show_existing_frame
      return bits.read(2) === 0; // frame_type: KEY_FRAME
    }
    position += size;
  }
  return false;
}

function readLeb128(data: Buffer, offset: number): { value: number; length: number } | null {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    if (offset + i >= data.length) return null;
    const byte = data[offset + i];
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return { value, length: i + 1 };
  }
  return null;
}

/** MSB-first bit reader; reads past the end give zeros (callers check lengths where it matters). */
class BitReader {
  private bit = 0;

  constructor(private readonly data: Buffer) {}

  read(count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) {
      const byte = this.data[this.bit >> 3] ?? 0;
      value = (value << 1) | ((byte >> (7 - (this.bit & 7))) & 1);
      this.bit += 1;
    }
    return value;
  }
}
