import sharp from 'sharp';
import WebSocket from 'ws';
import { rgbaToPixelFormat, syntheticRgba } from '#codecs';
import { decodeImage, probeVideo } from '#codecs/testing/media-check.js';
import type { AcceptedJob } from '#client';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir } from './support.js';

/**
 * What the API takes from a hostile or careless client, against the real API and a real node: names
 * every JavaScript object has (`__proto__`, `toString`, ...) as query parameters, JSON keys, form
 * fields or path segments; numbers in forms `Number()` accepts (`0x1`, `+1`, `1e0`); JSON nested
 * thousands deep; and codec negotiation with names the service does not know.
 */

type Answer = { status: number; body: { statusCode: number; message: string; [key: string]: unknown } };

describe('strict input end to end', () => {
  let stack: ServiceStack;
  let data: ReturnType<typeof tempDir>;
  const width = 64;
  const height = 48;
  const rgba = syntheticRgba(width, height, 0, true);
  const frameBody = rgbaToPixelFormat(rgba, 'bgra');
  // Built before the stack starts (see PITFALLS: nothing heavy between pooled requests).
  const deepArrays = '['.repeat(5000) + ']'.repeat(5000);
  const deepInCodec = `{"codec":${deepArrays},"width":8,"height":8,"format":"rgba"}`;

  beforeAll(async () => {
    data = tempDir('encoder-strict-input-');
    // A node restricted to png and vp9: vp9 is what negotiation must find behind an unknown name, and
    // h264, known but offered by no node, must still be a 422.
    stack = await ServiceStack.start({
      dataDir: data.path,
      workers: [{ name: 'strict-png-vp9', concurrency: 1, args: ['--codecs', 'png,vp9'] }],
      env: { NODE_CACHE_MS: '0' },
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    data?.remove();
  });

  async function answer(response: Response): Promise<Answer> {
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  }

  const postRaw = async (query: string, body: Buffer = frameBody) =>
    answer(
      await fetch(`${stack.apiUrl}/v1/jobs?${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: new Uint8Array(body),
      }),
    );

  const postStream = async (json: string) =>
    answer(
      await fetch(`${stack.apiUrl}/v1/streams`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: json,
      }),
    );

  const layout = `width=${width}&height=${height}&format=bgra`;
  const streamLayout = `"width":${width},"height":${height},"format":"bgra"`;

  describe('prototype names are refused like any unknown name (400), wherever they come', () => {
    it.each(['__proto__', 'toString', 'hasOwnProperty', 'constructor'])(
      'query parameter %s',
      async (name) => {
        const response = await postRaw(`codec=png&${layout}&${name}=1`);
        expect(response.status).toBe(400);
        expect(response.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
        expect(response.body.message).toBe(
          `query parameter "${name}" is not accepted: it is a name every JavaScript object already has`,
        );
      },
    );

    it('as the query of a route that takes no parameters, and bracketed', async () => {
      expect((await answer(await fetch(`${stack.apiUrl}/v1/nodes?toString=1`))).status).toBe(400);
      expect((await postRaw(`codec=png&${layout}&a[__proto__]=1`)).body.message).toMatch(
        /query parameter "__proto__"/,
      );
    });

    it.each(['__proto__', 'toString', 'hasOwnProperty'])('JSON key %s', async (name) => {
      const response = await postStream(`{"codec":"png",${streamLayout},"${name}":{"x":1}}`);
      expect(response.status).toBe(400);
      expect(response.body.message).toBe(
        `JSON key "${name}" is not accepted: it is a name every JavaScript object already has`,
      );
    });

    it('a multipart form field named toString', async () => {
      const form = new FormData();
      form.append('codec', 'png');
      form.append('toString', '1');
      const png = await sharp(rgba, { raw: { width, height, channels: 4 } })
        .png()
        .toBuffer();
      form.append('frame', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png');
      const response = await answer(await fetch(`${stack.apiUrl}/v1/jobs`, { method: 'POST', body: form }));
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/form field "toString" is not accepted/);
    });

    it("a stream WebSocket's query (before the upgrade), and a since that is not plain decimal", async () => {
      const stream = await postStream(`{"codec":"png",${streamLayout}}`);
      expect(stream.status).toBe(201);
      const upgrade = (query: string) =>
        new Promise<number>((resolve, reject) => {
          const url = `${stack.apiUrl.replace(/^http/, 'ws')}/v1/streams/${String(stream.body.id)}/ws?${query}`;
          const ws = new WebSocket(url);
          ws.once('unexpected-response', (_request, response) => {
            resolve(response.statusCode ?? 0);
            ws.terminate();
          });
          ws.once('open', () => {
            resolve(101);
            ws.close();
          });
          ws.once('error', (error) => (ws.readyState === WebSocket.CLOSED ? undefined : reject(error)));
        });
      expect(await upgrade('since=0')).toBe(101);
      expect(await upgrade('since=0&toString=1')).toBe(400);
      expect(await upgrade('since=01')).toBe(400);
    });

    it('a path segment', async () => {
      for (const path of ['/v1/streams/__proto__', '/v1/jobs/constructor/events']) {
        const response = await answer(await fetch(`${stack.apiUrl}${path}`));
        expect(response.status).toBe(400);
        expect(response.body.message).toMatch(/path segment "(__proto__|constructor)" is not accepted/);
      }
    });
  });

  describe('numbers are plain decimal', () => {
    it.each(['0x1', '%2B1', '1e0', '01', '1.0'])('frames=%s gets 400', async (frames) => {
      const response = await postRaw(`codec=png&${layout}&frames=${frames}`);
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/frames must be an integer/);
    });

    it('width as a hex string or a boolean in a stream body gets 400', async () => {
      for (const value of ['"0x40"', 'true']) {
        const response = await postStream(`{"codec":"png","width":${value},"height":8,"format":"bgra"}`);
        expect(response.status).toBe(400);
        expect(response.body.message).toMatch(/width must be an integer/);
      }
    });

    it('an output index is decimal: /outputs/0 serves, /outputs/0x0, 00, -0 and +0 get 400', async () => {
      const accepted = (await postRaw(`codec=png&${layout}`)).body as unknown as AcceptedJob;
      const job = await stack.client.waitFor(accepted.id);
      expect(job.status).toBe('completed');
      const output = await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/outputs/0`);
      expect(output.status).toBe(200);
      const decoded = await decodeImage(Buffer.from(await output.arrayBuffer()), 4);
      expect(decoded.data.equals(rgba)).toBe(true);
      for (const index of ['0x0', '00', '-0', '%2B0', '0.0', '0e0']) {
        const response = await answer(await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/outputs/${index}`));
        expect(response.status).toBe(400);
        expect(response.body.message).toBe('output index must be a decimal integer such as 0');
      }
    });
  });

  describe('JSON bodies are bounded in depth and size before validation', () => {
    it('5000 nested arrays in a field get 400, not a 500', async () => {
      const response = await postStream(deepInCodec);
      expect(response.status).toBe(400);
      expect(response.body.message).toBe('the JSON body is nested more than 32 levels deep');
    });

    it('5000 nested arrays as the whole body get 400', async () => {
      const response = await postStream(deepArrays);
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/nested more than 32 levels/);
    });

    it('a body over 64 KiB gets 413 naming the limit', async () => {
      const response = await postStream(`{"codec":"png","pad":"${'x'.repeat(70_000)}"}`);
      expect(response.status).toBe(413);
      expect(response.body.message).toBe(
        'the request body is larger than the limit of 65536 bytes for this content type',
      );
    });

    it('the API is still up, and a well-formed stream is created', async () => {
      expect(await stack.client.ready()).toBe(true);
      const response = await postStream(`{"codec":"png",${streamLayout},"quality":90}`);
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject({ codec: 'png', width, height, quality: 90 });
    });
  });

  describe('negotiation skips codec names it does not know', () => {
    it('accept=nosuchcodec,vp9,h264 chooses vp9, and the output is VP9', async () => {
      const frames = 2;
      const body = Buffer.concat([frameBody, rgbaToPixelFormat(syntheticRgba(width, height, 1), 'bgra')]);
      const response = await postRaw(`accept=nosuchcodec,vp9,h264&${layout}&frames=${frames}`, body);
      expect(response.status).toBe(202);
      expect(response.body).toMatchObject({ codec: 'vp9', frames });
      const job = await stack.client.waitFor((response.body as unknown as AcceptedJob).id);
      expect(job.status).toBe('completed');
      const { data } = await stack.client.output(job.id, 0);
      expect(await probeVideo(data)).toMatchObject({ codecName: 'vp9', width, height, frames });
    }, 60_000);

    it('known codecs that no live node offers still get 422', async () => {
      const response = await postRaw(`accept=nosuchcodec,h264&${layout}`);
      expect(response.status).toBe(422);
      expect(response.body.message).toMatch(/no live node can encode h264/);
    });

    it('a list of no codec the service knows gets 400 naming the known ones', async () => {
      const response = await postRaw(`accept=nosuchcodec,h266&${layout}`);
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/accept lists no codec this service knows \(nosuchcodec, h266\)/);
    });

    it("streams' accept negotiates the same way", async () => {
      const chosen = await postStream(`{"accept":"nosuchcodec,vp9",${streamLayout}}`);
      expect(chosen.status).toBe(201);
      expect(chosen.body).toMatchObject({ codec: 'vp9' });
      const none = await postStream(`{"accept":"nosuchcodec",${streamLayout}}`);
      expect(none.status).toBe(400);
      expect(none.body.message).toMatch(/accept lists no codec this service knows/);
    });
  });
});
