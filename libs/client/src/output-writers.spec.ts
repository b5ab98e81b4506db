import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ivfFileHeader, ivfFrameHeader } from './ivf.js';
import { extensionFor, jobOutputName, OutputWriter, placeOutput } from './output-writers.js';

const live = { mode: 'live' as const, width: 64, height: 48, fps: 30 };
const batch = { mode: 'batch' as const, width: 64, height: 48, fps: 30 };

describe('placeOutput', () => {
  it('names each kind of output', () => {
    expect(placeOutput(live, { seq: 3, index: 0, frame: 9, contentType: 'video/h264' })).toEqual({
      kind: 'annex-b',
      file: 'stream.h264',
    });
    expect(placeOutput(live, { seq: 3, index: 0, frame: 9, contentType: 'video/h265' })).toEqual({
      kind: 'annex-b',
      file: 'stream.h265',
    });
    expect(placeOutput(live, { seq: 0, index: 0, frame: 0, contentType: 'video/av1' })).toEqual({
      kind: 'ivf',
      file: 'stream.ivf',
      codec: 'av1',
    });
    expect(placeOutput(batch, { seq: 12, index: 0, contentType: 'video/mp4' })).toEqual({
      kind: 'file',
      file: 'batch-000012.mp4',
    });
    expect(placeOutput(batch, { seq: 12, index: 1, contentType: 'video/webm' }).file).toBe(
      'batch-000012-1.webm',
    );
    expect(placeOutput(batch, { seq: 2, index: 1, frame: 41, contentType: 'image/jpeg' }).file).toBe(
      'frame-000041.jpg',
    );
    expect(placeOutput(live, { seq: 2, index: 1, frame: 41, contentType: 'image/webp' }).file).toBe(
      'frame-000041.webp',
    );
    expect(placeOutput(batch, { seq: 2, index: 1, contentType: 'image/png' }).file).toBe(
      'batch-000002-1.png',
    );
    expect(placeOutput(batch, { seq: 2, index: 0, contentType: 'video/h264' }).file).toBe(
      'batch-000002.h264',
    );
  });

  it('maps content types to extensions', () => {
    expect(extensionFor('image/avif')).toBe('avif');
    expect(extensionFor('video/mp4; codecs="avc1"')).toBe('mp4');
    expect(extensionFor('application/x-unknown')).toBe('bin');
    expect(jobOutputName('image/jpeg', 3)).toBe('frame-000003.jpg');
    expect(jobOutputName('video/webm', 0)).toBe('output-0.webm');
  });
});

describe('OutputWriter', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'client-out-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('concatenates live H.264 Annex B packets into stream.h264, in order', async () => {
    const writer = new OutputWriter(join(dir, 'out'), live);
    const packets = [
      Buffer.from([0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 4, 5]),
      Buffer.from([0, 0, 0, 1, 0x41, 6]),
      Buffer.from([0, 0, 0, 1, 0x41, 7, 8]),
    ];
    await Promise.all(
      packets.map((data, frame) =>
        writer.write({ seq: frame, index: 0, frame, contentType: 'video/h264' }, data),
      ),
    );
    await writer.close();
    expect(readdirSync(join(dir, 'out'))).toEqual(['stream.h264']);
    expect(readFileSync(join(dir, 'out', 'stream.h264'))).toEqual(Buffer.concat(packets));
    expect(writer.bytes).toBe(Buffer.concat(packets).length);
    expect(writer.files).toEqual([join(dir, 'out', 'stream.h264')]);
  });

  it('writes live VP9 packets as IVF: file header (with the final frame count) and a header per frame', async () => {
    const writer = new OutputWriter(dir, live);
    const packets = [Buffer.from('key-frame-bytes'), Buffer.from('p1'), Buffer.from('p-two')];
    for (const [i, data] of packets.entries()) {
      await writer.write({ seq: i, index: 0, frame: 10 + i, contentType: 'video/vp9' }, data);
    }
    await writer.close();
    const file = readFileSync(join(dir, 'stream.ivf'));
    const expected = Buffer.concat([
      ivfFileHeader('vp9', 64, 48, 30, 3),
      ...packets.flatMap((data, i) => [ivfFrameHeader(data.length, 10 + i), data]),
    ]);
    expect(file).toEqual(expected);
    expect(file.subarray(0, 4).toString('latin1')).toBe('DKIF');
    expect(file.subarray(8, 12).toString('latin1')).toBe('VP90');
    expect(file.readUInt32LE(24)).toBe(3);
    expect(file.readUInt32LE(32)).toBe(packets[0].length);
    expect(Number(file.readBigUInt64LE(36))).toBe(10);
  });

  it('writes batch segments and images as files of their own', async () => {
    const writer = new OutputWriter(dir, batch);
    await writer.write({ seq: 0, index: 0, contentType: 'video/mp4' }, Buffer.from('mp4-0'));
    await writer.write({ seq: 1, index: 0, contentType: 'video/mp4' }, Buffer.from('mp4-1'));
    await writer.write({ seq: 2, index: 0, frame: 7, contentType: 'image/png' }, Buffer.from('png'));
    await writer.close();
    expect(readdirSync(dir).sort()).toEqual(['batch-000000.mp4', 'batch-000001.mp4', 'frame-000007.png']);
    expect(readFileSync(join(dir, 'batch-000001.mp4')).toString()).toBe('mp4-1');
  });
});
