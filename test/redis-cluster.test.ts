import { decodeImage, probeVideo, psnr } from '#codecs/testing/media-check.js';
import { rgbaToRgb, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import type { JobEventWithId } from '#client';
import { ServiceStack } from '#scripts/lib/stack.js';
import { LocalRedisCluster, bgraBatch, tempDir } from './support.js';

/**
 * The end-to-end path on a Redis Cluster of three masters: queues under one hash tag, each job's keys
 * under its own, so the work spreads over the cluster while every script touches one slot.
 */
describe('on a Redis Cluster', () => {
  const dir = tempDir('encoder-redis-cluster-');
  const cluster = new LocalRedisCluster(dir.path);
  let stack: ServiceStack;

  beforeAll(async () => {
    await cluster.start();
    stack = await ServiceStack.start({
      redisUrl: cluster.url,
      workers: [{ name: 'cluster-node', concurrency: 2 }],
    });
  }, 90_000);

  afterAll(async () => {
    await stack?.stop();
    await cluster.stop();
    dir.remove();
  });

  it('encodes JPEG and H.264 jobs, streams their events, and spreads the keys over the masters', async () => {
    const jpeg = bgraBatch('jpeg', 160, 120, 4, { quality: 90 });
    const video = bgraBatch('h264', 160, 120, 12, { quality: 90 });
    const submitted = await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        index % 3 === 2
          ? stack.client.submitRaw(video.request, video.body)
          : stack.client.submitRaw(jpeg.request, jpeg.body),
      ),
    );
    for (const accepted of submitted) {
      const events: JobEventWithId[] = [];
      const job = await stack.client.waitFor(accepted.id, (event) => events.push(event));
      expect(job.status).toBe('completed');
      expect(events.at(-1)?.type).toBe('completed');
      if (accepted.codec === 'jpeg') {
        for (let index = 0; index < 4; index++) {
          const decoded = await decodeImage((await stack.client.output(job.id, index)).data, 3);
          expect(psnr(rgbaToRgb(syntheticRgba(160, 120, index, false)), decoded.data)).toBeGreaterThanOrEqual(
            30,
          );
        }
      } else {
        const probe = await probeVideo((await stack.client.output(job.id, 0)).data);
        expect(probe).toMatchObject({ codecName: 'h264', width: 160, height: 120, frames: 12 });
      }
    }
    const keys = await cluster.keysPerNode();
    expect(keys.filter((count) => count > 0).length).toBeGreaterThanOrEqual(2);
    expect((await stack.client.nodes()).map((node) => node.name)).toEqual(['cluster-node']);
  }, 120_000);
});
