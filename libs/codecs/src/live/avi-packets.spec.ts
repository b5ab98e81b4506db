import { AviPacketParser, AviParseError } from './avi-packets.js';

const UNKNOWN = 0xffffffff;

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value);
  return out;
}

/** A leaf chunk, padded to an even length as RIFF wants. */
function chunk(id: string, data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  return Buffer.concat([Buffer.from(id, 'latin1'), u32(body.length), body, Buffer.alloc(body.length & 1)]);
}

function list(type: string, ...children: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), ...children]);
  return Buffer.concat([Buffer.from('LIST', 'latin1'), u32(body.length), body]);
}

/** A container header as ffmpeg writes it on a pipe: size unknown (0xFFFFFFFF), children follow. */
function open(id: 'RIFF' | 'LIST', type: string): Buffer {
  return Buffer.concat([Buffer.from(id, 'latin1'), u32(UNKNOWN), Buffer.from(type, 'latin1')]);
}

const PACKETS = [
  Buffer.from([0, 0, 0, 1, 0x65]), // odd size: pad byte follows
  Buffer.alloc(0), // empty chunk, as ffmpeg writes for a skipped frame
  Buffer.from('four', 'latin1'), // ##db (uncompressed) counts too
  Buffer.from([7]),
  Buffer.from([1, 2]), // in a RIFF AVIX continuation
];

/** Header lists, odd-sized INFO, JUNK holding a fake chunk, audio, ix00, idx1 and a continuation RIFF. */
const STREAM = Buffer.concat([
  open('RIFF', 'AVI '),
  list(
    'hdrl',
    chunk('avih', Buffer.alloc(56)),
    list('strl', chunk('strh', Buffer.alloc(56)), chunk('strf', Buffer.alloc(40))),
  ),
  list('INFO', chunk('ISFT', 'Lavf59\0')),
  chunk('JUNK', Buffer.concat([Buffer.from('00dc', 'latin1'), u32(4), Buffer.alloc(20)])),
  open('LIST', 'movi'),
  chunk('00dc', PACKETS[0]),
  chunk('00dc', PACKETS[1]),
  chunk('01wb', 'abc'),
  chunk('00db', PACKETS[2]),
  chunk('ix00', Buffer.alloc(24)),
  chunk('00dc', PACKETS[3]),
  chunk('idx1', Buffer.alloc(32)),
  open('RIFF', 'AVIX'),
  open('LIST', 'movi'),
  chunk('00dc', PACKETS[4]),
]);

function parseAll(pieces: Buffer[]): Buffer[] {
  const parser = new AviPacketParser();
  return pieces.flatMap((piece) => parser.push(piece));
}

describe('AviPacketParser', () => {
  it('returns the video chunks inside movi in order, skipping everything else', () => {
    expect(parseAll([STREAM])).toEqual(PACKETS);
  });

  it('gives the same packets whatever the split: at every offset, and byte by byte', () => {
    for (let offset = 0; offset <= STREAM.length; offset++) {
      const packets = parseAll([STREAM.subarray(0, offset), STREAM.subarray(offset)]);
      if (packets.length !== PACKETS.length || !packets.every((p, i) => p.equals(PACKETS[i]))) {
        throw new Error(`split at ${offset} gave ${packets.map((p) => p.toString('hex')).join(',')}`);
      }
    }
    const bytes = Array.from(STREAM, (byte) => Buffer.from([byte]));
    expect(parseAll(bytes)).toEqual(PACKETS);
  });

  it('hands a packet out as soon as its last data byte is in, before the pad byte', () => {
    const parser = new AviPacketParser();
    const movi = STREAM.indexOf(Buffer.from('movi', 'latin1'));
    const end = STREAM.indexOf(Buffer.from('00dc', 'latin1'), movi) + 8 + PACKETS[0].length;
    expect(parser.push(STREAM.subarray(0, end - 1))).toEqual([]);
    expect(parser.push(STREAM.subarray(end - 1, end))).toEqual([PACKETS[0]]);
  });

  it('returns packets that own their bytes (not views of the pushed chunks)', () => {
    const copy = Buffer.from(STREAM);
    const [first] = parseAll([copy]);
    copy.fill(0xee);
    expect(first).toEqual(PACKETS[0]);
  });

  it.each([
    [
      'a WAVE file',
      Buffer.concat([Buffer.from('RIFF', 'latin1'), u32(100), Buffer.from('WAVEfmt ', 'latin1')]),
    ],
    ['Matroska', Buffer.from('1a45dfa3a34286810142f7810142f2810442f381', 'hex')],
    ['text', Buffer.from('ffmpeg: Unknown encoder', 'latin1')],
  ])('throws AviParseError on data that is not RIFF AVI: %s', (_name, data) => {
    const parser = new AviPacketParser();
    expect(() => parser.push(data)).toThrow(AviParseError);
    expect(() => parser.push(STREAM)).toThrow(/not a RIFF AVI stream/); // and stays failed
  });

  it('notices a wrong prefix before 12 bytes are in', () => {
    expect(() => new AviPacketParser().push(Buffer.from('RIFX', 'latin1'))).toThrow(AviParseError);
    expect(new AviPacketParser().push(Buffer.from('RIF', 'latin1'))).toEqual([]);
  });

  it('throws on a chunk id that is not text (stream out of step) and on oversized packets', () => {
    const garbage = Buffer.concat([
      open('RIFF', 'AVI '),
      open('LIST', 'movi'),
      Buffer.from([0, 1, 2, 3, 4, 0, 0, 0]),
    ]);
    expect(() => new AviPacketParser().push(garbage)).toThrow(/bad AVI chunk id 0x00010203 at byte 24/);
    const big = Buffer.concat([open('RIFF', 'AVI '), open('LIST', 'movi'), chunk('00dc', Buffer.alloc(100))]);
    expect(() => new AviPacketParser(64).push(big)).toThrow(/100 bytes exceeds 64/);
  });
});
