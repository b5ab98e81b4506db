import { ApiError } from './api-client.js';
import { EndpointPool, FailoverError, type Endpoint } from './endpoint-pool.js';
import { parseEndpoints } from './endpoints.js';
import { isDeadSocketError, isReplayable, isRetryableError, TimeoutError } from './http.js';
import { FakeClock, fakeTransport, networkError, response } from './testing/fake-http.js';

const LIST = 'http://a:1/,reconnect-delay=1;http://b:1/,reconnect-delay=2;http://c:1/';

function pool(
  health: (url: string) => number | Error = () => 200,
  options: { maxBackoffMs?: number; random?: () => number } = {},
) {
  const clock = new FakeClock();
  const transport = fakeTransport((request) => {
    const answer = health(request.url);
    if (answer instanceof Error) throw answer;
    return response(answer, answer === 200 ? { status: 'ok' } : { status: 'error' });
  });
  const endpoints = new EndpointPool(LIST, {
    transport,
    now: clock.now,
    sleep: clock.sleep,
    random: options.random ?? (() => 0.5),
    maxBackoffMs: options.maxBackoffMs,
  });
  const byHost = (host: string) => endpoints.endpoints.find((e) => e.url.includes(`//${host}:`)) as Endpoint;
  return { endpoints, clock, transport, byHost };
}

const host = (endpoint: Endpoint | undefined) => (endpoint ? new URL(endpoint.url).hostname : undefined);

describe('EndpointPool', () => {
  it('round-robins over the healthy endpoints and skips unhealthy ones', () => {
    const { endpoints, byHost } = pool();
    expect([1, 2, 3, 4].map(() => host(endpoints.pick()))).toEqual(['a', 'b', 'c', 'a']);
    endpoints.reportFailure(byHost('b'), networkError());
    expect([1, 2, 3, 4].map(() => host(endpoints.pick()))).toEqual(['c', 'a', 'c', 'a']);
  });

  it('backs off exponentially per consecutive failure, capped, with jitter', () => {
    const { endpoints, clock, byHost } = pool(undefined, { maxBackoffMs: 10_000 });
    const b = byHost('b'); // reconnect-delay=2
    const delays = [1, 2, 3, 4, 5].map(() => {
      endpoints.reportFailure(b, networkError());
      return b.nextTryAt - clock.t;
    });
    expect(delays).toEqual([2000, 4000, 8000, 10_000, 10_000]);
    expect(b.failures).toBe(5);
    expect(b.healthy).toBe(false);

    const low = pool(undefined, { random: () => 0 });
    low.endpoints.reportFailure(low.byHost('a'), networkError());
    expect(low.byHost('a').nextTryAt - low.clock.t).toBe(800); // 1000 * (1 - 0.2)
    const high = pool(undefined, { random: () => 0.999999 });
    high.endpoints.reportFailure(high.byHost('a'), networkError());
    expect(high.byHost('a').nextTryAt - high.clock.t).toBe(1200);
  });

  it('defaults: timeout 5 s and reconnect-delay 1 s, cap 30 s', () => {
    const clock = new FakeClock();
    const single = new EndpointPool(parseEndpoints('http://x:1'), { now: clock.now, random: () => 0.5 });
    const x = single.endpoints[0];
    expect(x.timeoutMs).toBe(5000);
    for (let i = 0; i < 10; i++) single.reportFailure(x, networkError());
    expect(x.nextTryAt - clock.t).toBe(30_000);
  });

  it('health-checks an unhealthy endpoint once its backoff is due, and it recovers', async () => {
    let aChecks = 0;
    const { endpoints, clock, transport, byHost } = pool((url) => {
      if (!url.startsWith('http://a:')) return networkError();
      aChecks += 1;
      return aChecks === 1 ? 503 : 200;
    });
    const t0 = clock.t;
    for (const name of ['a', 'b', 'c']) endpoints.reportFailure(byHost(name), networkError());
    expect(endpoints.pick()).toBeUndefined();

    // t0+1s: a (503) and c checked; t0+2s: b checked; t0+3s: a answers, c still refuses.
    const endpoint = await endpoints.acquire(t0 + 60_000);
    expect(host(endpoint)).toBe('a');
    expect(clock.t - t0).toBe(3000);
    expect(clock.sleeps).toEqual([1000, 1000, 1000]);
    expect(transport.requests.map((r) => host({ url: r.url } as Endpoint))).toEqual([
      'a',
      'c',
      'b',
      'a',
      'c',
    ]);
    expect(transport.requests.every((r) => r.url.endsWith('/health/ready'))).toBe(true);
    expect(byHost('a').healthy).toBe(true);
    expect(byHost('c').healthy).toBe(false);
    // the failure count stays until a request succeeds
    expect(byHost('a').failures).toBe(2);
    endpoints.reportSuccess(byHost('a'));
    expect(byHost('a').failures).toBe(0);
  });

  it('acquire gives up at the deadline when no endpoint recovers', async () => {
    const { endpoints, clock, byHost } = pool(() => networkError());
    const t0 = clock.t;
    for (const name of ['a', 'b', 'c']) endpoints.reportFailure(byHost(name), networkError());
    await expect(endpoints.acquire(t0 + 20_000)).rejects.toThrow(
      /no API server is reachable: http:\/\/a:1\/ connect ECONNREFUSED/,
    );
    expect(clock.t - t0).toBeLessThanOrEqual(20_000);
  });

  it('acquire checks once more at the deadline when a backoff reaches past it', async () => {
    let up = false;
    const { endpoints, clock } = pool(() => (up ? 200 : networkError()), { maxBackoffMs: 60_000 });
    const t0 = clock.t;
    for (const endpoint of endpoints.endpoints) {
      endpoint.failures = 10;
      endpoints.reportFailure(endpoint, networkError());
    }
    // Every endpoint's next try is minutes away; the servers are back before the 5 s deadline.
    up = true;
    const picked = await endpoints.acquire(t0 + 5000);
    expect(picked.healthy).toBe(true);
    expect(clock.t - t0).toBe(5000);
  });

  it('checks healthy endpoints too when asked (checkDue all)', async () => {
    const { endpoints, byHost } = pool((url) =>
      url.startsWith('http://c:') ? networkError('ECONNRESET') : 200,
    );
    await endpoints.checkDue({ all: true });
    expect(byHost('a').healthy).toBe(true);
    expect(byHost('c').healthy).toBe(false);
    expect(byHost('c').lastError).toMatch(/ECONNRESET/);
  });

  it('uses the health check timeout of each endpoint', async () => {
    const { endpoints, transport } = pool();
    endpoints.reportFailure(endpoints.endpoints[1], networkError());
    endpoints.endpoints[1].nextTryAt = 0;
    await endpoints.checkDue();
    expect(transport.requests).toHaveLength(1);
    expect(transport.requests[0]).toMatchObject({ url: 'http://b:1/health/ready', timeoutMs: 5000 });
  });
});

describe('withFailover', () => {
  it('moves on to the next endpoint after network errors, timeouts and 502/503/504', async () => {
    const { endpoints, byHost } = pool();
    const tried: string[] = [];
    const result = await endpoints.withFailover(async (endpoint) => {
      tried.push(host(endpoint) as string);
      if (tried.length === 1) throw networkError('ECONNREFUSED');
      if (tried.length === 2) throw new TimeoutError('no answer');
      if (tried.length === 3) throw new ApiError(502, 'bad gateway');
      if (tried.length === 4) throw new ApiError(504, 'gateway timeout');
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(tried.slice(0, 3)).toEqual(['a', 'b', 'c']);
    expect(endpoints.failovers).toBe(4);
    expect(byHost(tried[4] ?? 'a').healthy).toBe(true);
  });

  it('does not retry other 4xx answers, and they prove the endpoint up', async () => {
    const { endpoints, byHost } = pool();
    byHost('a').failures = 3;
    let calls = 0;
    const failure = endpoints.withFailover(async () => {
      calls += 1;
      throw new ApiError(409, { statusCode: 409, message: 'stream is closed' });
    });
    await expect(failure).rejects.toThrow('HTTP 409: stream is closed');
    expect(calls).toBe(1);
    expect(byHost('a').failures).toBe(0);
    await expect(endpoints.withFailover(async () => Promise.reject(new Error('bug')))).rejects.toThrow('bug');
  });

  it('honours a custom isRetryable', async () => {
    const { endpoints } = pool();
    let calls = 0;
    const result = await endpoints.withFailover(
      async () => {
        calls += 1;
        if (calls < 3) throw new ApiError(404, 'not yet');
        return calls;
      },
      { isRetryable: (error) => error instanceof ApiError && error.status === 404 },
    );
    expect(result).toBe(3);
  });

  it('honours a 429 Retry-After: the endpoint stays healthy but is not used before it', async () => {
    const single = pool();
    const clock = single.clock;
    const only = new EndpointPool('http://solo:1/', {
      transport: single.transport,
      now: clock.now,
      sleep: clock.sleep,
      random: () => 0.5,
    });
    const calls: number[] = [];
    const result = await only.withFailover(async () => {
      calls.push(clock.t);
      if (calls.length === 1) throw new ApiError(429, 'busy', 7000);
      return 'done';
    });
    expect(result).toBe('done');
    expect(calls[1] - calls[0]).toBe(7000);
    expect(only.endpoints[0].healthy).toBe(true);
    expect(only.endpoints[0].failures).toBe(0);
  });

  it('retries a 409 for a request still in progress (same key) without marking the endpoint down', async () => {
    const clock = new FakeClock();
    const only = new EndpointPool('http://solo:1/', {
      now: clock.now,
      sleep: clock.sleep,
      random: () => 0.5,
    });
    let calls = 0;
    const result = await only.withFailover(async () => {
      calls += 1;
      if (calls < 3) {
        throw new ApiError(409, {
          statusCode: 409,
          message: 'a request with this Idempotency-Key is still being processed; retry later',
        });
      }
      return 'first answer';
    });
    expect(result).toBe('first answer');
    expect(clock.sleeps).toEqual([1000, 1000]);
    expect(only.endpoints[0]).toMatchObject({ healthy: true, failures: 0 });
  });

  it('a 503 Retry-After longer than the backoff sets the next try', async () => {
    const { endpoints, clock, byHost } = pool();
    const a = byHost('a');
    await endpoints
      .withFailover(async (endpoint) => {
        if (endpoint === a) throw new ApiError(503, 'redis away', 20_000);
        return 'b answered';
      })
      .then((value) => expect(value).toBe('b answered'));
    expect(a.healthy).toBe(false);
    expect(a.nextTryAt - clock.t).toBe(20_000);
  });

  it('gives up at the deadline with the last error as the cause', async () => {
    const { endpoints, clock } = pool(() => networkError());
    const started = clock.t;
    const failure = await endpoints
      .withFailover(async () => Promise.reject(networkError('ECONNRESET')), { deadlineMs: 10_000 })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(FailoverError);
    expect((failure as FailoverError).message).toMatch(
      /gave up after \d+ attempt\(s\) on 3 API server\(s\): .*ECONNRESET/,
    );
    expect((failure as FailoverError).cause).toMatchObject({ code: 'ECONNRESET' });
    expect(clock.t - started).toBeLessThanOrEqual(10_000);
  });

  it('stops when the signal aborts', async () => {
    const { endpoints } = pool();
    const controller = new AbortController();
    const failure = endpoints.withFailover(
      async () => {
        controller.abort(new Error('stop'));
        throw networkError();
      },
      { signal: controller.signal },
    );
    await expect(failure).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('isRetryableError', () => {
  it.each([
    [networkError('ECONNREFUSED'), true],
    [networkError('ECONNRESET'), true],
    [new TimeoutError('slow'), true],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), true],
    [new TypeError('fetch failed', { cause: networkError('ENOTFOUND') }), true],
    [new ApiError(429, 'busy'), true],
    [new ApiError(502, 'x'), true],
    [new ApiError(503, 'x'), true],
    [new ApiError(504, 'x'), true],
    [new ApiError(400, 'x'), false],
    [new ApiError(401, 'x'), false],
    [new ApiError(404, 'x'), false],
    [new ApiError(409, 'x'), false],
    [
      new ApiError(409, {
        message: 'a request with this Idempotency-Key is still being processed; retry later',
      }),
      true,
    ],
    [new ApiError(409, 'conflict', 2000), true],
    [new ApiError(500, 'x'), false],
    [new Error('bug'), false],
    [Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR' }), false],
  ])('%s -> %s', (error, retryable) => {
    expect(isRetryableError(error)).toBe(retryable);
  });
});

describe('sending a request again after its socket died', () => {
  it.each([
    [networkError('EPIPE'), true],
    [networkError('ECONNRESET'), true],
    [Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), true],
    [new Error('socket hang up'), true],
    [networkError('ECONNREFUSED'), false],
    [new TimeoutError('slow'), false],
    [new Error('bug'), false],
  ])('%s is a dead socket: %s', (error, dead) => {
    expect(isDeadSocketError(error)).toBe(dead);
  });

  it.each([
    ['GET', {}, true],
    ['DELETE', {}, true],
    ['POST', {}, false],
    ['POST', { 'Idempotency-Key': 'k' }, true],
    ['post', { 'idempotency-key': 'k' }, true],
  ])('%s %j may be sent twice: %s', (method, headers, replayable) => {
    expect(isReplayable({ method, headers })).toBe(replayable);
  });
});
