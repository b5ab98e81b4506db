import { decodeImage, decodeVideoToRgb, psnr } from '#codecs/testing/media-check.js';
import { rgbaToRgb } from '#codecs/testing/synthetic-frames.js';
import { syntheticRgba } from '#codecs';
import type { AcceptedJob } from '#client';
import { freePort } from '#cluster';
import { ServiceStack } from '#scripts/lib/stack.js';
import { ScriptProcess } from './process-support.js';
import { bgraBatch, tempDir } from './support.js';

/**
 * Scale from zero with real processes: the cluster is configured (POOL_CODECS) to serve jpeg, h264 and
 * vp8 on its cpu pool, and starts with no node at all. Jobs are queued, not refused; they complete once
 * a node starts. The node started here does not offer vp8 (`--codecs`), so the vp8 job waits past
 * NO_NODE_WAIT_SECONDS and fails with a reason that says so. The gpu pool is configured for h264 and
 * never gets a node: its work waits GPU_WAIT_SECONDS there, then moves to the cpu node.
 */
const NO_NODE_WAIT_SECONDS = 30;
const GPU_WAIT_SECONDS = 5;
const WIDTH = 160;
const HEIGHT = 120;
// Built before any connection is pooled (PITFALLS.md, "Sockets and tests").
const JPEG = bgraBatch('jpeg', WIDTH, HEIGHT, 2, { quality: 90 });
const H264 = bgraBatch('h264', WIDTH, HEIGHT, 6, { quality: 90, pool: 'cpu' });
const GPU_H264 = bgraBatch('h264', WIDTH, HEIGHT, 3, { pool: 'auto' });
const VP8 = bgraBatch('vp8', WIDTH, HEIGHT, 2);
const scene = (index: number) => rgbaToRgb(syntheticRgba(WIDTH, HEIGHT, index, false));

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('scale from zero', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-zero-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      workers: [],
      env: {
        POOL_CODECS: 'cpu:jpeg,h264,vp8;gpu:h264',
        NO_NODE_WAIT_SECONDS: String(NO_NODE_WAIT_SECONDS),
        GPU_WAIT_SECONDS: String(GPU_WAIT_SECONDS),
        CHORE_LEASE_MS: '1000',
      },
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it('with no node alive, a job for a configured codec is accepted (202) and completes once a node starts; the vp8 job nobody started a node for fails with the reason', async () => {
    expect(await stack.client.nodes()).toEqual([]);
    const jpeg = await stack.client.submitRaw(JPEG.request, JPEG.body);
    const h264 = await stack.client.submitRaw(H264.request, H264.body);
    const vp8 = await stack.client.submitRaw(VP8.request, VP8.body);
    for (const [accepted, codec] of [
      [jpeg, 'jpeg'],
      [h264, 'h264'],
      [vp8, 'vp8'],
    ] as [AcceptedJob, string][])
      expect(accepted).toMatchObject({ status: 'queued', codec, pool: 'cpu' });
    expect((await stack.client.job(jpeg.id)).status).toBe('queued');
    // What a client may submit now: nothing is live, the pools are configured.
    expect(await (await fetch(`${stack.apiUrl}/v1/codecs`)).json()).toEqual({
      pools: { cpu: [], gpu: [] },
      configured: { cpu: ['jpeg', 'h264', 'vp8'], gpu: ['h264'] },
    });

    // Not configured: still the contract's 422, naming what the cluster serves.
    const av1 = await fetch(
      `${stack.apiUrl}/v1/jobs?codec=av1&width=${WIDTH}&height=${HEIGHT}&format=bgra&frames=1`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: JPEG.body.subarray(0, WIDTH * HEIGHT * 4),
      },
    );
    expect(av1.status).toBe(422);
    expect(((await av1.json()) as { message: string }).message).toMatch(/POOL_CODECS.*h264, jpeg, vp8/);

    // A live stream needs a live node now.
    const live = await fetch(`${stack.apiUrl}/v1/streams`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        codec: 'h264',
        width: WIDTH,
        height: HEIGHT,
        format: 'bgra',
        fps: 30,
        mode: 'live',
      }),
    });
    expect(live.status).toBe(503);
    expect(Number(live.headers.get('retry-after'))).toBeGreaterThan(0);

    // The autoscaler's signals: demand on the cpu pool, waiting since submission, and no slot to take it.
    const metrics = await (await fetch(`${stack.apiUrl}/metrics`)).text();
    expect(sample(metrics, 'encoder_pool_jobs_waiting{pool="cpu"}')).toBe(3);
    expect(sample(metrics, 'encoder_pool_jobs_waiting{pool="gpu"}')).toBe(0);
    expect(sample(metrics, 'encoder_pool_oldest_wait_seconds{pool="cpu"}')).toBeGreaterThan(0);
    expect(sample(metrics, 'encoder_pool_jobs_active{pool="cpu"}')).toBe(0);
    expect(sample(metrics, 'encoder_pool_free_slots{pool="cpu"}')).toBe(0);
    expect(sample(metrics, 'encoder_metrics_collect_success{collector="pools"}')).toBe(1);

    await stack.startWorker({ name: 'late-cpu', concurrency: 2, args: ['--codecs', 'jpeg,h264'] });

    const doneJpeg = await stack.client.waitFor(jpeg.id);
    expect(doneJpeg).toMatchObject({ status: 'completed', node: 'late-cpu' });
    for (const index of [0, 1]) {
      const decoded = await decodeImage((await stack.client.output(jpeg.id, index)).data, 3);
      expect(psnr(scene(index), decoded.data)).toBeGreaterThanOrEqual(30);
    }
    const doneH264 = await stack.client.waitFor(h264.id);
    expect(doneH264).toMatchObject({ status: 'completed', node: 'late-cpu' });
    const video = await decodeVideoToRgb((await stack.client.output(h264.id, 0)).data);
    expect(video.length).toBe(6 * WIDTH * HEIGHT * 3);
    expect(psnr(Buffer.concat([0, 1, 2, 3, 4, 5].map(scene)), video)).toBeGreaterThanOrEqual(28);

    const failed = await stack.client.waitFor(vp8.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(
      /no live cpu node that can encode vp8 started within NO_NODE_WAIT_SECONDS \(30 s\)/,
    );
    expect(Date.parse(failed.finishedAt!) - Date.parse(failed.createdAt)).toBeGreaterThanOrEqual(
      NO_NODE_WAIT_SECONDS * 1000,
    );
  }, 180_000);

  it('auto work for a gpu codec waits GPU_WAIT_SECONDS on the gpu pool (its signal shows it), then moves to a cpu node', async () => {
    expect((await stack.client.nodes()).map((node) => node.pool)).toEqual(['cpu']);
    const accepted = await stack.client.submitRaw(GPU_H264.request, GPU_H264.body);
    expect(accepted).toMatchObject({ status: 'queued', codec: 'h264', pool: 'gpu' });
    const metrics = await (await fetch(`${stack.apiUrl}/metrics`)).text();
    expect(sample(metrics, 'encoder_pool_jobs_waiting{pool="gpu"}')).toBe(1);

    const done = await stack.client.waitFor(accepted.id);
    expect(done).toMatchObject({ status: 'completed', pool: 'cpu', node: 'late-cpu' });
    expect(Date.parse(done.startedAt!) - Date.parse(done.createdAt)).toBeGreaterThanOrEqual(
      GPU_WAIT_SECONDS * 1000,
    );
    const video = await decodeVideoToRgb((await stack.client.output(accepted.id, 0)).data);
    expect(psnr(Buffer.concat([0, 1, 2].map(scene)), video)).toBeGreaterThanOrEqual(28);
  }, 120_000);
});

describe('scale-from-zero settings', () => {
  it.each([
    [
      'POOL_CODECS',
      'cpu:jpeg,mpeg2',
      /^configuration error: POOL_CODECS: "mpeg2" \(cpu pool\) is not a codec/,
    ],
    [
      'NO_NODE_WAIT_SECONDS',
      '3600',
      /^configuration error: NO_NODE_WAIT_SECONDS must be less than RETENTION_SECONDS/,
    ],
  ])('a wrong %s stops the API at start with one line naming it', async (name, value, message) => {
    const api = new ScriptProcess('apps/api/src/main.js', [], {
      PORT: String(await freePort()),
      REDIS_URL: 'redis://127.0.0.1:1',
      [name]: value,
    });
    try {
      expect(await api.exitWithin(60_000)).toBe(2);
      expect(api.output.trim()).toMatch(message);
      expect(api.output.trim().split('\n')).toHaveLength(1);
    } finally {
      await api.stop('SIGKILL');
    }
  });
});
