import { readFileSync } from 'node:fs';
import path from 'node:path';
import { compressSync } from 'lz4-napi';
import { PacketReader, XpraProtocolError, encodePacket, type FramingLimits } from './framing.js';
import { rencode, type XpraValue } from './rencode.js';

const captures = JSON.parse(
  readFileSync(path.join(import.meta.dirname, 'testing', 'captures.json'), 'utf8'),
) as Record<string, string>;
const LIMITS: FramingLimits = { maxPacketBytes: 1024 * 1024, maxDecompressedBytes: 4 * 1024 * 1024 };

function header(flags: number, level: number, index: number, size: number): Buffer {
  const h = Buffer.from([0x50, flags, level, index, 0, 0, 0, 0]);
  h.writeUInt32BE(size, 4);
  return h;
}

async function readAll(wire: Buffer, step = wire.length, limits = LIMITS): Promise<XpraValue[][]> {
  const reader = new PacketReader(limits);
  const packets: XpraValue[][] = [];
  for (let at = 0; at < wire.length; at += step) {
    reader.push(wire.subarray(at, at + step));
    for (let packet = await reader.next(); packet; packet = await reader.next()) packets.push(packet);
  }
  return packets;
}

describe('Xpra packet framing', () => {
  it('reads the captured hello, byte by byte, and its LZ4 form', async () => {
    const plain = await readAll(Buffer.from(captures.remoteHello, 'hex'), 1);
    const lz4 = await readAll(Buffer.from(captures.remoteHelloLz4, 'hex'));
    expect(plain).toHaveLength(1);
    expect(plain[0][0]).toBe('hello');
    expect(lz4).toEqual(plain);
  });

  it('reads context-request and an LZ4 context-compress as the remote module sends them', async () => {
    const wire = Buffer.concat([
      Buffer.from(captures.contextRequest, 'hex'),
      Buffer.from(captures.contextCompress, 'hex'),
    ]);
    const [request, compress] = await readAll(wire, 7);
    expect(request).toEqual([
      'context-request',
      1,
      'x264',
      'h264',
      320,
      240,
      'BGRX',
      { quality: 50, speed: 50 },
    ]);
    expect(compress[0]).toBe('context-compress');
    expect((compress[2] as Record<string, XpraValue>).rowstride).toBe(256);
    // the pixels are an LZ4 block with Xpra's size prefix, as lz4-napi writes them
    expect(compressSync(Buffer.from(captures.contextCompressPixels, 'hex')).length).toBeGreaterThan(4);
  });

  it('puts raw chunks in their place in the next main packet', async () => {
    const raw = Buffer.alloc(5000, 3);
    const main = rencode(['context-data', 1, '', {}]);
    const wire = Buffer.concat([header(0x10, 0, 2, raw.length), raw, header(0x10, 0, 0, main.length), main]);
    const [packet] = await readAll(wire);
    expect(packet[2]).toEqual(raw);
  });

  it('writes packets that it (and the captures) read back', async () => {
    const parts = encodePacket(['context-data', 7, Buffer.alloc(9000, 1), { frame: 3, type: 'P' }, {}]);
    const wire = Buffer.concat(parts);
    expect(wire.subarray(0, 4).toString('hex')).toBe('50180000');
    const [packet] = await readAll(wire);
    expect(packet).toEqual(['context-data', 7, Buffer.alloc(9000, 1), { frame: 3, type: 'P' }, {}]);
  });

  it('refuses a wrong magic byte', async () => {
    await expect(readAll(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).rejects.toThrow(/not an Xpra packet/);
  });

  it('refuses a payload over the limit from its header alone', async () => {
    await expect(readAll(header(0x10, 0, 0, 0xffffffff))).rejects.toThrow(/over the limit/);
  });

  it('refuses an LZ4 bomb before decompressing it', async () => {
    const bomb = compressSync(Buffer.alloc(64 * 1024 * 1024));
    const wire = Buffer.concat([header(0x10, 0x11, 0, bomb.length), bomb]);
    await expect(readAll(wire)).rejects.toThrow(/refused before decompressing/);
    const lying = Buffer.from(compressSync(Buffer.alloc(100_000)));
    lying.writeUInt32LE(1000, 0);
    await expect(readAll(Buffer.concat([header(0x10, 0x11, 0, lying.length), lying]))).rejects.toThrow(
      XpraProtocolError,
    );
  });

  it('refuses truncated rencode, non-rencodeplus flags, other compressors and ciphers', async () => {
    const truncated = rencode(['hello', { a: 'bcdef' }]).subarray(0, 9);
    await expect(readAll(Buffer.concat([header(0x10, 0, 0, truncated.length), truncated]))).rejects.toThrow(
      /malformed rencodeplus/,
    );
    await expect(readAll(header(0x01, 0, 0, 4))).rejects.toThrow(/rencodeplus/);
    await expect(readAll(header(0x10, 0x41, 0, 4))).rejects.toThrow(/not LZ4/);
    await expect(readAll(header(0x12, 0, 0, 4))).rejects.toThrow(/encrypted/);
    const notList = rencode({ a: 1 });
    await expect(readAll(Buffer.concat([header(0x10, 0, 0, notList.length), notList]))).rejects.toThrow(
      /must be a list/,
    );
  });

  it('bounds the raw chunks of one packet', async () => {
    const raw = Buffer.alloc(600_000);
    const wire = Buffer.concat([header(0x10, 0, 1, raw.length), raw, header(0x10, 0, 2, raw.length), raw]);
    await expect(
      readAll(wire, wire.length, { maxPacketBytes: 1024 * 1024, maxDecompressedBytes: 1024 * 1024 }),
    ).rejects.toThrow(/raw chunks/);
  });
});
