import { request as httpRequest } from 'node:http';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { ServiceStack } from '#scripts/lib/stack.js';
import { EncoderApiClient } from '#client';
import { KeySpace } from '#cluster';
import { tempDir, waitUntil } from './support.js';

/**
 * Tenancy and the keys' defences, against real processes: each job and stream belongs to the tenant
 * whose key made it (other tenants get 404 everywhere, a rotated key keeps its tenant's work,
 * Idempotency-Keys are per tenant), operator keys see everything and alone open the dashboard, wrong
 * keys are limited per client address (429 + Retry-After, logged once per address and window), and
 * logging out of the dashboard ends the session on the server.
 */
const A1 = 'team-a-key-one-0123456789abcdef';
const A2 = 'team-a-key-two-0123456789abcdef';
const B1 = 'team-b-key-one-0123456789abcdef';
const OP = 'operator-key-0123456789abcdefgh';
const WRONG = 'wrong-key-0123456789abcdefghijk';
const FAILURE_LIMIT = 5;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request from a chosen loopback source address: the limiter counts per client address. */
function requestFrom(
  from: string,
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers, localAddress: from, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

describe('tenancy: two tenants and an operator', () => {
  let stack: ServiceStack;
  let redis: Redis;
  const dir = tempDir('encoder-tenancy-');
  const frame = Buffer.alloc(8 * 8 * 4, 90);
  const teamA = () => new EncoderApiClient(stack.apiUrl, A1);

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      env: {
        API_KEYS: `team-a:${A1},team-b:${B1},team-a:${A2}`,
        OPERATOR_KEYS: OP,
        AUTH_FAILURE_LIMIT: String(FAILURE_LIMIT),
        AUTH_WINDOW_SECONDS: '10',
      },
      workers: [{ name: 'tenancy-cpu', concurrency: 1 }],
    });
    redis = new Redis(stack.redisUrl);
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
    dir.remove();
  }, 60_000);

  const call = (key: string, path: string, init: RequestInit = {}) =>
    fetch(`${stack.apiUrl}${path}`, {
      redirect: 'manual',
      ...init,
      headers: { ...bearer(key), ...(init.headers as Record<string, string>) },
    });

  const submit = (key: string, headers: Record<string, string> = {}) =>
    call(key, '/v1/jobs?codec=png&width=8&height=8&format=rgba', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...headers },
      body: frame,
    });

  async function finishedJobOfA(): Promise<string> {
    const accepted = await submit(A1);
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    expect((await teamA().waitFor(id)).status).toBe('completed');
    return id;
  }

  const wsStatus = (key: string, streamId: string) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${stack.apiUrl.replace(/^http/, 'ws')}/v1/streams/${streamId}/ws`, {
        headers: bearer(key),
      });
      ws.on('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0);
        response.resume();
      });
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('error', reject);
    });

  it("another tenant gets 404 for a job's record, outputs, events and cancel; the owner's rotated key and the operator see it", async () => {
    const id = await finishedJobOfA();
    const unknown = await call(B1, '/v1/jobs/AAAAAAAAAAAAAAAA');
    expect(unknown.status).toBe(404);
    for (const [method, path] of [
      ['GET', `/v1/jobs/${id}`],
      ['GET', `/v1/jobs/${id}/outputs/0`],
      ['GET', `/v1/jobs/${id}/events`],
      ['DELETE', `/v1/jobs/${id}`],
    ]) {
      const response = await call(B1, path, { method });
      const body = (await response.json()) as { message: string };
      expect({ method, path, status: response.status }).toEqual({ method, path, status: 404 });
      // The same answer as for an id that does not exist: nothing tells B that A's job is there.
      expect(body.message).toBe(`no job ${id} (unknown, or older than the retention time)`);
    }
    for (const key of [A1, A2, OP]) {
      expect({ key, status: (await call(key, `/v1/jobs/${id}`)).status }).toEqual({ key, status: 200 });
      const output = await call(key, `/v1/jobs/${id}/outputs/0`);
      expect(output.status).toBe(200);
      expect(output.headers.get('content-type')).toBe('image/png');
    }
  });

  it('DELETE on a finished job removes its outputs at once, for its tenant only', async () => {
    const id = await finishedJobOfA();
    const outputKey = new KeySpace('encoder').output(id, 0);
    expect(await redis.exists(outputKey)).toBe(1);
    expect((await call(B1, `/v1/jobs/${id}`, { method: 'DELETE' })).status).toBe(404);
    expect(await redis.exists(outputKey)).toBe(1);
    const deleted = await call(A2, `/v1/jobs/${id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toMatchObject({ id, status: 'completed', outputs: [] });
    expect(await redis.exists(outputKey)).toBe(0);
    expect((await call(A1, `/v1/jobs/${id}/outputs/0`)).status).toBe(404);
    expect((await call(A1, `/v1/jobs/${id}`)).status).toBe(404);
  });

  it("another tenant gets 404 for a stream's record, frames, events, WebSocket and close; its batches' jobs are the tenant's", async () => {
    const created = await call(A1, '/v1/streams', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ codec: 'png', width: 8, height: 8, format: 'rgba', fps: 10, mode: 'batch' }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const frames = (key: string) =>
      call(key, `/v1/streams/${id}/frames?frames=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: frame,
      });

    const refused: [string, () => Promise<Response>][] = [
      ['GET record', () => call(B1, `/v1/streams/${id}`)],
      ['POST frames', () => frames(B1)],
      ['GET events', () => call(B1, `/v1/streams/${id}/events`)],
      ['DELETE', () => call(B1, `/v1/streams/${id}`, { method: 'DELETE' })],
    ];
    for (const [what, attempt] of refused) {
      const response = await attempt();
      expect({ what, status: response.status }).toEqual({ what, status: 404 });
      expect(((await response.json()) as { message: string }).message).toBe(
        `no stream ${id} (unknown, or older than the retention time)`,
      );
    }
    expect(await wsStatus(B1, id)).toBe(404);
    expect(await wsStatus(A2, id)).toBe(101);

    const batch = await frames(A2);
    expect(batch.status).toBe(202);
    const { jobId } = (await batch.json()) as { jobId: string };
    expect((await call(B1, `/v1/jobs/${jobId}`)).status).toBe(404);
    expect((await call(A1, `/v1/jobs/${jobId}`)).status).toBe(200);
    expect((await call(OP, `/v1/streams/${id}`)).status).toBe(200);
    // B's refused close changed nothing: the stream still takes frames until its owner closes it.
    const view = (await (await call(A1, `/v1/streams/${id}`)).json()) as { state: string };
    expect(view.state).toBe('open');
    expect((await call(A1, `/v1/streams/${id}`, { method: 'DELETE' })).status).toBe(200);
  });

  it('Idempotency-Keys are per tenant: the same key from another tenant makes its own job, from a rotated key the same one', async () => {
    const first = await submit(A1, { 'idempotency-key': 'tenancy-1' });
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    const rotated = await submit(A2, { 'idempotency-key': 'tenancy-1' });
    expect(((await rotated.json()) as { id: string }).id).toBe(id);
    const other = await submit(B1, { 'idempotency-key': 'tenancy-1' });
    expect(other.status).toBe(202);
    const otherId = ((await other.json()) as { id: string }).id;
    expect(otherId).not.toBe(id);
    expect((await call(A1, `/v1/jobs/${otherId}`)).status).toBe(404);
    await teamA().waitFor(id);
    await new EncoderApiClient(stack.apiUrl, B1).waitFor(otherId);
  });

  it('only operator keys open the dashboard and its API, by header or by login', async () => {
    for (const key of [A1, B1]) {
      const queues = await call(key, '/admin/queues/api/queues');
      expect({ key, status: queues.status }).toEqual({ key, status: 403 });
      expect(((await queues.json()) as { message: string }).message).toMatch(/OPERATOR_KEYS/);
      const login = await fetch(`${stack.apiUrl}/admin/login`, { redirect: 'manual', ...form({ key }) });
      expect(login.status).toBe(403);
      expect(login.headers.get('set-cookie')).toBeNull();
      // The API documentation is no one's data: any valid key reads it.
      expect((await call(key, '/docs-json')).status).toBe(200);
    }
    const queues = await call(OP, '/admin/queues/api/queues');
    expect(queues.status).toBe(200);
    expect(((await queues.json()) as { queues: unknown[] }).queues).toHaveLength(2);
  });

  it('logging out ends the dashboard session on the server: the same cookie is refused afterwards', async () => {
    const login = await fetch(`${stack.apiUrl}/admin/login`, { redirect: 'manual', ...form({ key: OP }) });
    expect(login.status).toBe(303);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
    const board = () => fetch(`${stack.apiUrl}/admin/queues/api/queues`, { headers: { cookie } });
    expect((await board()).status).toBe(200);
    const logout = await fetch(`${stack.apiUrl}/admin/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie },
    });
    expect(logout.status).toBe(303);
    expect(logout.headers.get('set-cookie')).toMatch(/^encoder_admin=; .*Max-Age=0/);
    const after = await board();
    expect(after.status).toBe(401);
    expect(((await after.json()) as { message: string }).message).toMatch(/log in again/);
  });

  it('wrong keys from one address get 429 with Retry-After past the limit, the right key too; other addresses are not affected', async () => {
    const attacker = '127.0.0.2';
    const statuses: number[] = [];
    let limited: Answer | null = null;
    for (let attempt = 0; attempt < 50 && !limited; attempt++) {
      const answer = await requestFrom(attacker, `${stack.apiUrl}/v1/nodes`, { headers: bearer(WRONG) });
      if (answer.status === 429) limited = answer;
      else statuses.push(answer.status);
    }
    expect(limited).not.toBeNull();
    expect(statuses.length).toBeGreaterThanOrEqual(FAILURE_LIMIT);
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(limited!.body)).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });
    // While limited, even a right key gets 429: guessing goes on no faster by mixing in a good key.
    expect((await requestFrom(attacker, `${stack.apiUrl}/v1/nodes`, { headers: bearer(A1) })).status).toBe(
      429,
    );
    expect((await requestFrom(attacker, `${stack.apiUrl}/admin/login`, form({ key: OP }))).status).toBe(429);
    expect((await requestFrom('127.0.0.3', `${stack.apiUrl}/v1/nodes`, { headers: bearer(A1) })).status).toBe(
      200,
    );

    // The dashboard's login form counts the same way, per address.
    const guesser = '127.0.0.4';
    const logins: number[] = [];
    for (let attempt = 0; attempt < 50; attempt++) {
      const answer = await requestFrom(guesser, `${stack.apiUrl}/admin/login`, form({ key: WRONG }));
      logins.push(answer.status);
      if (answer.status === 429) {
        expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
        break;
      }
    }
    expect(logins.at(-1)).toBe(429);
    expect(new Set(logins.slice(0, -1))).toEqual(new Set([401]));

    // Logged once per address and window, with a count, and never with the key.
    const summaries = () =>
      stack.logsOf('api').filter((line) => /failed key attempts from 127\.0\.0\.2\b/.test(line));
    await waitUntil(() => summaries().length > 0, 30_000, 'the aggregated failure line');
    expect(summaries()).toHaveLength(1);
    expect(summaries()[0]).toContain(`${statuses.length} failed key attempts from ${attacker}`);
    expect(summaries()[0]).toContain('3 more refused with 429');
    expect(stack.logsOf('api').join('\n')).not.toContain(WRONG);
    // The refused requests' own access lines are at debug: the summary is the one line they leave.
    expect(stack.logsOf('api').filter((line) => line.includes(`"remoteAddress":"${attacker}"`))).toEqual([]);
  }, 60_000);
});

describe('tenancy: several tenants and no operator key', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-tenancy-noop-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      env: { API_KEYS: `team-a:${A1},team-b:${B1}` },
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  }, 60_000);

  it("nobody gets the dashboard's data", async () => {
    for (const key of [A1, B1]) {
      const response = await fetch(`${stack.apiUrl}/admin/queues/api/queues`, { headers: bearer(key) });
      expect({ key, status: response.status }).toEqual({ key, status: 403 });
      const login = await fetch(`${stack.apiUrl}/admin/login`, { redirect: 'manual', ...form({ key }) });
      expect(login.status).toBe(403);
      expect((await fetch(`${stack.apiUrl}/v1/nodes`, { headers: bearer(key) })).status).toBe(200);
    }
  });
});
