import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RencodeError, rdecode, rencode, type XpraValue } from './rencode.js';

const captures = JSON.parse(
  readFileSync(path.join(import.meta.dirname, 'testing', 'captures.json'), 'utf8'),
) as Record<string, string>;

/** The value that `captures.mixed` holds (python: see testing/README.md). */
function mixedValue(): XpraValue {
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const dict = (n: number) => Object.fromEntries(range(n).map((i) => [String(i), i]));
  return [
    'mixed',
    0,
    43,
    -1,
    -32,
    -33,
    127,
    -128,
    128,
    32767,
    -32768,
    32768,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 31,
    2n ** 62n,
    -(2n ** 62n),
    2n ** 70n,
    1.5,
    -0.25,
    true,
    false,
    null,
    '',
    'x'.repeat(63),
    'y'.repeat(64),
    'é'.repeat(40),
    Buffer.alloc(0),
    Buffer.from('00ff'.repeat(3000), 'hex'),
    range(63),
    range(64),
    dict(24),
    dict(25),
    [[[[1]]]],
  ];
}

describe('rencodeplus', () => {
  it('encodes every type exactly as Xpra does', () => {
    expect(rencode(mixedValue()).toString('hex')).toBe(captures.mixed);
  });

  it("decodes Xpra's bytes back to the same values", () => {
    // Integers beyond Number.MAX_SAFE_INTEGER come back as bigints, as they went in.
    expect(rdecode(Buffer.from(captures.mixed, 'hex'))).toEqual(mixedValue());
  });

  it("decodes the remote module's hello of the capture", () => {
    const wire = Buffer.from(captures.remoteHello, 'hex');
    const [type, caps] = rdecode(wire.subarray(8)) as [string, Record<string, XpraValue>];
    expect(type).toBe('hello');
    expect(caps.wants).toEqual(['encodings', 'video']);
    expect(caps.version).toBe('6.');
    expect(caps.lz4).toEqual({ '': true });
  });

  it('round-trips byte strings as views, strings as text', () => {
    const frame = Buffer.alloc(10_000, 7);
    const decoded = rdecode(rencode(['context-compress', 1, {}, frame])) as XpraValue[];
    expect(Buffer.isBuffer(decoded[3])).toBe(true);
    expect(decoded[3]).toEqual(frame);
  });

  it.each([
    ['truncated string', Buffer.from([0x85, 0x68, 0x65])],
    ['truncated list', Buffer.from([0xc3, 0x01])],
    ['length past the end', Buffer.from('100/abc', 'latin1')],
    ['unterminated list', Buffer.from([59, 1, 2])],
    ['unknown type code', Buffer.from([45])],
    ['garbage after the value', Buffer.from([1, 2])],
    ['absurd length prefix', Buffer.from('9'.repeat(70) + ':', 'latin1')],
    ['length beyond safe integers', Buffer.from('9'.repeat(30) + ':', 'latin1')],
    ['a list as a dict key', Buffer.from([0x67, 0xc0, 0x01])],
    ['nesting past the limit', Buffer.alloc(200, 0xc1)],
    ['empty input', Buffer.alloc(0)],
  ])('refuses %s with a RencodeError', (_name, data) => {
    expect(() => rdecode(data)).toThrow(RencodeError);
  });

  it('keeps a "__proto__" key as data', () => {
    const decoded = rdecode(Buffer.from([0x67, 0x89, ...Buffer.from('__proto__'), 0x01])) as Record<
      string,
      XpraValue
    >;
    expect(Object.keys(decoded)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
