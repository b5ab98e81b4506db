import type { Codec, NodeRecord, Pool } from '#contracts';
import { nodeRecord } from '#contracts/testing/node-record.js';
import { route } from './routing.js';

function node(name: string, pool: Pool, codecs: Codec[], gpuCodecs: Codec[] = []): NodeRecord {
  return nodeRecord({ name, pool, codecs, gpuCodecs });
}

describe('route', () => {
  const cpu = node('c', 'cpu', ['jpeg', 'h264']);
  const gpu = node('g', 'gpu', ['jpeg', 'h264', 'hevc'], ['h264', 'hevc']);

  it('answers no-nodes when nothing is alive', () => {
    expect(route(['jpeg'], 'auto', [])).toMatchObject({ ok: false, reason: 'no-nodes' });
  });

  it('sends auto work to the gpu pool only where a gpu node proved the codec', () => {
    expect(route(['h264'], 'auto', [cpu, gpu])).toEqual({ ok: true, codec: 'h264', pool: 'gpu' });
    expect(route(['jpeg'], 'auto', [cpu, gpu])).toEqual({ ok: true, codec: 'jpeg', pool: 'cpu' });
    expect(route(['h264'], 'auto', [cpu])).toEqual({ ok: true, codec: 'h264', pool: 'cpu' });
  });

  it('honours an explicit pool, and says when no node of it can encode the codec', () => {
    expect(route(['h264'], 'cpu', [cpu, gpu])).toEqual({ ok: true, codec: 'h264', pool: 'cpu' });
    expect(route(['h264'], 'gpu', [cpu])).toMatchObject({
      ok: false,
      reason: 'unsupported',
      message: expect.stringMatching(/no live gpu node can encode h264/),
    });
  });

  it('picks the first codec of accept that a live node can encode, and lists what is offered otherwise', () => {
    expect(route(['av1', 'hevc', 'h264'], 'auto', [cpu, gpu])).toEqual({
      ok: true,
      codec: 'hevc',
      pool: 'gpu',
    });
    expect(route(['av1', 'vp9'], 'auto', [cpu])).toEqual({
      ok: false,
      reason: 'unsupported',
      message: 'no live node can encode av1, vp9; the cluster offers: h264, jpeg',
      available: ['h264', 'jpeg'],
    });
  });

  describe('with POOL_CODECS (scale from zero)', () => {
    const served = { cpu: ['jpeg', 'h264'], gpu: ['h264'] } as const;

    it('queues work for a configured codec while no node is alive, gpu first for auto', () => {
      expect(route(['jpeg'], 'auto', [], served)).toEqual({ ok: true, codec: 'jpeg', pool: 'cpu' });
      expect(route(['h264'], 'auto', [], served)).toEqual({ ok: true, codec: 'h264', pool: 'gpu' });
      expect(route(['h264'], 'cpu', [], served)).toEqual({ ok: true, codec: 'h264', pool: 'cpu' });
    });

    it('sends auto work to the configured gpu pool even while only cpu nodes are alive (gpu demand shows)', () => {
      expect(route(['h264'], 'auto', [cpu], served)).toEqual({ ok: true, codec: 'h264', pool: 'gpu' });
    });

    it('trusts a live gpu node over the configuration: gpu work only for the codecs it proved', () => {
      const hevcOnly = node('g2', 'gpu', ['jpeg', 'h264', 'hevc'], ['hevc']);
      expect(route(['h264'], 'auto', [cpu, hevcOnly], served)).toEqual({
        ok: true,
        codec: 'h264',
        pool: 'cpu',
      });
      expect(route(['hevc'], 'auto', [cpu, hevcOnly], served)).toEqual({
        ok: true,
        codec: 'hevc',
        pool: 'gpu',
      });
    });

    it('still refuses (422) a codec that neither a live node nor the configuration serves', () => {
      expect(route(['av1'], 'auto', [], served)).toEqual({
        ok: false,
        reason: 'unsupported',
        message: 'no live or configured (POOL_CODECS) node can encode av1; the cluster offers: h264, jpeg',
        available: ['h264', 'jpeg'],
      });
      expect(route(['jpeg'], 'gpu', [], served)).toMatchObject({ ok: false, reason: 'unsupported' });
    });
  });
});
