import sharp from 'sharp';
import { checkPaddedVideo, probeVideo } from '#codecs/testing/media-check.js';
import { rgbaToPixelFormat, rgbaToRgb, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import type { JobView } from '#contracts';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir } from './support.js';
import { createStream, postJson, readWs, submitFrames } from './stream-support.js';

/**
 * oddSize=pad through the real API, a node and ffmpeg: H.264/HEVC at an odd size come back in 4:2:0
 * (playable in browsers) at the next even size, which the job and stream views name, and cropping the
 * decoded pictures back gives the frames that were sent. Without it, odd sizes stay exact (4:4:4).
 */
describe('oddSize', () => {
  const width = 321;
  const height = 181;
  const count = 3;
  // Built before the stack starts (PITFALLS.md, "Sockets and tests").
  const rgba = Array.from({ length: count }, (_, index) => syntheticRgba(width, height, index, false));
  const bgra = Buffer.concat(rgba.map((frame) => rgbaToPixelFormat(frame, 'bgra')));
  const expectedRgb = Buffer.concat(rgba.map(rgbaToRgb));
  let pngs: Buffer[] = [];
  let stack: ServiceStack;
  const dir = tempDir('encoder-odd-size-');

  beforeAll(async () => {
    pngs = await Promise.all(
      rgba.map((frame) =>
        sharp(frame, { raw: { width, height, channels: 4 } })
          .png()
          .toBuffer(),
      ),
    );
    stack = await ServiceStack.start({ dataDir: dir.path, workers: [{ name: 'odd-cpu', concurrency: 2 }] });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  /** Probes an output coded at 322x182 in 4:2:0 and checks the crop and the padding against the input. */
  async function expectPadded(encoded: Buffer, codec: 'h264' | 'hevc') {
    const { probe, quality, columnRepeat, rowRepeat } = await checkPaddedVideo(
      encoded,
      expectedRgb,
      width,
      height,
    );
    expect([probe.codecName, probe.pixFmt, probe.width, probe.height, probe.frames]).toEqual([
      codec,
      'yuv420p',
      322,
      182,
      count,
    ]);
    expect({
      croppedPsnrAtLeast30: quality >= 30,
      columnRepeatsEdge: columnRepeat >= 30,
      rowRepeatsEdge: rowRepeat >= 30,
    }).toEqual({ croppedPsnrAtLeast30: true, columnRepeatsEdge: true, rowRepeatsEdge: true });
  }

  it('raw H.264 with oddSize=pad: 4:2:0 at 322x182, named as outputWidth/outputHeight', async () => {
    const accepted = await stack.client.submitRaw(
      { codec: 'h264', width, height, format: 'bgra', frames: count, quality: 90, oddSize: 'pad' },
      bgra,
    );
    expect(accepted).toMatchObject({ codec: 'h264', outputWidth: 322, outputHeight: 182 });
    const job = await stack.client.waitFor(accepted.id);
    expect(job).toMatchObject({ status: 'completed', width, height, outputWidth: 322, outputHeight: 182 });
    const { data, contentType } = await stack.client.output(job.id, 0);
    expect(contentType).toBe('video/mp4');
    await expectPadded(data, 'h264');
  });

  it('multipart HEVC with the oddSize=pad form field: 4:2:0 at 322x182', async () => {
    const form = new FormData();
    for (const [name, value] of Object.entries({ codec: 'hevc', quality: '90', oddSize: 'pad' })) {
      form.append(name, value);
    }
    pngs.forEach((png, index) =>
      form.append('frame', new Blob([new Uint8Array(png)], { type: 'image/png' }), `frame-${index}.png`),
    );
    const response = await fetch(`${stack.apiUrl}/v1/jobs`, { method: 'POST', body: form });
    const accepted = (await response.json()) as { id: string; outputWidth?: number };
    expect([response.status, accepted.outputWidth]).toEqual([202, 322]);
    const job = await stack.client.waitFor(accepted.id);
    expect(job).toMatchObject({ status: 'completed', outputWidth: 322, outputHeight: 182 });
    await expectPadded((await stack.client.output(job.id, 0)).data, 'hevc');
  });

  it('without oddSize the size stays exact (4:4:4) and the view has no outputWidth', async () => {
    const accepted = await stack.client.submitRaw(
      { codec: 'h264', width, height, format: 'bgra', frames: count, quality: 90 },
      bgra,
    );
    const job: JobView = await stack.client.waitFor(accepted.id);
    expect(job.status).toBe('completed');
    expect('outputWidth' in job || 'outputWidth' in accepted).toBe(false);
    const probe = await probeVideo((await stack.client.output(job.id, 0)).data);
    expect([probe.pixFmt, probe.width, probe.height]).toEqual(['yuv444p', width, height]);
  });

  it('a live H.264 stream with oddSize=pad: the view says 322x182, the packets decode at it', async () => {
    const stream = await createStream(stack.apiUrl, {
      codec: 'h264',
      mode: 'live',
      width,
      height,
      format: 'bgra',
      quality: 90,
      oddSize: 'pad',
    });
    expect(stream).toMatchObject({ oddSize: 'pad', width, height, outputWidth: 322, outputHeight: 182 });
    const delivery = readWs(stack.apiUrl, stream.id);
    expect((await submitFrames(stack.apiUrl, stream.id, bgra, count)).status).toBe(202);
    await fetch(`${stack.apiUrl}/v1/streams/${stream.id}`, { method: 'DELETE' });
    const { events, bytes } = await delivery;
    const outputs = events.filter((event) => event.type === 'output');
    expect(outputs).toHaveLength(count);
    await expectPadded(Buffer.concat(outputs.map((event) => bytes.get(event.id!)!)), 'h264');
  });

  it('a value other than exact or pad is a 400 saying which values there are', async () => {
    const job = await fetch(
      `${stack.apiUrl}/v1/jobs?codec=h264&width=${width}&height=${height}&format=bgra&oddSize=crop`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: bgra.subarray(0, width * height * 4),
      },
    );
    expect([job.status, ((await job.json()) as { message: string }).message]).toEqual([
      400,
      'oddSize must be one of exact, pad',
    ]);
    const stream = await postJson<{ statusCode: number; message: string }>(`${stack.apiUrl}/v1/streams`, {
      codec: 'hevc',
      width,
      height,
      format: 'bgra',
      oddSize: 'even',
    });
    expect(stream).toEqual({
      status: 400,
      body: expect.objectContaining({ statusCode: 400, message: 'oddSize must be one of exact, pad' }),
    });
  });
});
