import type { AcceptedJob } from '#client';
import { probeVideo } from '#codecs/testing/media-check.js';
import { ServiceStack } from '#scripts/lib/stack.js';
import { bgraBatch, tempDir, waitUntil } from './support.js';

/**
 * The persistence the service runs Redis with (append-only file, fsync every second: README,
 * "Durability") keeps its promise: a job the API acknowledged (202) is never lost, also when
 * redis-server is killed (-9, no chance to flush anything) while LZ4 uploads are under way.
 */

// Built before any connection is pooled (PITFALLS.md, "Sockets and tests").
const VIDEO = bgraBatch('h264', 192, 128, 12);
const IMAGE = bgraBatch('jpeg', 192, 128, 1);

describe('acknowledged jobs across a Redis crash', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-durability-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      workers: [{ name: 'durable-node', concurrency: 2, timeoutSeconds: 2 }],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it('kill -9 of redis-server during LZ4 uploads: every job that got 202 completes', async () => {
    const accepted: AcceptedJob[] = [];
    let stop = false;
    const client = async (lane: number) => {
      for (let index = 0; !stop; index++) {
        const { request, body } = (lane + index) % 2 === 0 ? VIDEO : IMAGE;
        try {
          accepted.push(await stack.client.submitRaw(request, body));
        } catch {
          // Not acknowledged (503 while Redis is away): nothing was promised.
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const lanes = [client(0), client(1), client(2)];
    try {
      await waitUntil(() => accepted.length >= 6, 30_000, 'uploads to be under way');
      const beforeCrash = accepted.length;
      await stack.redis!.crash();
      await new Promise((resolve) => setTimeout(resolve, 500));
      await stack.redis!.start();
      // The API process itself must have lived through it (an upload cut off by the crash once ended it).
      await waitUntil(() => stack.client.ready(), 20_000, 'the API to see Redis again');
      await waitUntil(() => accepted.length >= beforeCrash + 4, 30_000, 'uploads to go on after the crash');
    } finally {
      // Whatever failed above, the clients stop: left running, they would keep Jest from exiting.
      stop = true;
      await Promise.all(lanes);
    }
    for (const { id, frames } of accepted) {
      const job = await stack.client.waitFor(id);
      expect({ id, status: job.status, error: job.error }).toEqual({ id, status: 'completed', error: null });
      const { data } = await stack.client.output(id, 0);
      if (frames > 1) expect((await probeVideo(data)).frames).toBe(frames);
    }
  }, 240_000);
});
