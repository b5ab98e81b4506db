import { compressSync } from 'lz4-napi';
import { BadFrameError, decodeFrame, maxFrameMessageBytes } from './session-frames.js';

describe('decodeFrame', () => {
  const frame = Buffer.alloc(64 * 48 * 4, 7);

  it('takes a raw frame of exactly the frame size as it is (no copy)', () => {
    expect(decodeFrame(frame, frame.length, 'none')).toBe(frame);
  });

  it('refuses a raw frame of another size, saying what was expected', () => {
    expect(() => decodeFrame(frame.subarray(1), frame.length, 'none')).toThrow(BadFrameError);
    expect(() => decodeFrame(frame.subarray(1), frame.length, 'none')).toThrow(/12288 bytes .*got 12287/);
  });

  it('decodes a u32 LE raw size and one LZ4 block', () => {
    const message = compressSync(frame);
    expect(message.readUInt32LE(0)).toBe(frame.length);
    expect(decodeFrame(message, frame.length, 'lz4').equals(frame)).toBe(true);
  });

  it('checks the declared size before decompressing, and refuses corrupt blocks', () => {
    const message = Buffer.from(compressSync(frame));
    message.writeUInt32LE(frame.length * 1000, 0);
    expect(() => decodeFrame(message, frame.length, 'lz4')).toThrow(/declares 12288000 raw bytes/);
    const corrupt = Buffer.concat([compressSync(frame).subarray(0, 4), Buffer.alloc(20, 0xff)]);
    expect(() => decodeFrame(corrupt, frame.length, 'lz4')).toThrow(BadFrameError);
    expect(() => decodeFrame(Buffer.alloc(3), frame.length, 'lz4')).toThrow(/u32 LE raw size/);
  });

  it('allows an lz4 message the worst-case size of an incompressible frame', () => {
    expect(maxFrameMessageBytes(1000, 'none')).toBe(1000);
    expect(maxFrameMessageBytes(1000, 'lz4')).toBeGreaterThan(compressSync(Buffer.alloc(1000, 1)).length);
  });
});
