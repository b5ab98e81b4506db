import { ivfFileHeader, ivfFrameHeader, ivfTimebase } from './ivf.js';

describe('IVF headers', () => {
  it('writes the 32-byte file header: DKIF, version 0, fourcc, size, time base, frame count', () => {
    const header = ivfFileHeader('vp9', 1280, 720, 30, 42);
    expect(header).toHaveLength(32);
    expect(header.toString('latin1', 0, 4)).toBe('DKIF');
    expect(header.readUInt16LE(4)).toBe(0);
    expect(header.readUInt16LE(6)).toBe(32);
    expect(header.toString('latin1', 8, 12)).toBe('VP90');
    expect([header.readUInt16LE(12), header.readUInt16LE(14)]).toEqual([1280, 720]);
    expect([header.readUInt32LE(16), header.readUInt32LE(20)]).toEqual([30000, 1000]);
    expect(header.readUInt32LE(24)).toBe(42);
    expect(header.readUInt32LE(28)).toBe(0);
    expect(ivfFileHeader('vp8', 2, 2, 25).toString('latin1', 8, 12)).toBe('VP80');
    expect(ivfFileHeader('av1', 2, 2, 25).toString('latin1', 8, 12)).toBe('AV01');
  });

  it('keeps fractional frame rates in the time base', () => {
    expect(ivfTimebase(29.97)).toEqual({ rate: 29970, scale: 1000 });
    expect(ivfTimebase(30000 / 1001)).toEqual({ rate: 29970, scale: 1000 });
  });

  it('writes the 12-byte frame header: LE32 size, LE64 pts', () => {
    const header = ivfFrameHeader(0x01020304, 2 ** 33 + 5);
    expect(header.toString('hex')).toBe('04030201' + '0500000002000000');
  });

  it('refuses values that do not fit', () => {
    expect(() => ivfFileHeader('vp9', 0, 720, 30)).toThrow(RangeError);
    expect(() => ivfFileHeader('vp9', 65536, 720, 30)).toThrow(RangeError);
    expect(() => ivfFileHeader('vp9', 1280, 720, 0)).toThrow(RangeError);
    expect(() => ivfFileHeader('h264' as 'vp9', 1280, 720, 30)).toThrow(RangeError);
    expect(() => ivfFrameHeader(-1, 0)).toThrow(RangeError);
    expect(() => ivfFrameHeader(10, 1.5)).toThrow(RangeError);
  });
});
