import WebSocket from 'ws';
import { ServiceStack } from '#scripts/lib/stack.js';
import { bgraBatch, tempDir, waitUntil } from './support.js';

/**
 * Every surface of the API while its Redis is stopped (a real redis-server, shut down): each route that
 * needs Redis answers 503 with Retry-After and the API's error shape, never a 500 and never what ioredis
 * said; /metrics keeps answering (it reports Redis as down); all of it works again once Redis is back.
 */

const IOREDIS_WORDS = /writeable|enableOfflineQueue|ECONNREFUSED|Connection is closed|max retries|ioredis/i;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: string;
}

describe('while Redis is away', () => {
  let stack: ServiceStack;
  let data: ReturnType<typeof tempDir>;
  let jobId: string;
  let streamId: string;
  const frame = bgraBatch('png', 16, 16, 1);

  beforeAll(async () => {
    data = tempDir('encoder-outage-');
    stack = await ServiceStack.start({
      dataDir: data.path,
      workers: [{ name: 'outage-node', concurrency: 1 }],
      // No cached view of the registry: /v1/codecs reads Redis like the rest.
      env: { NODE_CACHE_MS: '0' },
    });
    const accepted = await stack.client.submitRaw(frame.request, frame.body);
    jobId = (await stack.client.waitFor(accepted.id)).id;
    const created = await fetch(`${stack.apiUrl}/v1/streams`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ codec: 'png', width: 16, height: 16, format: 'bgra' }),
    });
    expect(created.status).toBe(201);
    streamId = ((await created.json()) as { id: string }).id;
  }, 60_000);

  afterAll(async () => {
    if (stack?.redis && !(await stack.client.ready().catch(() => false))) await stack.redis.start();
    await stack?.stop();
    data?.remove();
  });

  async function call(method: string, path: string, body?: { type: string; data: Buffer | string }) {
    const response = await fetch(`${stack.apiUrl}${path}`, {
      method,
      ...(body ? { headers: { 'content-type': body.type }, body: body.data } : {}),
    });
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      body: await response.text(),
    };
  }

  /** The WebSocket upgrade's answer: an HTTP status when refused, 101 when it opened. */
  function upgrade(path: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${stack.apiUrl.replace(/^http/, 'ws')}${path}`);
      socket.on('unexpected-response', (request, response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          // With a listener for this event, ws leaves ending the request to it.
          request.destroy();
          resolve({
            status: response.statusCode ?? 0,
            retryAfter: (response.headers['retry-after'] as string | undefined) ?? null,
            body: Buffer.concat(chunks).toString(),
          });
        });
      });
      socket.on('open', () => {
        socket.terminate();
        resolve({ status: 101, retryAfter: null, body: '' });
      });
      socket.on('error', (error) => {
        if (!/Unexpected server response/.test(error.message)) reject(error);
      });
    });
  }

  const json = (value: object) => ({ type: 'application/json', data: JSON.stringify(value) });
  const raw = { type: 'application/octet-stream', data: frame.body };

  const routes = (): [string, string, { type: string; data: Buffer | string }?][] => [
    ['GET', `/v1/jobs/${jobId}`],
    ['GET', `/v1/jobs/${jobId}/outputs/0`],
    ['GET', `/v1/jobs/${jobId}/events`],
    ['DELETE', `/v1/jobs/${jobId}`],
    ['POST', '/v1/jobs?codec=png&width=16&height=16&format=bgra', raw],
    ['POST', '/v1/streams', json({ codec: 'png', width: 16, height: 16, format: 'bgra' })],
    ['GET', `/v1/streams/${streamId}`],
    ['GET', `/v1/streams/${streamId}/events`],
    ['POST', `/v1/streams/${streamId}/frames?frames=1`, raw],
    ['DELETE', `/v1/streams/${streamId}`],
    ['GET', '/v1/nodes'],
    ['GET', '/v1/codecs'],
    ['GET', '/admin/queues/api/queues'],
  ];

  it('every route answers 503 with Retry-After and says why, in the API error shape, without ioredis words', async () => {
    await stack.redis!.stop();
    await waitUntil(
      async () => (await call('GET', '/v1/nodes')).status === 503,
      10_000,
      'the API to see Redis gone',
    );

    const answers: Record<string, Answer> = {};
    for (const [method, path, body] of routes())
      answers[`${method} ${path}`] = await call(method, path, body);
    answers[`WS /v1/streams/${streamId}/ws`] = await upgrade(`/v1/streams/${streamId}/ws`);
    for (const [route, answer] of Object.entries(answers)) {
      expect({ route, status: answer.status }).toEqual({ route, status: 503 });
      expect({ route, retryAfter: Number(answer.retryAfter) }).toEqual({ route, retryAfter: 2 });
      expect({ route, body: answer.body }).toEqual({ route, body: expect.not.stringMatching(IOREDIS_WORDS) });
      expect(JSON.parse(answer.body)).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: expect.stringMatching(/Redis is unavailable/),
      });
    }

    // Probes and metrics have their own shapes: readiness fails (with Retry-After, without ioredis
    // words: it is open without a key), metrics keep answering and report the connections down.
    const ready = await call('GET', '/health/ready');
    expect(ready).toMatchObject({ status: 503, retryAfter: '2' });
    expect(ready.body).not.toMatch(IOREDIS_WORDS);
    expect(ready.body).toMatch(/Redis is unavailable/);
    const metrics = await call('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^encoder_redis_connection_up\{connection="api"\} 0$/m);
    expect((await call('GET', '/health/live')).status).toBe(200);
  }, 60_000);

  it('once Redis is back, the same routes answer again', async () => {
    await stack.redis!.start();
    await waitUntil(() => stack.client.ready(), 20_000, 'the API to see Redis again');
    expect((await upgrade(`/v1/streams/${streamId}/ws`)).status).toBe(101);
    expect((await call('GET', '/admin/queues/api/queues')).status).toBe(200);
    expect((await call('GET', `/v1/jobs/${jobId}`)).status).toBe(200);
  }, 60_000);
});
