/** xxHash32, incremental: the checksum of the LZ4 frame format (header, blocks and content). */

const PRIME1 = 2654435761;
const PRIME2 = 2246822519;
const PRIME3 = 3266489917;
const PRIME4 = 668265263;
const PRIME5 = 374761393;

function rotl(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

function round(accumulator: number, lane: number): number {
  return Math.imul(rotl((accumulator + Math.imul(lane, PRIME2)) | 0, 13), PRIME1);
}

function readU32(data: Uint8Array, offset: number): number {
  return data[offset] | (data[offset + 1] << 8) | (data[offset + 2] << 16) | (data[offset + 3] << 24);
}

export class XxHash32 {
  private v1: number;
  private v2: number;
  private v3: number;
  private v4: number;
  private totalLength = 0;
  private readonly buffer = new Uint8Array(16);
  private buffered = 0;

  constructor(private readonly seed = 0) {
    this.v1 = (seed + PRIME1 + PRIME2) | 0;
    this.v2 = (seed + PRIME2) | 0;
    this.v3 = seed | 0;
    this.v4 = (seed - PRIME1) | 0;
  }

  update(data: Uint8Array): this {
    let offset = 0;
    const length = data.length;
    this.totalLength += length;
    if (this.buffered > 0) {
      const take = Math.min(16 - this.buffered, length);
      this.buffer.set(data.subarray(0, take), this.buffered);
      this.buffered += take;
      offset = take;
      if (this.buffered < 16) return this;
      this.stripe(this.buffer, 0);
      this.buffered = 0;
    }
    let { v1, v2, v3, v4 } = this;
    const limit = length - 16;
    for (; offset <= limit; offset += 16) {
      v1 = round(v1, readU32(data, offset));
      v2 = round(v2, readU32(data, offset + 4));
      v3 = round(v3, readU32(data, offset + 8));
      v4 = round(v4, readU32(data, offset + 12));
    }
    Object.assign(this, { v1, v2, v3, v4 });
    if (offset < length) {
      this.buffer.set(data.subarray(offset), 0);
      this.buffered = length - offset;
    }
    return this;
  }

  private stripe(data: Uint8Array, offset: number): void {
    this.v1 = round(this.v1, readU32(data, offset));
    this.v2 = round(this.v2, readU32(data, offset + 4));
    this.v3 = round(this.v3, readU32(data, offset + 8));
    this.v4 = round(this.v4, readU32(data, offset + 12));
  }

  digest(): number {
    let hash =
      this.totalLength >= 16
        ? (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0
        : (this.seed + PRIME5) | 0;
    hash = (hash + this.totalLength) | 0;
    let offset = 0;
    for (; offset + 4 <= this.buffered; offset += 4) {
      hash = Math.imul(rotl((hash + Math.imul(readU32(this.buffer, offset), PRIME3)) | 0, 17), PRIME4);
    }
    for (; offset < this.buffered; offset++) {
      hash = Math.imul(rotl((hash + Math.imul(this.buffer[offset], PRIME5)) | 0, 11), PRIME1);
    }
    hash ^= hash >>> 15;
    hash = Math.imul(hash, PRIME2);
    hash ^= hash >>> 13;
    hash = Math.imul(hash, PRIME3);
    hash ^= hash >>> 16;
    return hash >>> 0;
  }
}

export function xxhash32(data: Uint8Array, seed = 0): number {
  return new XxHash32(seed).update(data).digest();
}
