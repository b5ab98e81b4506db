import { rgbaToPixelFormat, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import { EndpointPool, StreamClient, type StreamEventWithData } from '#client';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir } from './support.js';
import { expectVideoOf } from './stream-support.js';

/**
 * The client SDK against two API processes on one Redis, in the seed's server-list syntax. The API the
 * client is using is killed with -9 mid-stream: the client moves to the other one, retries the batch
 * it was sending with the same idempotency key and resumes following after the last event it saw.
 * Every frame arrives once, in order.
 */
// Built before any connection is pooled (PITFALLS.md, "Sockets and tests").
const WIDTH = 160;
const HEIGHT = 120;
const INPUTS = Array.from({ length: 60 }, (_, index) => syntheticRgba(WIDTH, HEIGHT, index, false));
const BGRA = INPUTS.map((rgba) => rgbaToPixelFormat(rgba, 'bgra'));

describe('client failover between API processes', () => {
  let stack: ServiceStack;
  let replica: string;
  const dir = tempDir('encoder-client-failover-');

  beforeAll(async () => {
    stack = await ServiceStack.start({ dataDir: dir.path, workers: [{ name: 'node-a', concurrency: 2 }] });
    replica = await stack.startApiReplica();
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it('kill -9 of an API mid-stream: no output lost, none repeated', async () => {
    const [width, height, inputs, count] = [WIDTH, HEIGHT, INPUTS, INPUTS.length];
    const pool = new EndpointPool(
      `${stack.apiUrl}/,timeout=2,reconnect-delay=0.2;${replica}/,timeout=2,reconnect-delay=0.2`,
    );
    const client = new StreamClient(pool);
    const stream = await client.create({ codec: 'h264', mode: 'live', width, height, format: 'bgra' });

    const received: StreamEventWithData[] = [];
    const following = (async () => {
      for await (const event of client.followWs(stream.id)) received.push(event);
    })();
    let killed: Promise<number | null> | null = null;
    for (let index = 0; index < count; index++) {
      const submitting = client.submitFrames(stream.id, BGRA[index], 1);
      // The kill races this upload: it may be refused, cut mid-way, or answered just before.
      if (index === 20) killed = stack.signalApi(stack.apiUrl, 'SIGKILL');
      const accepted = await submitting;
      expect(accepted.seq).toBe(index);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await killed).toBeNull();
    await client.close(stream.id);
    await following;

    expect(received.at(-1)?.type).toBe('end');
    const ids = received.map((event) => event.id);
    expect(new Set(ids).size).toBe(ids.length);
    const outputs = received.filter((event) => event.type === 'output');
    expect(outputs.map((event) => event.frame)).toEqual(inputs.map((_, index) => index));
    expect(received.filter((event) => event.type === 'batch').map((event) => event.seq)).toEqual(
      inputs.map((_, index) => index),
    );
    expect(pool.failovers).toBeGreaterThan(0);

    const annexB = Buffer.concat(outputs.map((event) => event.data));
    await expectVideoOf(annexB, inputs, width, height);
  });
});
