import { compressSync } from 'lz4-napi';
import { nodeRecord } from '#contracts/testing/node-record.js';
import type { XpraValue } from '#xpra';
import { codecForXpra, encodingsCaps, freeLiveContexts } from './xpra-capabilities.js';
import { XpraRequestError, framePixels } from './xpra-oneshot.js';

type Specs = Record<string, Record<string, Record<string, XpraValue>[]>>;

describe('the encodings answer', () => {
  const nodes = [
    nodeRecord({
      name: 'a',
      pool: 'cpu',
      codecs: ['png', 'webp', 'h264', 'vp8'],
      liveCapacity: 4,
      liveStreams: 1,
    }),
    nodeRecord({ name: 'b', pool: 'cpu', codecs: ['jpeg', 'h264', 'hevc'], liveCapacity: 2, liveStreams: 2 }),
    nodeRecord({ name: 'old', pool: 'cpu', codecs: ['vp9'] }),
  ];

  it('lists what live nodes encode, in Xpra names, with the free live capacity as max_instances', () => {
    const caps = encodingsCaps(nodes, { contexts: true, maxEdge: 8192 });
    expect(new Set((caps.encodings as Record<string, string[]>).core)).toEqual(
      new Set(['png', 'webp', 'h264', 'vp8', 'jpeg', 'h265', 'vp9']),
    );
    const video = caps.video as Specs;
    expect(Object.keys(video).sort()).toEqual(['h264', 'h265', 'vp8', 'vp9']);
    expect(Object.keys(video.h264)).toEqual(['BGRX', 'BGRA', 'RGBX', 'RGBA']);
    expect(video.h264.BGRX[0]).toMatchObject({
      encoding: 'h264',
      input_colorspace: 'BGRX',
      max_instances: 3,
      width_mask: 0xfffe,
      max_w: 8192,
    });
    expect(video.vp8.RGBA[0]).toMatchObject({ encoding: 'vp8', width_mask: 0xffff });
    expect(freeLiveContexts(nodes)).toBe(3);
  });

  it('offers no video when contexts are off or the cluster has no room for one', () => {
    expect(encodingsCaps(nodes, { contexts: false, maxEdge: 8192 }).video).toEqual({});
    const full = nodes.map((node) => ({ ...node, liveStreams: node.liveCapacity }));
    expect(encodingsCaps(full, { contexts: true, maxEdge: 8192 }).video).toEqual({});
  });

  it('maps the names Xpra asks for', () => {
    expect(['png/P', 'png/L', 'jpg', 'h265', 'vp9', 'rgb24'].map(codecForXpra)).toEqual([
      'png',
      'png',
      'jpeg',
      'hevc',
      'vp9',
      null,
    ]);
  });
});

describe('framePixels', () => {
  const layout = { width: 4, height: 2, format: 'bgrx' as const, rowstride: 24 };
  const padded = Buffer.from(Array.from({ length: 48 }, (_, i) => i));

  it('honours the rowstride: rows come back packed', async () => {
    const frame = await framePixels(padded, layout, false, 1 << 20);
    expect([...frame]).toEqual([...padded.subarray(0, 16), ...padded.subarray(24, 40)]);
  });

  it('undoes LZ4 with its size prefix', async () => {
    expect(await framePixels(compressSync(padded), layout, true, 1 << 20)).toEqual(
      await framePixels(padded, layout, false, 1 << 20),
    );
  });

  it('refuses an LZ4 block that declares more than the frame can be, before decompressing', async () => {
    const bomb = compressSync(Buffer.alloc(1 << 20));
    await expect(framePixels(bomb, layout, true, 1 << 30)).rejects.toThrow(/refused before decompressing/);
  });

  it('refuses pixels short of the layout, and a rowstride shorter than a row', async () => {
    await expect(framePixels(padded.subarray(0, 30), layout, false, 1 << 20)).rejects.toThrow(
      XpraRequestError,
    );
    await expect(framePixels(padded, { ...layout, rowstride: 8 }, false, 1 << 20)).rejects.toThrow(
      /rowstride/,
    );
  });
});
