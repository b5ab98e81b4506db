import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeVideoToRgb, psnr } from '#codecs/testing/media-check.js';
import { StreamClient } from '#client/stream-client.js';
import { freePort } from '#cluster';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir, waitUntil } from './support.js';
import { ivfFile, remoteClient, setupXpraClients, xpraKitDir, type XpraClients } from './xpra-support.js';

/**
 * Xpra's own `remote` video encoder module (remote-client.py drives it as an Xpra server would) against
 * the listener: each context a live stream on the cluster. What it gets back is decoded and compared
 * with the frames it sent.
 */
const kit = xpraKitDir();
const describeXpra = kit ? describe : describe.skip;
const W = 320;
const H = 240;

/** remote-client.py's frames: a diagonal BGRX gradient that scrolls 4 pixels a frame; as RGB24. */
function sentFrameRgb(n: number): Buffer {
  const row = Buffer.from(Array.from({ length: W * 4 + 4 * H + 1024 }, (_, x) => (x * 3) & 0xff));
  const shift = (n * 16) % 1024;
  const rgb = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) {
    const start = shift + y * 4;
    for (let x = 0; x < W; x++) {
      const p = start + x * 4;
      const o = (y * W + x) * 3;
      rgb[o] = row[p + 2];
      rgb[o + 1] = row[p + 1];
      rgb[o + 2] = row[p];
    }
  }
  return rgb;
}

/** Every decoded frame is the frame sent at its place (closer to it than to its neighbours). */
function expectFramesSent(decoded: Buffer, frames: number): void {
  const size = W * H * 3;
  expect(decoded.length).toBe(frames * size);
  for (let n = 0; n < frames; n++) {
    const picture = decoded.subarray(n * size, (n + 1) * size);
    const own = psnr(sentFrameRgb(n), picture);
    // A scrolling gradient with hard edges: 4:2:0 chroma costs it some dB at the mid quality band.
    expect(own).toBeGreaterThanOrEqual(24);
    if (n + 1 < frames) expect(own).toBeGreaterThan(psnr(sentFrameRgb(n + 1), picture));
  }
}

/** The stream of the context the listener logged (`context N (...) is live stream ID on node NODE`). */
function contextStreams(logs: string[]): { stream: string; node: string }[] {
  return logs.flatMap((line) => {
    const match = /is live stream ([\w-]+) on node ([\w.:-]+)/.exec(line);
    return match ? [{ stream: match[1], node: match[2] }] : [];
  });
}

/** The packets of a stream, from its log (what the context was sent), in frame order. */
async function streamPackets(apiUrl: string, streamId: string, count: number): Promise<Buffer[]> {
  const client = new StreamClient(apiUrl);
  const packets: Buffer[] = [];
  const abort = new AbortController();
  for await (const event of client.followWs(streamId, { signal: abort.signal })) {
    if (event.type === 'output') packets[event.frame ?? packets.length] = event.data;
    if (packets.filter(Boolean).length >= count || event.type === 'end') break;
  }
  abort.abort();
  return packets;
}

describeXpra('Xpra video contexts (remote-client.py)', () => {
  let stack: ServiceStack;
  let clients: XpraClients;
  let uri: string;
  const dir = tempDir('encoder-xpra-ctx-');

  beforeAll(async () => {
    clients = await setupXpraClients(kit as string);
    const port = await freePort();
    uri = `tcp://127.0.0.1:${port}/`;
    stack = await ServiceStack.start({
      dataDir: join(dir.path, 'redis'),
      env: { XPRA_BIND: `127.0.0.1:${port}`, LIVE_SUPERVISOR_MS: '200' },
      workers: [
        { name: 'ctx-a', concurrency: 2 },
        { name: 'ctx-b', concurrency: 2 },
      ],
    });
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it.each(['h264', 'vp8', 'vp9'])(
    '%s: every frame returns data, and the stream decodes to the frames sent',
    async (encoding) => {
      const frames = 30;
      const out = join(dir.path, `ctx.${encoding}`);
      const before = contextStreams(stack.logsOf('api')).length;
      const result = await remoteClient(clients, [
        '--uri',
        uri,
        '--encoding',
        encoding,
        '--frames',
        String(frames),
        '--size',
        `${W}x${H}`,
        '--out',
        out,
      ]);
      expect(result).toMatchObject({ frames, ok: frames, empty: 0 });
      expect(result.types.IDR).toBe(1);
      let bitstream: Buffer;
      if (encoding === 'h264') {
        // What Xpra got, as it wrote it: Annex B access units back to back.
        bitstream = readFileSync(out);
      } else {
        // Bare VP8/VP9 frames carry no size: the same packets, from the stream's log, framed as IVF.
        await waitUntil(
          () => contextStreams(stack.logsOf('api')).length > before,
          10_000,
          'the context log line',
        );
        const { stream } = contextStreams(stack.logsOf('api'))[before];
        const packets = await streamPackets(stack.apiUrl, stream, frames);
        expect(Buffer.concat(packets).equals(readFileSync(out))).toBe(true);
        bitstream = ivfFile(encoding === 'vp8' ? 'VP80' : 'VP90', W, H, packets);
      }
      expectFramesSent(await decodeVideoToRgb(bitstream), frames);
    },
  );

  it('kill -9 of the node holding a context while frames flow every 20 ms: no empty reply, one decodable stream', async () => {
    const frames = 150;
    const out = join(dir.path, 'failover.h264');
    const before = contextStreams(stack.logsOf('api')).length;
    const running = remoteClient(clients, [
      '--uri',
      uri,
      '--encoding',
      'h264',
      '--frames',
      String(frames),
      '--size',
      `${W}x${H}`,
      '--interval-ms',
      '20',
      '--out',
      out,
    ]);
    await waitUntil(() => contextStreams(stack.logsOf('api')).length > before, 30_000, 'the context to open');
    const { node } = contextStreams(stack.logsOf('api'))[before];
    const holder = (await stack.client.nodes()).find((record) => record.id === node);
    expect(holder).toBeDefined();
    // /v1/nodes counts the context on the node that holds its stream
    expect((holder as typeof holder & { xpraContexts?: number }).xpraContexts).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await stack.signalWorker(holder!.name, 'SIGKILL');
    const result = await running;
    expect(result).toMatchObject({ frames, ok: frames, empty: 0 });
    expect(result.types.IDR).toBeGreaterThanOrEqual(2);
    const decoded = await decodeVideoToRgb(readFileSync(out));
    expect(decoded.length).toBe(frames * W * H * 3);
  });
});
