/**
 * Incremental parser of the AVI stream that a live ffmpeg session writes to stdout.
 *
 * Why AVI: it is the one muxer in ffmpeg 5.1 that writes every packet as soon as the encoder emits it
 * (with `-flush_packets 1`), each framed by its own chunk header (`00dc` + LE32 size + data, padded to
 * an even length). FLV, fragmented MP4 and Matroska hold one packet back; raw Annex B / OBU streams
 * have no packet boundaries at all. On a pipe ffmpeg cannot seek back, so the RIFF and `LIST movi`
 * sizes stay 0xFFFFFFFF and no idx1 index follows: the parser walks chunk headers and never relies
 * on container sizes, descending into RIFF / `LIST movi` / `LIST rec` and skipping everything else.
 *
 * Zero-length video chunks: ffmpeg's AVI muxer (constant frame rate by design) writes an empty `##dc`
 * chunk for every missing frame number when a packet's dts jumps, i.e. when the encoder dropped a
 * frame (measured: removing one frame from the timeline gives `00dc` with size 0 right before the next
 * packet). They are returned as empty packets so that chunks still map one to one onto input frames; an
 * empty packet means "repeat the previous picture". Live sessions feed constant-rate frames with
 * `-fps_mode passthrough` to encoders that do not drop frames, and never showed one in our tests.
 */

/** Data that is not the RIFF AVI stream ffmpeg writes, or a chunk over the size limit. */
export class AviParseError extends Error {
  override readonly name = 'AviParseError';
}

/** No encoded frame comes near this; a larger size means the stream is corrupt or out of step. */
export const DEFAULT_MAX_AVI_PACKET_BYTES = 256 * 1024 * 1024;

const UNKNOWN_SIZE = 0xffffffff;
const VIDEO_CHUNK = /^\d\d(dc|db)$/;

type State =
  | { kind: 'riff' }
  | { kind: 'header' }
  | { kind: 'packet'; size: number }
  | { kind: 'skip'; remaining: number };

export class AviPacketParser {
  private readonly queue = new ByteQueue();
  private state: State = { kind: 'riff' };
  private inMovi = false;
  private failure: AviParseError | null = null;
  private offset = 0;

  constructor(private readonly maxPacketBytes = DEFAULT_MAX_AVI_PACKET_BYTES) {}

  /** Bytes consumed so far (handy in error messages). */
  get position(): number {
    return this.offset;
  }

  /**
   * Feeds the next piece of the stream; returns the video packets completed by it, in stream order.
   * Throws AviParseError on data that is not RIFF AVI (and on every call after that).
   */
  push(chunk: Buffer): Buffer[] {
    if (this.failure) throw this.failure;
    this.queue.push(chunk);
    const packets: Buffer[] = [];
    try {
      while (this.step(packets));
    } catch (error) {
      this.failure = error instanceof AviParseError ? error : new AviParseError(String(error));
      throw this.failure;
    }
    return packets;
  }

  /** Advances by one element; false when more bytes are needed. */
  private step(packets: Buffer[]): boolean {
    const state = this.state;
    switch (state.kind) {
      case 'riff': {
        if (this.queue.length < 12) return this.checkPrefix();
        const head = this.take(12);
        const id = head.toString('latin1', 0, 4);
        const type = head.toString('latin1', 8, 12);
        if (id !== 'RIFF' || type !== 'AVI ') {
          throw new AviParseError(
            `not a RIFF AVI stream: starts with ${JSON.stringify(head.toString('latin1'))}`,
          );
        }
        this.state = { kind: 'header' };
        return true;
      }
      case 'header': {
        if (this.queue.length < 8) return false;
        const head = this.queue.peek(8);
        const id = head.toString('latin1', 0, 4);
        const size = head.readUInt32LE(4);
        if (!/^[\x20-\x7e]{4}$/.test(id)) {
          throw new AviParseError(
            `bad AVI chunk id 0x${head.subarray(0, 4).toString('hex')} at byte ${this.offset}`,
          );
        }
        if (id === 'RIFF' || id === 'LIST') {
          if (this.queue.length < 12) return false;
          const type = this.take(12).toString('latin1', 8, 12);
          if (id === 'RIFF') {
            // ffmpeg continues files over 1 GiB with RIFF AVIX (only on seekable output, but cheap to allow).
            if (type !== 'AVIX' && type !== 'AVI ') {
              throw new AviParseError(`unexpected RIFF '${type}' at byte ${this.offset - 12}`);
            }
          } else if (type === 'movi' || type === 'rec ') {
            this.inMovi = true;
          } else {
            if (size === UNKNOWN_SIZE || size < 4) {
              throw new AviParseError(`LIST '${type}' of unusable size ${size} at byte ${this.offset - 12}`);
            }
            this.state = { kind: 'skip', remaining: size - 4 + (size & 1) };
          }
          return true;
        }
        this.take(8);
        if (this.inMovi && VIDEO_CHUNK.test(id)) {
          if (size > this.maxPacketBytes) {
            throw new AviParseError(
              `AVI chunk '${id}' of ${size} bytes exceeds ${this.maxPacketBytes} at byte ${this.offset - 8}`,
            );
          }
          this.state = { kind: 'packet', size };
        } else {
          // JUNK, idx1, ix##, audio or text chunks: not ours.
          this.state = { kind: 'skip', remaining: size + (size & 1) };
        }
        return true;
      }
      case 'packet': {
        if (this.queue.length < state.size) return false;
        packets.push(this.take(state.size));
        // The pad byte of an odd size is skipped after the packet, so the packet is out without waiting for it.
        this.state = state.size & 1 ? { kind: 'skip', remaining: 1 } : { kind: 'header' };
        return true;
      }
      case 'skip': {
        const skipped = this.queue.skip(state.remaining);
        this.offset += skipped;
        if (skipped < state.remaining) {
          this.state = { kind: 'skip', remaining: state.remaining - skipped };
          return false;
        }
        this.state = { kind: 'header' };
        return true;
      }
    }
  }

  /** Fails early when the first bytes already cannot be "RIFF". */
  private checkPrefix(): false {
    const have = this.queue.peek(Math.min(4, this.queue.length));
    if (!Buffer.from('RIFF', 'latin1').subarray(0, have.length).equals(have)) {
      throw new AviParseError(`not a RIFF AVI stream: starts with 0x${have.toString('hex')}`);
    }
    return false;
  }

  private take(length: number): Buffer {
    this.offset += length;
    return this.queue.take(length);
  }
}

/** A FIFO of byte chunks that copies only what it hands out. */
class ByteQueue {
  private readonly chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private head = 0;
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The next `length` bytes, left in the queue (length <= this.length). */
  peek(length: number): Buffer {
    return this.copy(length, false);
  }

  /** Removes and returns the next `length` bytes as a buffer of their own (length <= this.length). */
  take(length: number): Buffer {
    return this.copy(length, true);
  }

  /** Drops up to `length` bytes; returns how many were dropped. */
  skip(length: number): number {
    let remaining = Math.min(length, this.length);
    const skipped = remaining;
    while (remaining > 0) {
      const available = this.chunks[0].length - this.head;
      const step = Math.min(available, remaining);
      this.consume(step);
      remaining -= step;
    }
    return skipped;
  }

  private copy(length: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(length);
    let written = 0;
    let index = 0;
    let start = this.head;
    while (written < length) {
      const chunk = this.chunks[index];
      const step = Math.min(chunk.length - start, length - written);
      chunk.copy(out, written, start, start + step);
      written += step;
      index += 1;
      start = 0;
    }
    if (consume) {
      let remaining = length;
      while (remaining > 0) {
        const step = Math.min(this.chunks[0].length - this.head, remaining);
        this.consume(step);
        remaining -= step;
      }
    }
    return out;
  }

  private consume(bytes: number): void {
    this.head += bytes;
    this.length -= bytes;
    if (this.head === this.chunks[0].length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
