import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { psnr, probeVideo } from '#codecs/testing/media-check.js';
import { rgbaToRgb, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import { freePort } from '#cluster';
import { rencode, type XpraValue } from '#xpra';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir } from './support.js';
import {
  RawXpraClient,
  ivfFile,
  setupXpraClients,
  xpraEncode,
  xpraHeader,
  xpraKitDir,
  type XpraClients,
} from './xpra-support.js';

/**
 * The Xpra listener against the real Xpra clients of ../shared/xpra (built from source by the test),
 * a real API, Redis and an encoder node. Outputs are decoded and compared with the picture sent.
 */
const kit = xpraKitDir();
const describeXpra = kit ? describe : describe.skip;
const WIDTH = 320;
const HEIGHT = 240;

describeXpra('Xpra listener (real Xpra clients)', () => {
  let stack: ServiceStack;
  let clients: XpraClients;
  let port: number;
  let uri: string;
  const dir = tempDir('encoder-xpra-');
  const picture = join(dir.path, 'in', 'picture.png');
  const out = join(dir.path, 'out');
  const rgba = syntheticRgba(WIDTH, HEIGHT, 3, false);

  beforeAll(async () => {
    mkdirSync(join(dir.path, 'in'));
    mkdirSync(out);
    writeFileSync(
      picture,
      await sharp(rgba, { raw: { width: WIDTH, height: HEIGHT, channels: 4 } })
        .png()
        .toBuffer(),
    );
    clients = await setupXpraClients(kit as string);
    port = await freePort();
    uri = `tcp://127.0.0.1:${port}/`;
    stack = await ServiceStack.start({
      dataDir: join(dir.path, 'redis'),
      env: { XPRA_BIND: `127.0.0.1:${port}` },
      workers: [{ name: 'xpra-node', concurrency: 2 }],
    });
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it.each(['png', 'jpeg', 'webp'])(
    'xpra encode --encoding=%s: the picture comes back (PSNR >= 30 dB)',
    async (encoding) => {
      await xpraEncode(clients, uri, picture, encoding, out);
      const encoded = readFileSync(join(out, `picture.${encoding}`));
      const { data, info } = await sharp(encoded).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([WIDTH, HEIGHT]);
      expect((await sharp(encoded).metadata()).format).toBe(encoding);
      expect(psnr(rgbaToRgb(rgba), data)).toBeGreaterThanOrEqual(30);
    },
  );

  it.each([
    ['h264', 'h264'],
    ['vp8', 'vp8'],
    ['vp9', 'vp9'],
  ])(
    'xpra encode --encoding=%s: one decodable frame in the form Xpra decodes',
    async (encoding, codecName) => {
      await xpraEncode(clients, uri, picture, encoding, out);
      const bitstream = readFileSync(join(out, `picture.${encoding}`));
      // H.264 as an Annex B access unit (start code first); VP8/VP9 as the bare frame (ffprobe needs IVF around it).
      const probed =
        encoding === 'h264'
          ? await probeVideo(bitstream)
          : await probeVideo(ivfFile(encoding === 'vp8' ? 'VP80' : 'VP90', WIDTH, HEIGHT, [bitstream]));
      if (encoding === 'h264') expect(bitstream.subarray(0, 4).toString('hex')).toBe('00000001');
      expect(probed).toMatchObject({ codecName, width: WIDTH, height: HEIGHT, frames: 1 });
      expect(probed.firstFrame.keyFrame).toBe(true);
    },
  );

  it('counts what it served on /metrics', async () => {
    const metrics = await fetch(`${stack.apiUrl}/metrics`).then((response) => response.text());
    expect(metrics).toMatch(
      /encoder_xpra_round_trip_seconds_count\{request="encode",encoding="webp"\} [1-9]/,
    );
    expect(metrics).toMatch(/encoder_xpra_connections_total\{outcome="ready"\} [1-9]/);
  });

  it("a video client's encodings follow the cluster: a new node's capacity shows without reconnecting", async () => {
    const client = await RawXpraClient.connect(port);
    client.hello({ wants: ['encodings', 'video'] });
    const maxInstances = (packet: XpraValue[] | null) => {
      const video = (packet?.[1] as Record<string, Record<string, Record<string, Record<string, unknown>[]>>>)
        .video;
      return video.h264.BGRX[0].max_instances as number;
    };
    const before = maxInstances(await client.next('encodings'));
    expect(before).toBeGreaterThan(0);
    await stack.startWorker({ name: 'xpra-node-2', concurrency: 1 });
    const after = maxInstances(await client.next('encodings', 30_000));
    expect(after).toBeGreaterThan(before);
    client.close();
    await stack.signalWorker('xpra-node-2', 'SIGTERM');
  });

  describe('bad packets close that connection only', () => {
    let bystander: RawXpraClient;

    beforeAll(async () => {
      bystander = await RawXpraClient.connect(port);
      bystander.hello();
      expect(await bystander.next('startup-complete')).not.toBeNull();
    });

    afterAll(() => bystander.close());

    /** The bystander's connection still answers, and a new one still gets the handshake. */
    async function listenerStillServes(): Promise<void> {
      bystander.send(['context-compress', 99, {}, Buffer.alloc(0), {}, {}]);
      const reply = await bystander.next('context-data');
      expect(reply?.[1]).toBe(99);
      const fresh = await RawXpraClient.connect(port);
      fresh.hello();
      expect(await fresh.next('encodings')).not.toBeNull();
      fresh.close();
    }

    it.each<[string, () => Buffer]>([
      ['wrong magic', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
      ['a huge length', () => xpraHeader(0x10, 0, 0, 0xffffffff)],
      [
        'an LZ4 bomb (a payload that declares 3 GiB)',
        () => {
          const payload = Buffer.from([0, 0, 0, 0xc0, 0x1f, 0, 1, 0]);
          return Buffer.concat([xpraHeader(0x10, 0x11, 0, payload.length), payload]);
        },
      ],
      [
        'truncated rencode',
        () => {
          const payload = rencode(['hello', { version: '6.6', uuid: 'abcdef' }]).subarray(0, 12);
          return Buffer.concat([xpraHeader(0x10, 0, 0, payload.length), payload]);
        },
      ],
    ])('%s', async (_name, bytes) => {
      const client = await RawXpraClient.connect(port);
      client.write(bytes());
      await client.untilClosed();
      await listenerStillServes();
    });

    it('an LZ4 bomb in the pixels of an encode: refused before decompressing, the client told why', async () => {
      const client = await RawXpraClient.connect(port);
      client.hello({ encoding: { setting: 'png' } });
      await client.next('startup-complete');
      const bomb = Buffer.from([0, 0, 0, 0x40, 0x1f, 0, 1, 0]);
      client.send(['encode', 'rgb', 'BGRX', bomb, 64, 64, 256, { lz4: 1 }, { filename: 'x.png' }]);
      const disconnect = await client.next('disconnect');
      expect(String(disconnect?.[1])).toMatch(/refused before decompressing/);
      await client.untilClosed();
      await listenerStillServes();
    });

    it('unknown packet types are ignored; a context that does not exist gets an error reply', async () => {
      const client = await RawXpraClient.connect(port);
      client.hello();
      await client.next('startup-complete');
      client.send(['frobnicate', 1, 'x']);
      client.send(['ping', 12345]);
      client.send(['context-compress', 4242, {}, Buffer.alloc(16), {}, {}]);
      const reply = await client.next('context-data');
      expect(reply?.[1]).toBe(4242);
      expect(Buffer.isBuffer(reply?.[2]) && (reply[2] as Buffer).length).toBe(0);
      expect(reply?.[3]).toMatchObject({ error: expect.any(String) });
      expect(client.closed).toBe(false);
      client.close();
      await listenerStillServes();
    });

    it('the API itself keeps serving', async () => {
      expect(await stack.client.ready()).toBe(true);
    });
  });
});
