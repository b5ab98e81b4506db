import { AsyncQueue } from './async-queue.js';
import { syntheticSource, rawFileSource } from './frame-source.js';
import { formatNodesTable } from './nodes-table.js';
import { orderedMap } from './ordered.js';
import { formatProgress, progressBar, ProgressReporter } from './progress.js';
import { BatchLatency, percentile } from './stats.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeRecord } from '#contracts';

describe('percentile and BatchLatency', () => {
  it('uses the nearest rank', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5], 99)).toBe(5);
    expect(percentile([4, 1, 3, 2], 50)).toBe(2);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
  });

  it('measures from the submit call to the last output event, whichever order they are recorded in', () => {
    const latency = new BatchLatency();
    latency.output(0, 1100); // events of batch 0 before its submit call returned
    latency.output(0, 1150);
    latency.done(0, 1160);
    latency.submitted(0, 1000);
    latency.submitted(1, 2000);
    latency.done(1, 2300); // no outputs: the batch event
    latency.submitted(2, 3000);
    latency.output(2, 3010);
    latency.done(2, 3500, true); // failed: not counted
    latency.submitted(3, 4000); // not delivered yet
    expect(latency.latencies()).toEqual([150, 300]);
    expect(latency.summary()).toEqual({ p50: 150, p99: 300 });
  });
});

describe('progress', () => {
  it('formats the bar and the line', () => {
    expect(progressBar(5, 10, 10)).toBe('[#####.....] 5/10');
    expect(progressBar(0, 0, 4)).toBe('[....] 0/0');
    expect(
      formatProgress({
        delivered: 60,
        submitted: 90,
        total: 120,
        elapsedMs: 2000,
        p50Ms: 41.6,
        failovers: 1,
      }),
    ).toBe('[############............] 60/120 delivered, 90 submitted, 30.0 fps, p50 42 ms, 1 failover(s)');
    expect(
      formatProgress({
        delivered: 3,
        submitted: 3,
        elapsedMs: 0,
        p50Ms: null,
        failovers: 0,
        failedBatches: 2,
      }),
    ).toBe('3 frames delivered, 3 submitted, 0.0 fps, p50 -, 2 batch(es) failed');
  });

  it('redraws one line on a terminal and throttles plain log lines', () => {
    let t = 0;
    const tty: string[] = [];
    const bar = new ProgressReporter({ write: (s: string) => tty.push(s) }, { tty: true, now: () => t });
    bar.update('a');
    bar.update('b'); // throttled
    t = 200;
    bar.update('c');
    bar.log('hello');
    bar.finish();
    expect(tty).toEqual(['\r\x1b[Ka', '\r\x1b[Kc', '\r\x1b[Khello\n', 'c', '\r\x1b[Kc\n']);
    const plain: string[] = [];
    const log = new ProgressReporter({ write: (s: string) => plain.push(s) }, { tty: false, now: () => t });
    log.update('x');
    log.update('y');
    log.log('note');
    log.finish();
    expect(plain).toEqual(['x\n', 'note\n', 'y\n']);
    const once: string[] = [];
    const last = new ProgressReporter({ write: (s: string) => once.push(s) }, { tty: false, now: () => t });
    last.update('done', true);
    last.finish();
    expect(once).toEqual(['done\n']);
  });
});

describe('orderedMap', () => {
  it('runs ahead but yields in order', async () => {
    async function* source() {
      for (let i = 0; i < 6; i++) yield i;
    }
    const started: number[] = [];
    const results: number[] = [];
    for await (const value of orderedMap(
      source(),
      async (i) => {
        started.push(i);
        await new Promise((resolve) => setTimeout(resolve, (6 - i) * 3));
        return i * 10;
      },
      3,
    )) {
      results.push(value);
    }
    expect(results).toEqual([0, 10, 20, 30, 40, 50]);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('passes on a failure in order', async () => {
    async function* source() {
      yield 1;
      yield 2;
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const value of orderedMap(
          source(),
          async (i) => (i === 2 ? Promise.reject(new Error('two')) : i),
          2,
        )) {
          seen.push(value);
        }
      })(),
    ).rejects.toThrow('two');
    expect(seen).toEqual([1]);
  });
});

describe('AsyncQueue', () => {
  it('delivers pushed items, then the failure; signals high and low water', async () => {
    const marks: string[] = [];
    const queue = new AsyncQueue<number>({
      highWaterMark: 1,
      onHigh: () => marks.push('high'),
      onLow: () => marks.push('low'),
    });
    queue.push(1);
    queue.push(2);
    queue.fail(new Error('closed'));
    queue.push(3);
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const item of queue) seen.push(item);
      })(),
    ).rejects.toThrow('closed');
    expect(seen).toEqual([1, 2]);
    expect(marks).toEqual(['high', 'low']);
  });
});

describe('frame sources', () => {
  it('batches synthetic frames', async () => {
    const source = syntheticSource(5, 8, 4, 'bgr');
    const batches = [];
    for await (const batch of source.batches(2)) batches.push(batch);
    expect(batches.map((b) => [b.frames, b.firstFrame, b.body.length])).toEqual([
      [2, 0, 2 * 8 * 4 * 3],
      [2, 2, 2 * 8 * 4 * 3],
      [1, 4, 8 * 4 * 3],
    ]);
  });

  it('reads a raw file a batch at a time and rejects a partial frame', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'client-src-'));
    try {
      const file = join(dir, 'f.raw');
      const frames = Buffer.from(Array.from({ length: 3 * 2 * 2 * 4 }, (_, i) => i));
      writeFileSync(file, frames);
      const source = await rawFileSource(file, 2, 2, 'rgba');
      expect(source.frames).toBe(3);
      const bodies: Buffer[] = [];
      for await (const batch of source.batches(2)) bodies.push(batch.body);
      expect(Buffer.concat(bodies)).toEqual(frames);
      expect(bodies.map((b) => b.length)).toEqual([32, 16]);
      await expect(rawFileSource(file, 5, 2, 'rgba')).rejects.toThrow(
        /not a whole number of 5x2 rgba frames/,
      );
      await expect(rawFileSource(join(dir, 'missing'), 2, 2, 'rgba')).rejects.toThrow(/no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('formatNodesTable', () => {
  it('aligns the columns', () => {
    const node = {
      id: 'n1',
      name: 'cpu-1',
      host: 'box',
      pid: 1,
      pool: 'cpu',
      codecs: ['jpeg', 'h264'],
      hardware: [],
      gpuCodecs: [],
      concurrency: 4,
      active: 1,
      processed: 10,
      failed: 0,
      encodeFps: 12.34,
      liveStreams: 2,
      version: '1',
      startedAt: '2024-01-01T00:00:00Z',
      lastSeen: '2024-01-01T00:00:05Z',
    } as NodeRecord;
    const table = formatNodesTable([node], Date.parse('2024-01-01T00:00:07Z'));
    expect(table.split('\n')[0]).toMatch(
      /^NODE\s+HOST\s+POOL\s+CODECS\s+ACTIVE\s+PROCESSED\s+FAILED\s+FPS\s+LIVE\s+SEEN$/,
    );
    expect(table.split('\n')[1]).toMatch(
      /^cpu-1\s+box\s+cpu\s+jpeg,h264\s+1\/4\s+10\s+0\s+12.3\s+2\s+2s ago$/,
    );
    expect(formatNodesTable([])).toBe('no live encoder nodes\n');
  });
});
