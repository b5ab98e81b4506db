import { rgbaToPixelFormat, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import type { NodeRecord, StreamView } from '#contracts';
import { ServiceStack } from '#scripts/lib/stack.js';
import { childrenNamed, tempDir, waitUntil } from './support.js';
import { readSse, submitFrames } from './stream-support.js';

/**
 * Live encoder contexts are bounded per node: real API, Redis and two one-slot nodes that may each keep
 * one live encoder (`--live-max-contexts 1`). Past that, new live streams get 503 + Retry-After; a
 * stream that ended or went idle frees its place; and a node never runs more ffmpeg processes than
 * its capacity, even when an idle stream it no longer counted comes back.
 */
const WIDTH = 160;
const HEIGHT = 96;
const IDLE_SECONDS = 10;

describe('live capacity per node', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-live-capacity-');
  const frame = (index: number) => rgbaToPixelFormat(syntheticRgba(WIDTH, HEIGHT, index, false), 'bgra');
  const frames = Array.from({ length: 4 }, (_, index) => frame(index));

  beforeAll(async () => {
    const args = ['--live-max-contexts', '1', '--live-idle-timeout', String(IDLE_SECONDS)];
    stack = await ServiceStack.start({
      dataDir: dir.path,
      workers: [
        { name: 'node-a', concurrency: 1, args },
        { name: 'node-b', concurrency: 1, args },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  const api = () => stack.apiUrl;
  const create = () =>
    fetch(`${api()}/v1/streams`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ codec: 'h264', mode: 'live', width: WIDTH, height: HEIGHT, format: 'bgra' }),
    });
  const view = async (id: string) => (await (await fetch(`${api()}/v1/streams/${id}`)).json()) as StreamView;
  const nodes = async () => (await (await fetch(`${api()}/v1/nodes`)).json()) as NodeRecord[];
  const delivered = (id: string, count: number) =>
    waitUntil(async () => (await view(id)).delivered >= count, 60_000, `${count} batch(es) of ${id}`);
  /** ffmpeg processes per node, by name. */
  const ffmpegPerNode = async () =>
    Object.fromEntries((await nodes()).map((node) => [node.name, childrenNamed(node.pid, 'ffmpeg').length]));

  it('publishes the cap, refuses new live streams past it with 503 + Retry-After, and frees places', async () => {
    const records = await nodes();
    expect(records.map((node) => [node.name, node.liveCapacity, node.liveIdleTimeoutMs])).toEqual([
      ['node-a', 1, IDLE_SECONDS * 1000],
      ['node-b', 1, IDLE_SECONDS * 1000],
    ]);
    const metrics = await (await fetch(`${api()}/metrics`)).text();
    expect(metrics).toMatch(/^encoder_node_live_capacity\{pool="cpu"\} 2$/m);

    const first = (await (await create()).json()) as StreamView;
    const second = (await (await create()).json()) as StreamView;
    expect(new Set([first.node, second.node]).size).toBe(2);
    for (const stream of [first, second]) {
      expect((await submitFrames(api(), stream.id, frames[0], 1)).status).toBe(202);
    }

    const refused = await create();
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refused.json()) as { message: string }).message).toMatch(
      /keeps as many as its capacity allows .*liveCapacity/,
    );

    await delivered(first.id, 1);
    await delivered(second.id, 1);
    expect(await ffmpegPerNode()).toEqual({ 'node-a': 1, 'node-b': 1 });
    await waitUntil(
      async () =>
        /^encoder_node_live_contexts\{pool="cpu"\} 2$/m.test(await (await fetch(`${api()}/metrics`)).text()),
      30_000,
      'the nodes to report their live contexts',
    );

    // Ending a stream frees its place at once.
    expect((await fetch(`${api()}/v1/streams/${first.id}`, { method: 'DELETE' })).status).toBe(200);
    const third = await create();
    expect(third.status).toBe(201);
    const thirdView = (await third.json()) as StreamView;
    expect(thirdView.node).toBe(first.node);

    // A stream idle past its node's idle timeout holds no encoder: its place goes to a new stream...
    let fourth: StreamView | null = null;
    await waitUntil(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const answer = await create();
        if (answer.status === 201) fourth = (await answer.json()) as StreamView;
        else expect(answer.status).toBe(503);
        return fourth !== null;
      },
      60_000,
      'an idle stream to free its place',
    );
    // ...and when it comes back, its node still runs at most one ffmpeg: the one unused longest closes.
    const sameNode = [second, thirdView].find((stream) => stream.node === fourth!.node)!;
    for (const [index, stream] of [fourth!, sameNode, fourth!].entries()) {
      const before = (await view(stream.id)).delivered;
      expect((await submitFrames(api(), stream.id, frames[index + 1], 1)).status).toBe(202);
      await delivered(stream.id, before + 1);
      expect(Object.values(await ffmpegPerNode()).every((count) => count <= 1)).toBe(true);
    }
    // The new stream's encoder was closed for the one that came back: its next frame is a keyframe.
    expect((await fetch(`${api()}/v1/streams/${fourth!.id}`, { method: 'DELETE' })).status).toBe(200);
    const outputs = (await readSse(api(), fourth!.id)).filter((event) => event.type === 'output');
    expect(outputs.map((event) => event.data.keyframe)).toEqual([true, true]);
  });
});
