/**
 * rencodeplus, the serialisation Xpra uses on the wire (`encoders: ["rencodeplus"]`): typed values in
 * a compact byte form, with byte strings carried raw. No npm package exists; this is the subset a
 * server needs, both ways, with every read bounds-checked (a malformed packet throws RencodeError,
 * which closes that connection only).
 */

export type XpraValue = number | bigint | string | boolean | null | Buffer | XpraValue[] | XpraDict;

export interface XpraDict {
  [key: string]: XpraValue;
}

export class RencodeError extends Error {}

// Type codes (rencode.py / rencodeplus.pyx).
const CHR_LIST = 59;
const CHR_DICT = 60;
const CHR_INT = 61;
const CHR_INT1 = 62;
const CHR_INT2 = 63;
const CHR_INT4 = 64;
const CHR_INT8 = 65;
const CHR_FLOAT32 = 66;
const CHR_FLOAT64 = 44;
const CHR_TRUE = 67;
const CHR_FALSE = 68;
const CHR_NONE = 69;
const CHR_TERM = 127;
const INT_POS_FIXED_COUNT = 44;
const INT_NEG_FIXED_START = 70;
const INT_NEG_FIXED_COUNT = 32;
const DICT_FIXED_START = 102;
const DICT_FIXED_COUNT = 25;
const STR_FIXED_START = 128;
const STR_FIXED_COUNT = 64;
const LIST_FIXED_START = STR_FIXED_START + STR_FIXED_COUNT;
const LIST_FIXED_COUNT = 64;

/** Deeper nesting than any Xpra packet has: a guard against stack exhaustion by crafted input. */
const MAX_DEPTH = 32;
/** Digits of a length prefix ("123:" / "123/") or a big integer (rencode's own MAX_INT_LENGTH). */
const MAX_DIGITS = 64;

const SMALL_PART = 4096;

/**
 * Collects the encoded bytes: small values in one growing buffer, byte strings of SMALL_PART or more
 * as references to the caller's buffers, so a frame or a packet is never copied to be framed.
 */
class Output {
  readonly parts: Buffer[] = [];
  private scratch = Buffer.allocUnsafe(256);
  private used = 0;

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.scratch.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, this.used + bytes));
    this.scratch.copy(next, 0, 0, this.used);
    this.scratch = next;
  }

  byte(value: number): void {
    this.reserve(1);
    this.scratch[this.used++] = value;
  }

  ascii(text: string): void {
    this.reserve(text.length);
    this.used += this.scratch.write(text, this.used, 'latin1');
  }

  bytes(data: Uint8Array): void {
    if (data.length >= SMALL_PART) {
      this.flush();
      this.parts.push(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length));
      return;
    }
    this.reserve(data.length);
    this.scratch.set(data, this.used);
    this.used += data.length;
  }

  fixed(code: number, size: number, write: (buffer: Buffer, at: number) => void): void {
    this.reserve(1 + size);
    this.scratch[this.used] = code;
    write(this.scratch, this.used + 1);
    this.used += 1 + size;
  }

  flush(): void {
    if (this.used === 0) return;
    this.parts.push(this.scratch.subarray(0, this.used));
    this.scratch = Buffer.allocUnsafe(Math.max(256, this.scratch.length - this.used));
    this.used = 0;
  }
}

function encodeInteger(value: number | bigint, out: Output): void {
  if (typeof value === 'number' && value >= 0 && value < INT_POS_FIXED_COUNT) return out.byte(value);
  if (typeof value === 'number' && value < 0 && value >= -INT_NEG_FIXED_COUNT)
    return out.byte(INT_NEG_FIXED_START - 1 - value);
  const big = BigInt(value);
  if (big >= -128n && big < 128n) return out.fixed(CHR_INT1, 1, (b, at) => b.writeInt8(Number(big), at));
  if (big >= -32768n && big < 32768n)
    return out.fixed(CHR_INT2, 2, (b, at) => b.writeInt16BE(Number(big), at));
  if (big >= -(2n ** 31n) && big < 2n ** 31n)
    return out.fixed(CHR_INT4, 4, (b, at) => b.writeInt32BE(Number(big), at));
  if (big >= -(2n ** 63n) && big < 2n ** 63n)
    return out.fixed(CHR_INT8, 8, (b, at) => b.writeBigInt64BE(big, at));
  out.byte(CHR_INT);
  out.ascii(big.toString());
  out.byte(CHR_TERM);
}

function encodeString(value: string, out: Output): void {
  const data = Buffer.from(value, 'utf8');
  if (data.length < STR_FIXED_COUNT) out.byte(STR_FIXED_START + data.length);
  else out.ascii(`${data.length}:`);
  out.bytes(data);
}

function encodeValue(value: XpraValue | undefined, out: Output, depth: number): void {
  if (depth > MAX_DEPTH) throw new RencodeError(`values nested deeper than ${MAX_DEPTH} levels`);
  if (value === null || value === undefined) return out.byte(CHR_NONE);
  if (value === true) return out.byte(CHR_TRUE);
  if (value === false) return out.byte(CHR_FALSE);
  if (typeof value === 'bigint') return encodeInteger(value, out);
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return encodeInteger(value, out);
    return out.fixed(CHR_FLOAT64, 8, (b, at) => b.writeDoubleBE(value, at));
  }
  if (typeof value === 'string') return encodeString(value, out);
  if (value instanceof Uint8Array) {
    out.ascii(`${value.length}/`);
    return out.bytes(value);
  }
  if (Array.isArray(value)) {
    const fixed = value.length < LIST_FIXED_COUNT;
    out.byte(fixed ? LIST_FIXED_START + value.length : CHR_LIST);
    for (const item of value) encodeValue(item, out, depth + 1);
    if (!fixed) out.byte(CHR_TERM);
    return;
  }
  const entries = Object.entries(value);
  const fixed = entries.length < DICT_FIXED_COUNT;
  out.byte(fixed ? DICT_FIXED_START + entries.length : CHR_DICT);
  for (const [key, item] of entries) {
    encodeString(key, out);
    encodeValue(item, out, depth + 1);
  }
  if (!fixed) out.byte(CHR_TERM);
}

/** The encoded value as a list of buffers (large byte strings are the caller's own, not copies). */
export function rencodeParts(value: XpraValue): Buffer[] {
  const out = new Output();
  encodeValue(value, out, 0);
  out.flush();
  return out.parts;
}

export function rencode(value: XpraValue): Buffer {
  return Buffer.concat(rencodeParts(value));
}

class Reader {
  constructor(
    readonly data: Buffer,
    public at = 0,
  ) {}

  need(bytes: number, what: string): void {
    if (this.at + bytes > this.data.length)
      throw new RencodeError(
        `truncated data: ${what} at offset ${this.at} runs past the end (${this.data.length} bytes)`,
      );
  }

  /** ASCII digits up to `stop` (and skips it): a length prefix or a big integer. */
  digits(stops: readonly number[], what: string): { text: string; stop: number } {
    const start = this.at;
    for (let i = start; i < this.data.length && i - start <= MAX_DIGITS + 1; i++) {
      const c = this.data[i];
      if (stops.includes(c)) {
        this.at = i + 1;
        return { text: this.data.toString('latin1', start, i), stop: c };
      }
    }
    throw new RencodeError(`malformed ${what} at offset ${start}`);
  }
}

function decodeValue(r: Reader, depth: number): XpraValue {
  if (depth > MAX_DEPTH) throw new RencodeError(`values nested deeper than ${MAX_DEPTH} levels`);
  r.need(1, 'a type code');
  const data = r.data;
  const t = data[r.at];
  if (t < INT_POS_FIXED_COUNT) {
    r.at++;
    return t;
  }
  if (t >= INT_NEG_FIXED_START && t < INT_NEG_FIXED_START + INT_NEG_FIXED_COUNT) {
    r.at++;
    return INT_NEG_FIXED_START - 1 - t;
  }
  if (t >= STR_FIXED_START && t < LIST_FIXED_START) {
    const length = t - STR_FIXED_START;
    r.need(1 + length, 'a string');
    const text = data.toString('utf8', r.at + 1, r.at + 1 + length);
    r.at += 1 + length;
    return text;
  }
  if (t >= LIST_FIXED_START) {
    r.at++;
    const items: XpraValue[] = [];
    for (let i = 0; i < t - LIST_FIXED_START; i++) items.push(decodeValue(r, depth + 1));
    return items;
  }
  if (t >= DICT_FIXED_START && t < DICT_FIXED_START + DICT_FIXED_COUNT) {
    r.at++;
    return decodeDict(r, depth, t - DICT_FIXED_START);
  }
  if (t >= 48 && t <= 57) {
    const { text, stop } = r.digits([58, 47], 'a length prefix');
    const length = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(length))
      throw new RencodeError(`malformed length prefix "${text}"`);
    r.need(length, stop === 47 ? 'a byte string' : 'a string');
    const start = r.at;
    r.at += length;
    // A view, not a copy: frames stay where the packet was read.
    return stop === 47 ? data.subarray(start, start + length) : data.toString('utf8', start, start + length);
  }
  r.at++;
  switch (t) {
    case CHR_INT1:
      r.need(1, 'an 8-bit integer');
      return data.readInt8((r.at += 1) - 1);
    case CHR_INT2:
      r.need(2, 'a 16-bit integer');
      return data.readInt16BE((r.at += 2) - 2);
    case CHR_INT4:
      r.need(4, 'a 32-bit integer');
      return data.readInt32BE((r.at += 4) - 4);
    case CHR_INT8: {
      r.need(8, 'a 64-bit integer');
      const big = data.readBigInt64BE((r.at += 8) - 8);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(big)
        : big;
    }
    case CHR_INT: {
      const { text } = r.digits([CHR_TERM], 'a big integer');
      if (!/^-?\d+$/.test(text)) throw new RencodeError(`malformed big integer "${text}"`);
      const big = BigInt(text);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(big)
        : big;
    }
    case CHR_FLOAT32:
      r.need(4, 'a 32-bit float');
      return data.readFloatBE((r.at += 4) - 4);
    case CHR_FLOAT64:
      r.need(8, 'a 64-bit float');
      return data.readDoubleBE((r.at += 8) - 8);
    case CHR_TRUE:
      return true;
    case CHR_FALSE:
      return false;
    case CHR_NONE:
      return null;
    case CHR_LIST: {
      const items: XpraValue[] = [];
      for (;;) {
        r.need(1, 'a list');
        if (data[r.at] === CHR_TERM) {
          r.at++;
          return items;
        }
        items.push(decodeValue(r, depth + 1));
      }
    }
    case CHR_DICT:
      return decodeDict(r, depth, -1);
    default:
      throw new RencodeError(`unknown type code ${t} at offset ${r.at - 1}`);
  }
}

/** `count` entries, or entries up to the terminator when `count` is -1. */
function decodeDict(r: Reader, depth: number, count: number): XpraDict {
  // No prototype: a key named "__proto__" is data like any other.
  const dict = Object.create(null) as XpraDict;
  for (let i = 0; count < 0 || i < count; i++) {
    if (count < 0) {
      r.need(1, 'a dict');
      if (r.data[r.at] === CHR_TERM) {
        r.at++;
        break;
      }
    }
    const key = decodeValue(r, depth + 1);
    if (typeof key !== 'string' && typeof key !== 'number' && !Buffer.isBuffer(key))
      throw new RencodeError(`a dict key must be a string or a number, got ${describe(key)}`);
    dict[Buffer.isBuffer(key) ? key.toString('utf8') : String(key)] = decodeValue(r, depth + 1);
  }
  return dict;
}

function describe(value: XpraValue): string {
  if (value === null) return 'None';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a dict' : typeof value;
}

/** Decodes exactly one value filling all of `data`; byte strings in the result are views of `data`. */
export function rdecode(data: Buffer): XpraValue {
  const reader = new Reader(data);
  const value = decodeValue(reader, 0);
  if (reader.at !== data.length)
    throw new RencodeError(`${data.length - reader.at} bytes of garbage after the value`);
  return value;
}
