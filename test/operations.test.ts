import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { ServiceStack } from '#scripts/lib/stack.js';

/**
 * The operator surface with API_KEYS set, against real processes: the key on every route (Nest routes
 * and the raw Express ones: Bull Board, Swagger), open health probes, the dashboard login, /metrics
 * after a job, the OpenAPI document, request ids, logs without secrets, and the dashboard in Chromium.
 */
const KEY = 'ops-test-key-0123456789abcdefghij';
const WRONG = 'not-the-key-0123456789abcdefghijk';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('operations: auth, dashboard, metrics, docs, health, logs', () => {
  let stack: ServiceStack;
  let dataDir: string;
  const frame = Buffer.alloc(8 * 8 * 4, 200);
  const bearer = { authorization: `Bearer ${KEY}` };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'encoder-ops-'));
    stack = await ServiceStack.start({
      dataDir,
      // Many wrong keys on purpose, all from 127.0.0.1: the per-address limit is test/tenancy.test.ts's.
      env: { API_KEYS: KEY, AUTH_FAILURE_LIMIT: '1000' },
      workers: [{ name: 'ops-cpu', concurrency: 1 }],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  const request = (path: string, init: RequestInit = {}) =>
    fetch(`${stack.apiUrl}${path}`, { redirect: 'manual', ...init });

  const submit = (headers: Record<string, string>) =>
    request('/v1/jobs?codec=png&width=8&height=8&format=rgba', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...headers },
      body: frame,
    });

  async function login(): Promise<string> {
    const response = await request('/admin/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: KEY, next: '/admin/queues' }).toString(),
    });
    expect(response.status).toBe(303);
    return (response.headers.get('set-cookie') ?? '').split(';')[0];
  }

  describe('every route but /health/* needs the key', () => {
    const routes: [string, string][] = [
      ['POST', '/v1/jobs'],
      ['GET', '/v1/jobs/AAAAAAAAAAAAAAAA'],
      ['GET', '/v1/nodes'],
      ['GET', '/v1/codecs'],
      ['GET', '/metrics'],
      ['GET', '/docs'],
      ['GET', '/docs-json'],
      ['GET', '/admin/queues'],
      ['GET', '/admin/queues/api/queues'],
    ];
    const call = (method: string, path: string, headers: Record<string, string>) =>
      method === 'POST' ? submit(headers) : request(path, { headers });

    it.each(routes)(
      '%s %s: 401 without a key, with a wrong key, and with a wrong X-API-Key',
      async (method, path) => {
        const attempts: Record<string, string>[] = [
          {},
          { authorization: `Bearer ${WRONG}` },
          { 'x-api-key': WRONG },
        ];
        for (const headers of attempts) {
          const response = await call(method, path, headers);
          expect({ headers, status: response.status }).toEqual({ headers, status: 401 });
          expect(await response.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
        }
      },
    );

    it('the same routes answer with the key (Bearer or X-API-Key)', async () => {
      const accepted = await submit(bearer);
      expect(accepted.status).toBe(202);
      const { id } = (await accepted.json()) as { id: string };
      await stack.client.waitFor(id);
      const expected: [string, number][] = [
        [`/v1/jobs/${id}`, 200],
        ['/v1/jobs/AAAAAAAAAAAAAAAA', 404],
        ['/v1/nodes', 200],
        ['/v1/codecs', 200],
        ['/metrics', 200],
        ['/docs', 200],
        ['/docs-json', 200],
        ['/admin/queues', 200],
        ['/admin/queues/api/queues', 200],
      ];
      for (const [path, status] of expected) {
        expect({ path, status: (await request(path, { headers: bearer })).status }).toEqual({ path, status });
        expect({ path, status: (await request(path, { headers: { 'x-api-key': KEY } })).status }).toEqual({
          path,
          status,
        });
      }
    });

    it('health probes stay open', async () => {
      const live = await request('/health/live');
      expect(live.status).toBe(200);
      expect(await live.json()).toMatchObject({ status: 'ok' });
      const ready = await request('/health/ready');
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({
        status: 'ok',
        info: { redis: { status: 'up' }, queues: { status: 'up' } },
      });
    });
  });

  describe('dashboard login', () => {
    it('serves a login form, and refuses a wrong key without a cookie', async () => {
      const page = await request('/admin/login');
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      expect(await page.text()).toMatch(/<form method="post" action="\/admin\/login">/);
      const refused = await request('/admin/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ key: WRONG }).toString(),
      });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('set-cookie')).toBeNull();
    });

    it('sets a signed HttpOnly SameSite=Strict cookie that opens /admin/queues and its API', async () => {
      const response = await request('/admin/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ key: KEY, next: '/admin/queues' }).toString(),
      });
      expect(response.status).toBe(303);
      expect(response.headers.get('location')).toBe('/admin/queues');
      const setCookie = response.headers.get('set-cookie') ?? '';
      const [pair, ...attributes] = setCookie.split('; ');
      expect(pair).toMatch(/^encoder_admin=v1\.\d+\.[^;]+$/);
      expect(attributes).toEqual(
        expect.arrayContaining([
          'Path=/',
          'HttpOnly',
          'SameSite=Strict',
          expect.stringMatching(/^Max-Age=\d+$/),
        ]),
      );
      expect(setCookie).not.toContain(KEY);
      const cookie = setCookie.split(';')[0];

      const board = await request('/admin/queues', { headers: { cookie } });
      expect(board.status).toBe(200);
      expect(await board.text()).toMatch(/<base href="\/admin\/queues\/"/);
      const queues = await request('/admin/queues/api/queues', { headers: { cookie } });
      expect(queues.status).toBe(200);
      const names = ((await queues.json()) as { queues: { name: string }[] }).queues.map(
        (queue) => queue.name,
      );
      expect(names.sort()).toEqual(['encode.cpu', 'encode.gpu']);
      expect((await request('/docs-json', { headers: { cookie } })).status).toBe(200);
    });

    it('a tampered cookie is refused, and the cookie does not open the /v1 API', async () => {
      const cookie = await login();
      const tampered = cookie.replace(/\.(\d+)\./, (_match, expires: string) => `.${Number(expires) + 1}.`);
      expect((await request('/admin/queues', { headers: { cookie: tampered } })).status).toBe(401);
      expect((await request('/v1/nodes', { headers: { cookie } })).status).toBe(401);
    });

    it('a browser without a session gets a 401 page that links to the login', async () => {
      const response = await request('/admin/queues', { headers: { accept: 'text/html' } });
      expect(response.status).toBe(401);
      expect(await response.text()).toContain('href="/admin/login?next=%2Fadmin%2Fqueues"');
    });
  });

  describe('/metrics', () => {
    async function scrape(): Promise<string> {
      const response = await request('/metrics', { headers: bearer });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return response.text();
    }
    const value = (text: string, series: string) => {
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };

    it('counts a completed job for its codec, with queue depths, nodes and HTTP counts', async () => {
      const before = value(await scrape(), 'encoder_jobs_completed_total{codec="png",pool="cpu"}') ?? 0;
      const accepted = await stack.client.submitRaw(
        { codec: 'png', width: 8, height: 8, format: 'rgba', frames: 1 },
        frame,
      );
      expect((await stack.client.waitFor(accepted.id)).status).toBe('completed');
      let text = '';
      for (let attempt = 0; attempt < 50; attempt++) {
        text = await scrape();
        if ((value(text, 'encoder_jobs_completed_total{codec="png",pool="cpu"}') ?? 0) > before) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(value(text, 'encoder_jobs_completed_total{codec="png",pool="cpu"}')).toBe(before + 1);
      expect(value(text, 'encoder_job_latency_seconds_count{codec="png",pool="cpu"}')).toBeGreaterThanOrEqual(
        1,
      );
      expect(value(text, 'encoder_frames_encoded_total{codec="png",pool="cpu"}')).toBeGreaterThanOrEqual(1);
      expect(value(text, 'encoder_output_bytes_total{codec="png",pool="cpu"}')).toBeGreaterThan(0);
      for (const queue of ['encode.cpu', 'encode.gpu'])
        for (const state of ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'])
          expect(value(text, `encoder_queue_jobs{queue="${queue}",state="${state}"}`)).toBeGreaterThanOrEqual(
            0,
          );
      expect(value(text, 'encoder_queue_jobs{queue="encode.cpu",state="completed"}')).toBeGreaterThanOrEqual(
        1,
      );
      expect(value(text, 'encoder_metrics_collect_success{collector="queues"}')).toBe(1);
      expect(value(text, 'encoder_nodes{pool="cpu"}')).toBe(1);
      expect(value(text, 'encoder_nodes{pool="gpu"}')).toBe(0);
      expect(value(text, 'encoder_redis_connection_up{connection="api"}')).toBe(1);
      expect(value(text, 'encoder_redis_reconnects_total{connection="api"}')).toBe(0);
      expect(
        value(text, 'encoder_http_requests_total{method="POST",route="/v1/jobs",status="202"}'),
      ).toBeGreaterThanOrEqual(1);
      expect(
        value(text, 'encoder_http_requests_total{method="GET",route="/metrics",status="401"}'),
      ).toBeGreaterThanOrEqual(1);
      expect(text).not.toMatch(/route="\/v1\/jobs\/[A-Za-z0-9_-]{16}"/);
    });
  });

  describe('/docs-json', () => {
    it('describes POST /v1/jobs with its bodies, parameters and responses', async () => {
      const response = await request('/docs-json', { headers: bearer });
      const document = (await response.json()) as {
        components: { schemas: Record<string, { properties: Record<string, { enum?: string[] }> }> };
        paths: Record<
          string,
          Record<
            string,
            { requestBody?: { content: object }; responses: object; parameters?: { name: string }[] }
          >
        >;
      };
      const create = document.paths['/v1/jobs']?.post;
      expect(create).toBeDefined();
      expect(Object.keys(create.requestBody?.content ?? {})).toEqual([
        'application/octet-stream',
        'multipart/form-data',
      ]);
      expect(Object.keys(create.responses)).toEqual(
        expect.arrayContaining(['202', '400', '401', '413', '415', '422', '503']),
      );
      expect(create.parameters?.map((parameter) => parameter.name)).toEqual(
        expect.arrayContaining([
          'codec',
          'accept',
          'width',
          'height',
          'format',
          'frames',
          'quality',
          'oddSize',
        ]),
      );
      const { schemas } = document.components;
      expect(schemas.CreateStreamBody.properties.oddSize.enum).toEqual(['exact', 'pad']);
      expect(Object.keys(schemas.JobViewDto.properties)).toEqual(
        expect.arrayContaining(['outputWidth', 'outputHeight']),
      );
      expect(Object.keys(document.paths)).toEqual(
        expect.arrayContaining(['/v1/jobs/{id}', '/v1/nodes', '/health/ready', '/metrics']),
      );
    });
  });

  describe('request ids and logs', () => {
    it('echoes a sane X-Request-Id, generates one otherwise', async () => {
      const echoed = await request('/health/live', { headers: { 'x-request-id': 'ops-test-request-1' } });
      expect(echoed.headers.get('x-request-id')).toBe('ops-test-request-1');
      const generated = await request('/v1/nodes', { headers: bearer });
      expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      const replaced = await request('/health/live', { headers: { 'x-request-id': 'bad id with spaces' } });
      expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('logs JSON lines with the request id, and never the key or the session cookie', async () => {
      const cookie = await login();
      await request('/admin/queues/api/queues', { headers: { cookie, 'x-request-id': 'ops-log-check' } });
      await request('/v1/codecs', { headers: bearer });
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Every line is a JSON record, but for Node's own process warnings.
      const lines = stack.logsOf('api');
      const records = lines
        .filter((line) => !line.startsWith('(node:') && !line.startsWith('(Use `node'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(
        records.some((record) => (record.req as { id?: string } | undefined)?.id === 'ops-log-check'),
      ).toBe(true);
      expect(records.every((record) => record.service === 'api' && typeof record.level === 'string')).toBe(
        true,
      );
      const all = lines.join('\n');
      expect(all).not.toContain(KEY);
      expect(all).not.toContain(cookie.split('=')[1]);
      const worker = stack
        .logsOf('ops-cpu')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(worker[0]).toMatchObject({ service: 'worker', node: 'ops-cpu', level: 'info' });
    });
  });

  describe('the dashboard in a browser (headless Chromium)', () => {
    let browser: Browser | undefined;

    afterAll(async () => {
      await browser?.close();
    });

    it('logs in through the form and shows the encode queues', async () => {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      const page = await browser.newPage();
      const first = await page.goto(`${stack.apiUrl}/admin/queues`);
      expect(first?.status()).toBe(401);
      await page.getByRole('link', { name: /log in/i }).click();
      await page.waitForURL(/\/admin\/login/);
      await page.fill('#key', KEY);
      await Promise.all([page.waitForURL(/\/admin\/queues/), page.click('button[type=submit]')]);
      await page.getByText('encode.cpu').first().waitFor({ timeout: 20_000 });
      await page.getByText('encode.gpu').first().waitFor({ timeout: 20_000 });
      const cookies = await page.context().cookies();
      expect(cookies.find((cookie) => cookie.name === 'encoder_admin')).toMatchObject({
        httpOnly: true,
        sameSite: 'Strict',
      });
    }, 60_000);
  });
  describe('with Redis away (last: it restarts Redis)', () => {
    it('ready turns 503 with the terminus body, live stays 200, /metrics still answers; reconnects are counted', async () => {
      const redis = stack.redis;
      if (!redis) throw new Error('the test needs the embedded Redis');
      await redis.stop();
      try {
        const started = Date.now();
        const ready = await request('/health/ready');
        expect(Date.now() - started).toBeLessThan(2500);
        expect(ready.status).toBe(503);
        expect(await ready.json()).toMatchObject({ status: 'error', error: { redis: { status: 'down' } } });
        expect((await request('/health/live')).status).toBe(200);
        const metrics = await request('/metrics', { headers: bearer });
        expect(metrics.status).toBe(200);
        const text = await metrics.text();
        expect(text).toMatch(/^encoder_metrics_collect_success\{collector="queues"\} 0$/m);
        expect(text).not.toMatch(/^encoder_queue_jobs\{/m);
        expect(text).toMatch(/^encoder_redis_connection_up\{connection="api"\} 0$/m);
      } finally {
        await redis.start();
      }
      const deadline = Date.now() + 20_000;
      while ((await request('/health/ready')).status !== 200) {
        if (Date.now() > deadline) throw new Error('not ready again after Redis came back');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const after = await (await request('/metrics', { headers: bearer })).text();
      expect(after).toMatch(/^encoder_redis_reconnects_total\{connection="api"\} [1-9]/m);
      expect(after).toMatch(/^encoder_redis_connection_up\{connection="api"\} 1$/m);
    }, 40_000);
  });
});
