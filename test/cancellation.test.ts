import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { NodeRecord } from '#contracts';
import type { ServiceStack } from '#scripts/lib/stack.js';
import {
  bgraBatch,
  childrenNamed,
  startStackWithRedis,
  stopStackWithRedis,
  tempDir,
  waitUntil,
} from './support.js';

/**
 * Cancelling an active job stops its encode on the node, with real processes: the node's ffmpeg child
 * is killed and a sharp job stops after the frame in hand, the node's slot is free for the next job, and
 * the cancelled job keeps nothing (no outputs listed, served or stored).
 */

const NODE = 'cancel-node';

describe('cancelling an active job', () => {
  let stack: ServiceStack;
  let redis: Redis;
  let data: ReturnType<typeof tempDir>;
  // Built before the stack starts (see PITFALLS: no long synchronous work between requests). Noise is
  // the slowest thing to encode: VP9 at speed 0 takes minutes over these 120 frames on a small VM.
  const vp9 = { width: 320, height: 240, frames: 120 };
  const noise = randomBytes(vp9.width * vp9.height * 4 * vp9.frames);
  const avif = { width: 160, height: 120, frames: 8 };
  const avifNoise = randomBytes(avif.width * avif.height * 4 * avif.frames);

  beforeAll(async () => {
    ({ stack, redis, data } = await startStackWithRedis('encoder-cancel-', {
      workers: [{ name: NODE, concurrency: 1 }],
      env: { NODE_CACHE_MS: '0' },
    }));
  }, 60_000);

  afterAll(() => stopStackWithRedis({ stack, redis, data }));

  const node = async (): Promise<NodeRecord> =>
    (await stack.client.nodes()).find((candidate) => candidate.name === NODE)!;

  async function cancel(jobId: string) {
    const response = await fetch(`${stack.apiUrl}/v1/jobs/${jobId}`, { method: 'DELETE' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'failed', error: 'cancelled by the client' });
  }

  /** The cancelled job ended the attempt on the node (failed), not by finishing its encode (processed). */
  async function expectStoppedEarly(before: NodeRecord, jobId: string) {
    await waitUntil(
      async () => {
        const now = await node();
        return (
          now.active === 0 && (now.failed ?? 0) + now.processed > (before.failed ?? 0) + before.processed
        );
      },
      90_000,
      'the node to give up the cancelled job and free its slot',
    );
    const after = await node();
    expect(after.processed).toBe(before.processed);
    expect(after.failed).toBe((before.failed ?? 0) + 1);
    expect(await stack.client.job(jobId)).toMatchObject({ status: 'failed', outputs: [] });
    expect(await redis.keys(`encoder:job:{${jobId}}:out:*`)).toEqual([]);
    // The node learns it from the cancel notice or, when its progress update comes first, from the
    // job's record: either way it says so.
    expect(stack.logsOf(NODE).join('\n')).toMatch(
      new RegExp(`job ${jobId} cancelled: stopping its encode|job ${jobId} was cancelled while node ${NODE}`),
    );
  }

  async function expectSlotWorks() {
    const { request, body } = bgraBatch('png', 32, 24, 1);
    const accepted = await stack.client.submitRaw(request, body);
    const job = await stack.client.waitFor(accepted.id);
    expect(job).toMatchObject({ status: 'completed', node: NODE });
    // The node's counters in the registry catch up at its next heartbeat.
    await waitUntil(
      async () => Date.parse((await node()).lastSeen) > Date.parse(job.finishedAt!),
      30_000,
      'a heartbeat after the job',
    );
  }

  it('video: the node kills its ffmpeg child at once and takes the next job', async () => {
    const before = await node();
    const accepted = await stack.client.submitRaw(
      { codec: 'vp9', format: 'bgra', speed: 0, quality: 100, ...vp9 },
      noise,
    );
    const { pid } = before;
    await waitUntil(() => childrenNamed(pid, 'ffmpeg').length > 0, 60_000, 'the node to start ffmpeg');
    await cancel(accepted.id);
    await expectStoppedEarly(before, accepted.id);
    expect(childrenNamed(pid, 'ffmpeg')).toEqual([]);
    await expectSlotWorks();
  }, 180_000);

  it('images: sharp cannot be interrupted, so the node stops after the frame in hand', async () => {
    const before = await node();
    const accepted = await stack.client.submitRaw(
      { codec: 'avif', format: 'bgra', speed: 0, quality: 90, ...avif },
      avifNoise,
    );
    // One frame done: the cancel lands while the others are still to come.
    await waitUntil(
      async () => (await stack.client.job(accepted.id)).progress > 0,
      60_000,
      'the first AVIF frame',
    );
    await cancel(accepted.id);
    await expectStoppedEarly(before, accepted.id);
    await expectSlotWorks();
  }, 180_000);
});
