import { FrameBoundaries, acceptFor, closeFrame, isHandshakeKey } from './websocket-splice.js';

/** A frame as a server (unmasked) or a client (masked) sends it. */
function frame(opcode: number, payload: Buffer, mask?: Buffer): Buffer {
  const length = payload.length;
  const bit = mask ? 0x80 : 0;
  let header: Buffer;
  if (length < 126) header = Buffer.from([0x80 | opcode, bit | length]);
  else if (length < 65536) {
    header = Buffer.from([0x80 | opcode, bit | 126, 0, 0]);
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = bit | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  const body = mask ? Buffer.from(payload.map((byte, index) => byte ^ mask[index & 3])) : payload;
  return Buffer.concat([header, ...(mask ? [mask] : []), body]);
}

describe('FrameBoundaries', () => {
  const frames = [
    frame(0x1, Buffer.from('{"type":"ready"}')),
    frame(0x2, Buffer.alloc(300, 1), Buffer.from([1, 2, 3, 4])),
    frame(0x2, Buffer.alloc(70_000, 2)),
    frame(0x9, Buffer.alloc(0)),
  ];
  const ends = frames.reduce<number[]>((acc, f) => [...acc, (acc.at(-1) ?? 0) + f.length], []);
  const stream = Buffer.concat(frames);

  it('knows where frames end, however the bytes are cut', () => {
    for (const size of [1, 3, 7, 1000, 65_536, stream.length]) {
      const boundaries = new FrameBoundaries();
      const seen: number[] = [];
      for (let offset = 0; offset < stream.length; offset += size) {
        const end = Math.min(stream.length, offset + size);
        boundaries.feed(stream.subarray(offset, end));
        if (boundaries.atBoundary) seen.push(end);
      }
      expect(seen).toEqual(ends.filter((end) => seen.includes(end)));
      expect(seen.at(-1)).toBe(stream.length);
      if (size === 1) expect(seen).toEqual(ends);
      expect(boundaries.closeSeen).toBe(false);
    }
  });

  it('is not between frames in the middle of a header or a payload, and sees a close frame go by', () => {
    const boundaries = new FrameBoundaries();
    boundaries.feed(frames[2].subarray(0, 1));
    expect(boundaries.atBoundary).toBe(false);
    boundaries.feed(frames[2].subarray(1, 100));
    expect(boundaries.atBoundary).toBe(false);
    boundaries.feed(frames[2].subarray(100));
    expect(boundaries.atBoundary).toBe(true);
    boundaries.feed(closeFrame(1000, 'bye', true));
    expect(boundaries.closeSeen).toBe(true);
    expect(boundaries.atBoundary).toBe(true);
  });
});

describe('closeFrame', () => {
  it('is a close frame with the code and reason, masked (zero mask) as a client sends it', () => {
    expect(closeFrame(4409, 'moved', false)).toEqual(
      Buffer.concat([Buffer.from([0x88, 7, 0x11, 0x39]), Buffer.from('moved')]),
    );
    expect(closeFrame(1000, '', true)).toEqual(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
    expect(closeFrame(4409, 'x'.repeat(200), false).length).toBe(2 + 2 + 123);
  });
});

describe('handshake', () => {
  it("computes RFC 6455's accept value and checks keys", () => {
    expect(acceptFor('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(isHandshakeKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe(true);
    expect(isHandshakeKey('short')).toBe(false);
    expect(isHandshakeKey(undefined)).toBe(false);
  });
});
