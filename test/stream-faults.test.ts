import { rgbaToPixelFormat, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import type { StreamView } from '#contracts';
import { EndpointPool, StreamClient, type StreamEventWithData } from '#client';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir, waitUntil } from './support.js';
import { createLiveStream, expectVideoOf, readWs, submitFrames } from './stream-support.js';

/**
 * A live stream's node killed with -9 mid-stream: the stream moves to the other node, which starts with
 * a keyframe and re-encodes what was in flight; the client sees every frame once, in order, and the
 * whole delivery decodes as one video.
 */
const TIMEOUT_S = 2;

/** Frames and their bgra bytes, built before any connection is pooled (PITFALLS.md, "Sockets and tests"). */
function framesOf(width: number, height: number, count: number): { inputs: Buffer[]; bgra: Buffer[] } {
  const inputs = Array.from({ length: count }, (_, index) => syntheticRgba(width, height, index, false));
  return { inputs, bgra: inputs.map((rgba) => rgbaToPixelFormat(rgba, 'bgra')) };
}
const KILL_FRAMES = framesOf(320, 240, 60);
const RESTART_FRAMES = framesOf(160, 120, 30);

describe('live streams under faults', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-stream-faults-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      workers: [
        { name: 'node-a', concurrency: 2, timeoutSeconds: TIMEOUT_S },
        { name: 'node-b', concurrency: 2, timeoutSeconds: TIMEOUT_S },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it('kill -9 of the pinned node: no frame lost, none repeated, one decodable video', async () => {
    const width = 320;
    const height = 240;
    const { inputs, bgra } = KILL_FRAMES;
    const count = inputs.length;
    const api = stack.apiUrl;
    const stream = await createLiveStream(api, width, height);
    const nodes = await stack.client.nodes();
    expect(nodes.map((node) => node.id)).toContain(stream.node);
    const viewOf = async () => (await (await fetch(`${api}/v1/streams/${stream.id}`)).json()) as StreamView;

    const delivery = readWs(api, stream.id);
    const killAt = 20;
    let survivor = nodes[0];
    for (let index = 0; index < count; index++) {
      if (index === killAt) {
        // Some batches delivered (on a loaded machine the node may not have started yet), the rest in
        // flight when the node dies.
        await waitUntil(async () => (await viewOf()).delivered >= killAt / 2, 30_000, 'first deliveries');
        // The node holding the stream now (on a starved machine a missed heartbeat may have moved it
        // already: that move must be as seamless as the one this kill forces).
        const pinnedNow = (await viewOf()).node;
        const killed = nodes.find((node) => node.id === pinnedNow)!;
        survivor = nodes.find((node) => node.id !== pinnedNow)!;
        expect(await stack.signalWorker(killed.name, 'SIGKILL')).toBeNull();
      }
      const answer = await submitFrames(api, stream.id, bgra[index], 1);
      expect(answer.status).toBe(202);
      expect(answer.body.seq).toBe(index);
    }
    await waitUntil(
      async () =>
        ((await (await fetch(`${api}/v1/streams/${stream.id}`)).json()) as StreamView).delivered === count,
      30_000,
      'every batch to be delivered',
    );
    await fetch(`${api}/v1/streams/${stream.id}`, { method: 'DELETE' });
    const { events, bytes } = await delivery;

    const outputs = events.filter((event) => event.type === 'output');
    expect(outputs.map((event) => event.data.frame)).toEqual(inputs.map((_, index) => index));
    expect(events.filter((event) => event.type === 'batch').map((event) => event.data.seq)).toEqual(
      inputs.map((_, index) => index),
    );
    expect(events.filter((event) => event.type === 'batch-failed')).toEqual([]);
    const nodesUsed = events.filter((event) => event.type === 'batch').map((event) => event.data.node);
    expect(nodesUsed.at(-1)).toBe(survivor.name);
    // Each node that took the stream over started with a keyframe there; no keyframe otherwise.
    const takeovers = nodesUsed.flatMap((node, index) =>
      index > 0 && node !== nodesUsed[index - 1] ? [index] : [],
    );
    expect(takeovers.length).toBeGreaterThan(0);
    const keyframes = outputs.filter((event) => event.data.keyframe).map((event) => event.data.frame);
    expect(keyframes).toEqual([0, ...takeovers]);

    const annexB = Buffer.concat(outputs.map((event) => bytes.get(event.id!)!));
    await expectVideoOf(annexB, inputs, width, height);
    expect((await viewOf()).node).toBe(survivor.id);
  });

  it('Redis restarted mid-stream: the stream goes on, every acknowledged frame delivered once', async () => {
    const width = 160;
    const height = 120;
    const { inputs, bgra } = RESTART_FRAMES;
    const count = inputs.length;
    const client = new StreamClient(new EndpointPool(`${stack.apiUrl}/,timeout=2,reconnect-delay=0.2`));
    const stream = await client.create({ codec: 'h264', mode: 'live', width, height, format: 'bgra' });
    const received: StreamEventWithData[] = [];
    const following = (async () => {
      for await (const event of client.followWs(stream.id, { reconnectForMs: 60_000 })) received.push(event);
    })();
    for (let index = 0; index < count; index++) {
      if (index === count / 2) {
        await waitUntil(
          () => received.filter((event) => event.type === 'batch').length === index,
          20_000,
          'delivery',
        );
        await stack.redis!.stop();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await stack.redis!.start();
        await waitUntil(() => stack.client.ready(), 20_000, 'the API to see Redis again');
      }
      const accepted = await client.submitFrames(stream.id, bgra[index], 1);
      expect(accepted.seq).toBe(index);
    }
    await client.close(stream.id);
    await following;

    const outputs = received.filter((event) => event.type === 'output');
    expect(outputs.map((event) => event.frame)).toEqual(inputs.map((_, index) => index));
    expect(received.filter((event) => event.type === 'batch-failed')).toEqual([]);
    await expectVideoOf(Buffer.concat(outputs.map((event) => event.data)), inputs, width, height);
  }, 120_000);
});
