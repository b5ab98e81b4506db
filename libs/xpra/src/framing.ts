import { uncompress } from 'lz4-napi';
import { RencodeError, rdecode, rencodeParts, type XpraValue } from './rencode.js';

/**
 * Xpra's packet framing: an 8-byte header `!cBBBL` ('P', flags, compression level, chunk index,
 * payload length) and the payload. Chunks 1..15 are raw byte strings that replace the placeholder at
 * that position of the next main packet (index 0). A payload may be one LZ4 block with its
 * little-endian u32 uncompressed size in front; that size is checked against the limit before a byte
 * is decompressed, so a bomb costs nothing.
 */

export const HEADER_BYTES = 8;
const MAGIC = 0x50; // 'P'
export const FLAG_RENCODEPLUS = 0x10;
export const FLAG_FLUSH = 0x08;
const FLAG_CIPHER = 0x02;
const LEVEL_LZ4 = 0x10;
const MAX_CHUNK_INDEX = 15;

export class XpraProtocolError extends Error {}

export interface FramingLimits {
  /** Largest payload on the wire (compressed or not), main packet or chunk. */
  maxPacketBytes: number;
  /** Largest payload once decompressed, and largest sum of one packet's chunks. */
  maxDecompressedBytes: number;
}

export interface XpraHeader {
  flags: number;
  level: number;
  index: number;
  size: number;
}

export function parseHeader(header: Buffer, limits: FramingLimits): XpraHeader {
  if (header[0] !== MAGIC)
    throw new XpraProtocolError(
      `not an Xpra packet: the header starts with 0x${header[0].toString(16).padStart(2, '0')}, not 'P'`,
    );
  const flags = header[1];
  const level = header[2];
  const index = header[3];
  const size = header.readUInt32BE(4);
  if (flags & FLAG_CIPHER) throw new XpraProtocolError('encrypted packets (AES) are not supported: use TLS');
  if (index > MAX_CHUNK_INDEX) throw new XpraProtocolError(`chunk index ${index} is over ${MAX_CHUNK_INDEX}`);
  if (index === 0 && !(flags & FLAG_RENCODEPLUS))
    throw new XpraProtocolError(
      `packet flags 0x${flags.toString(16)} do not say rencodeplus, the only encoding served here`,
    );
  if (level !== 0 && !(level & LEVEL_LZ4))
    throw new XpraProtocolError(
      `compression level 0x${level.toString(16)} is not LZ4, the only one served here`,
    );
  if (size > limits.maxPacketBytes)
    throw new XpraProtocolError(`a payload of ${size} bytes is over the limit of ${limits.maxPacketBytes}`);
  return { flags, level, index, size };
}

/** The payload, decompressed when the header says LZ4 (its declared size checked first). */
export async function decompressPayload(
  header: XpraHeader,
  payload: Buffer,
  limits: FramingLimits,
): Promise<Buffer> {
  if (header.level === 0) return payload;
  if (payload.length < 4) throw new XpraProtocolError('an LZ4 payload shorter than its size prefix');
  const declared = payload.readUInt32LE(0);
  if (declared > limits.maxDecompressedBytes)
    throw new XpraProtocolError(
      `an LZ4 payload declares ${declared} bytes, over the limit of ${limits.maxDecompressedBytes}: refused before decompressing`,
    );
  try {
    // lz4-napi sizes its output by the prefix and never writes past it.
    return await uncompress(payload);
  } catch (error) {
    throw new XpraProtocolError(`corrupt LZ4 payload: ${(error as Error).message}`);
  }
}

/**
 * Turns the bytes of one connection into packets. `push` takes what the socket read; `next` answers
 * the next complete packet, or null until more bytes come. Sizes are checked on each header, before
 * the payload is buffered.
 */
export class PacketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: XpraHeader | null = null;
  private readonly rawChunks = new Map<number, Buffer>();
  private rawBytes = 0;

  constructor(private readonly limits: FramingLimits) {}

  push(data: Buffer): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.buffered += data.length;
  }

  /** Bytes read but not yet part of a packet. */
  get pending(): number {
    return this.buffered;
  }

  private take(bytes: number): Buffer {
    if (this.chunks[0].length >= bytes) {
      const first = this.chunks[0];
      const piece = first.subarray(0, bytes);
      if (first.length === bytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(bytes);
      this.buffered -= bytes;
      return piece;
    }
    const piece = Buffer.allocUnsafe(bytes);
    let filled = 0;
    while (filled < bytes) {
      const chunk = this.chunks[0];
      const n = Math.min(chunk.length, bytes - filled);
      chunk.copy(piece, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    this.buffered -= bytes;
    return piece;
  }

  /** The next main packet (chunks in place), or null when its bytes are not all here yet. */
  async next(): Promise<XpraValue[] | null> {
    for (;;) {
      if (!this.header) {
        if (this.buffered < HEADER_BYTES) return null;
        this.header = parseHeader(this.take(HEADER_BYTES), this.limits);
      }
      const header = this.header;
      if (this.buffered < header.size) return null;
      this.header = null;
      const payload = await decompressPayload(header, this.take(header.size), this.limits);
      if (header.index > 0) {
        this.rawBytes += payload.length - (this.rawChunks.get(header.index)?.length ?? 0);
        if (this.rawBytes > this.limits.maxDecompressedBytes)
          throw new XpraProtocolError(
            `raw chunks of ${this.rawBytes} bytes for one packet, over the limit of ${this.limits.maxDecompressedBytes}`,
          );
        this.rawChunks.set(header.index, payload);
        continue;
      }
      let packet: XpraValue;
      try {
        packet = rdecode(payload);
      } catch (error) {
        if (error instanceof RencodeError)
          throw new XpraProtocolError(`malformed rencodeplus: ${error.message}`);
        throw error;
      }
      if (!Array.isArray(packet) || typeof packet[0] !== 'string')
        throw new XpraProtocolError('a packet must be a list that starts with its type (a string)');
      for (const [index, raw] of this.rawChunks) {
        if (index >= packet.length)
          throw new XpraProtocolError(
            `raw chunk ${index} has no place in a packet of ${packet.length} items`,
          );
        packet[index] = raw;
      }
      this.rawChunks.clear();
      this.rawBytes = 0;
      return packet;
    }
  }
}

/** One packet on the wire, uncompressed (a server may always answer so): header + payload parts. */
export function encodePacket(packet: XpraValue[]): Buffer[] {
  const parts = rencodeParts(packet);
  let size = 0;
  for (const part of parts) size += part.length;
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header[0] = MAGIC;
  header[1] = FLAG_RENCODEPLUS | FLAG_FLUSH;
  header[2] = 0;
  header[3] = 0;
  header.writeUInt32BE(size, 4);
  return [header, ...parts];
}
