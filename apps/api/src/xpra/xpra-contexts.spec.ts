import { jest } from '@jest/globals';
import type { XpraValue } from '#xpra';
import {
  BAND_RESTART_MS,
  FRAME_BUDGET_MS,
  XpraVideoContexts,
  type ContextOutput,
  type ContextStream,
  type ContextStreamParams,
} from './xpra-contexts.js';

/** A stream whose packets the test releases by hand. */
class FakeStream implements ContextStream {
  readonly id = 'stream';
  readonly node = 'node';
  readonly sent: Buffer[] = [];
  keyframeRequests: number[] = [];
  closed = false;
  private next = 0;
  private queue: ContextOutput[] = [];
  private wake: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(readonly params: ContextStreamParams) {}

  async send(frame: Buffer): Promise<number> {
    this.sent.push(frame);
    return this.next++;
  }

  requestKeyframe(): void {
    this.keyframeRequests.push(this.next);
  }

  /** The packet of frame `frame`. */
  emit(frame: number, keyframe = frame === 0): void {
    this.queue.push({ frame, keyframe, data: Buffer.from(`packet-${frame}`) });
    this.wake?.();
  }

  fail(error: Error): void {
    this.failure = error;
    this.wake?.();
  }

  get outputs(): AsyncIterable<ContextOutput> {
    return this.iterate();
  }

  private async *iterate(): AsyncGenerator<ContextOutput> {
    for (;;) {
      while (this.queue.length > 0) yield this.queue.shift() as ContextOutput;
      if (this.failure) throw this.failure;
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
  }
}

const W = 8;
const H = 4;

function setup(options: { failOpen?: boolean } = {}) {
  const sent: XpraValue[][] = [];
  const streams: FakeStream[] = [];
  let now = 0;
  const contexts = new XpraVideoContexts({
    open: async (params) => {
      if (options.failOpen) throw new Error('no live node can take it');
      const stream = new FakeStream(params);
      streams.push(stream);
      return stream;
    },
    owner: { tenant: 'default' },
    send: (packet) => sent.push(packet),
    peer: 'test',
    maxDecompressedBytes: 1 << 20,
    maxFramePixels: 1 << 20,
    metrics: null,
    logger: { log: () => undefined, warn: () => undefined, error: () => undefined },
    now: () => now,
  });
  const compress = (seq: number, quality = 50, speed = 50, format = 'BGRX') =>
    contexts.compress(
      [
        'context-compress',
        seq,
        {
          x: 0,
          y: 0,
          width: W,
          height: H,
          depth: 24,
          bytesperpixel: 4,
          planes: 0,
          rowstride: W * 4 + 8,
          pixel_format: format,
        },
        Buffer.alloc((W * 4 + 8) * H, 1),
        { quality, speed },
        {},
      ],
      now,
    );
  return {
    contexts,
    sent,
    streams,
    compress,
    advance: async (ms: number) => {
      now += ms;
      await jest.advanceTimersByTimeAsync(ms);
    },
    of: (type: string) => sent.filter((packet) => packet[0] === type),
  };
}

describe('XpraVideoContexts', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('opens a stream per context and answers each frame with its packet, in Xpra form', async () => {
    const t = setup();
    t.contexts.request(['context-request', 1, 'x264', 'h264', W, H, 'BGRX', { quality: 50, speed: 50 }]);
    await t.advance(0);
    expect(t.of('context-response')).toEqual([['context-response', 1, true, '', expect.any(Object)]]);
    expect(t.streams[0].params).toMatchObject({ codec: 'h264', width: W, height: H, format: 'bgrx' });
    t.compress(1);
    await t.advance(0);
    // the rowstride's padding is dropped: the stream gets packed rows
    expect(t.streams[0].sent[0].length).toBe(W * 4 * H);
    t.streams[0].emit(0);
    await t.advance(5);
    t.compress(1);
    await t.advance(0);
    t.streams[0].emit(1);
    await t.advance(5);
    const data = t.of('context-data');
    expect(
      data.map((p) => [p[1], (p[2] as Buffer).toString(), (p[3] as Record<string, unknown>).type]),
    ).toEqual([
      [1, 'packet-0', 'IDR'],
      [1, 'packet-1', 'P'],
    ]);
    expect((data[1][3] as Record<string, unknown>).frame).toBe(1);
  });

  it('answers an error at the deadline, never the late packet, and asks a keyframe for the next frame', async () => {
    const t = setup();
    t.contexts.request(['context-request', 2, 'x264', 'h264', W, H, 'BGRX', {}]);
    await t.advance(0);
    t.compress(2);
    await t.advance(0);
    await t.advance(FRAME_BUDGET_MS - 1);
    expect(t.of('context-data')).toHaveLength(0);
    await t.advance(1);
    expect(t.of('context-data')).toEqual([
      ['context-data', 2, Buffer.alloc(0), { error: expect.any(String) }, {}],
    ]);
    t.streams[0].emit(0); // too late: Xpra took the error as this frame's reply
    await t.advance(5);
    expect(t.of('context-data')).toHaveLength(1);
    t.compress(2);
    await t.advance(0);
    expect(t.streams[0].keyframeRequests).toEqual([1]);
    t.streams[0].emit(1, true);
    await t.advance(5);
    const last = t.of('context-data').at(-1) as XpraValue[];
    expect([(last[2] as Buffer).toString(), (last[3] as Record<string, unknown>).type]).toEqual([
      'packet-1',
      'IDR',
    ]);
  });

  it('refuses a context the cluster cannot serve, and frames of unknown contexts', async () => {
    const t = setup({ failOpen: true });
    t.contexts.request(['context-request', 3, 'x264', 'h264', W, H, 'BGRX', {}]);
    t.contexts.request(['context-request', 4, 'x', 'png', W, H, 'BGRX', {}]);
    t.contexts.request(['context-request', 5, 'x', 'h264', W, H, 'YUV420P', {}]);
    await t.advance(0);
    expect(t.of('context-response').map((p) => [p[1], p[2]])).toEqual([
      [4, false],
      [5, false],
      [3, false],
    ]);
    t.compress(3);
    expect(t.of('context-data')).toEqual([
      ['context-data', 3, Buffer.alloc(0), { error: 'context not found' }, {}],
    ]);
  });

  it('answers every frame in flight with an error when the stream fails for good, then refuses the context', async () => {
    const t = setup();
    t.contexts.request(['context-request', 6, 'x264', 'vp8', W, H, 'BGRA', {}]);
    await t.advance(0);
    t.compress(6, 50, 50, 'BGRA');
    await t.advance(0);
    t.streams[0].fail(new Error('no node can take the stream'));
    await t.advance(1);
    expect(t.of('context-data')).toHaveLength(1);
    expect((t.of('context-data')[0][3] as Record<string, unknown>).error).toMatch(/no longer serve/);
    t.compress(6, 50, 50, 'BGRA');
    expect(t.of('context-data')).toHaveLength(2);
  });

  it('restarts the encoder when the quality band changes, at most every few seconds', async () => {
    const t = setup();
    t.contexts.request(['context-request', 7, 'x264', 'h264', W, H, 'BGRX', { quality: 50 }]);
    await t.advance(0);
    const frame = async (quality: number) => {
      t.compress(7, quality);
      await t.advance(0);
      const stream = t.streams.at(-1) as FakeStream;
      stream.emit(stream.sent.length - 1);
      await t.advance(10);
    };
    await frame(55); // same band
    await frame(95); // another band, but too soon after the start
    expect(t.streams).toHaveLength(1);
    await t.advance(BAND_RESTART_MS);
    await frame(95);
    expect(t.streams).toHaveLength(2);
    expect(t.streams[1].params.quality).toBeGreaterThan(t.streams[0].params.quality);
    await t.advance(100);
    expect(t.streams[0].closed).toBe(true);
    expect(t.of('context-data').every((p) => (p[2] as Buffer).length > 0)).toBe(true);
  });
});
