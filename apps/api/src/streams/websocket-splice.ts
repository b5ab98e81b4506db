import { createHash } from 'node:crypto';

/**
 * The byte-level pieces of a WebSocket relay that forwards frames as they arrive, without parsing them
 * into messages: the handshake's accept value, where frames end in a byte stream, and the close frame
 * the relay writes itself. RFC 6455.
 */

const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OPCODE_CLOSE = 0x8;

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`. */
export function acceptFor(key: string): string {
  return createHash('sha1')
    .update(key + HANDSHAKE_GUID)
    .digest('base64');
}

/** A `Sec-WebSocket-Key` as RFC 6455 wants it: 16 bytes, base64. */
export function isHandshakeKey(key: string | undefined): key is string {
  return key !== undefined && /^[A-Za-z0-9+/]{22}==$/.test(key);
}

/**
 * Follows the frame boundaries of one direction of a WebSocket connection, chunk by chunk, without
 * copying payloads: after each chunk, whether the bytes so far end exactly between two frames (where
 * the relay may put a frame of its own), and whether a close frame went by.
 */
export class FrameBoundaries {
  private readonly header = Buffer.alloc(14);
  private headerBytes = 0;
  private remaining = 0;
  closeSeen = false;

  get atBoundary(): boolean {
    return this.headerBytes === 0 && this.remaining === 0;
  }

  feed(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= take;
        offset += take;
        continue;
      }
      this.header[this.headerBytes++] = chunk[offset++];
      if (this.headerBytes < 2 || this.headerBytes < headerLength(this.header)) continue;
      if ((this.header[0] & 0x0f) === OPCODE_CLOSE) this.closeSeen = true;
      this.remaining = payloadLength(this.header);
      this.headerBytes = 0;
    }
  }
}

/** Bytes of a frame's header, from its first two bytes. */
function headerLength(header: Buffer): number {
  const length = header[1] & 0x7f;
  const extended = length === 126 ? 2 : length === 127 ? 8 : 0;
  return 2 + extended + (header[1] & 0x80 ? 4 : 0);
}

function payloadLength(header: Buffer): number {
  const length = header[1] & 0x7f;
  if (length === 126) return header.readUInt16BE(2);
  if (length === 127) return Number(header.readBigUInt64BE(2));
  return length;
}

/**
 * A close frame with `code` and `reason` (at most 123 bytes of it). `masked`: as a client sends it (a
 * zero mask, the payload as it is), else as a server does.
 */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  let text = Buffer.from(reason);
  if (text.length > 123) text = text.subarray(0, 123);
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  const header = masked
    ? Buffer.from([0x80 | OPCODE_CLOSE, 0x80 | payload.length, 0, 0, 0, 0])
    : Buffer.from([0x80 | OPCODE_CLOSE, payload.length]);
  return Buffer.concat([header, payload]);
}
