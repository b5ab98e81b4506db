import { ApiError } from './api-client.js';
import { EndpointPool } from './endpoint-pool.js';
import type { HttpRequest } from './http.js';
import { StreamClient, toStreamEvent, type StreamEventWithData } from './stream-client.js';
import {
  FakeClock,
  fakeTransport,
  networkError,
  response,
  sse,
  streamingResponse,
} from './testing/fake-http.js';
import type { WebSocketConnector, WebSocketHandlers } from './websocket.js';

const output = (seq: number, index: number, frame: number) => ({
  seq,
  jobId: `job-${seq}`,
  index,
  frame,
  contentType: 'video/h264',
  bytes: 10 + frame,
  keyframe: frame === 0,
  url: `/v1/jobs/job-${seq}/outputs/${index}`,
});
const batch = (seq: number, frames: number) => ({
  seq,
  jobId: `job-${seq}`,
  frames,
  outputs: frames,
  node: 'n1',
});

function setup(
  list: string,
  handler: (
    request: HttpRequest,
    index: number,
  ) => ReturnType<typeof response> | Promise<ReturnType<typeof response>>,
  options: { apiKey?: string; webSocket?: WebSocketConnector } = {},
) {
  const clock = new FakeClock();
  const transport = fakeTransport((request, index) =>
    request.url.endsWith('/health/ready') ? response(200, { status: 'ok' }) : handler(request, index),
  );
  const pool = new EndpointPool(list, { transport, now: clock.now, sleep: clock.sleep, random: () => 0.5 });
  const client = new StreamClient(pool, { apiKey: options.apiKey, webSocket: options.webSocket });
  const calls = () => transport.requests.filter((r) => !r.url.endsWith('/health/ready'));
  return { clock, transport, pool, client, calls };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

describe('StreamClient.follow', () => {
  it('resumes with Last-Event-ID after a drop and an endpoint switch, never yielding an id twice', async () => {
    const connections: string[] = [];
    const { client, calls } = setup('http://a:1/;http://b:1/', (request) => {
      connections.push(`${new URL(request.url).host} ${request.headers?.['last-event-id'] ?? '-'}`);
      switch (connections.length) {
        case 1: // a: three events, half of the fourth, then the connection drops
          return streamingResponse(
            200,
            [
              ': keepalive\n\n',
              sse(1, 'output', output(0, 0, 0)),
              sse(2, 'output', output(0, 1, 1)) + sse(3, 'batch', batch(0, 2)),
              'id: 4\nevent: output\ndata: {"seq":1',
            ],
            Object.assign(new Error('aborted'), { code: 'ECONNRESET' }),
          );
        case 2: // b: replays from before Last-Event-ID (must be skipped), then ends without `end`
          return streamingResponse(200, [
            sse(2, 'output', output(0, 1, 1)),
            sse(3, 'batch', batch(0, 2)),
            sse(4, 'output', output(1, 0, 2)),
            sse(5, 'batch', batch(1, 1)),
          ]);
        default: // back on a (b is backing off): the end
          return streamingResponse(200, [
            sse(5, 'batch', batch(1, 1)),
            sse(6, 'end', { batches: 2, reason: 'closed' }),
          ]);
      }
    });
    const reconnects: number[] = [];
    const events = await collect(
      client.follow('s1', { onReconnect: (info) => reconnects.push(info.lastEventId) }),
    );
    expect(events.map((event) => event.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events.map((event) => event.type)).toEqual([
      'output',
      'output',
      'batch',
      'output',
      'batch',
      'end',
    ]);
    expect(events[3]).toMatchObject({
      type: 'output',
      seq: 1,
      index: 0,
      frame: 2,
      url: '/v1/jobs/job-1/outputs/0',
    });
    expect(connections).toEqual(['a:1 -', 'b:1 3', 'a:1 5']);
    expect(reconnects).toEqual([3, 5]);
    expect(calls().every((r) => r.url.endsWith('/v1/streams/s1/events'))).toBe(true);
    expect(calls()[0].headers).toMatchObject({ accept: 'text/event-stream' });
    expect(client.failovers).toBe(2);
  });

  it('starts after `since` and does not retry a 404', async () => {
    const { client, calls } = setup('http://a:1/;http://b:1/', () =>
      response(404, { statusCode: 404, error: 'Not Found', message: 'no stream s9' }),
    );
    await expect(collect(client.follow('s9', { since: 41 }))).rejects.toThrow(ApiError);
    expect(calls()).toHaveLength(1);
    expect(calls()[0].headers?.['last-event-id']).toBe('41');
  });

  it('passes on fell-behind and resumes after the trimmed range', async () => {
    const { client } = setup('http://a:1/', () =>
      streamingResponse(200, [
        'event: fell-behind\ndata: {"from":1,"to":40,"missed":40}\n\n',
        sse(41, 'batch', batch(20, 1)),
        sse(42, 'end', { batches: 21, reason: 'closed' }),
      ]),
    );
    const events = await collect(client.follow('s1'));
    expect(events.map((event) => [event.type, event.id])).toEqual([
      ['fell-behind', 40],
      ['batch', 41],
      ['end', 42],
    ]);
  });

  it('gives up when it cannot reconnect within reconnectForMs', async () => {
    const { client } = setup('http://a:1/', () => Promise.reject(networkError('ECONNREFUSED')));
    await expect(collect(client.follow('s1', { reconnectForMs: 5000 }))).rejects.toThrow(
      /could not reconnect within 5000 ms: .*ECONNREFUSED/,
    );
  });
});

describe('StreamClient.follow outages', () => {
  it('gives up when every connection drops at once, without events, for reconnectForMs', async () => {
    const { client, calls } = setup('http://a:1/', () => streamingResponse(200, [': keepalive\n\n']));
    await expect(collect(client.follow('s1', { reconnectForMs: 5000 }))).rejects.toThrow(
      /could not reconnect within 5000 ms: the event stream ended before its end event/,
    );
    expect(calls().length).toBeGreaterThan(2);
  });
});

describe('StreamClient.submitFrames', () => {
  it('sends one Idempotency-Key per batch and reuses it on every retry and endpoint', async () => {
    let attempts = 0;
    const { client, calls } = setup(
      'http://a:1/;http://b:1/',
      () => {
        attempts += 1;
        if (attempts === 1) throw networkError('ECONNRESET');
        if (attempts === 2)
          return response(503, { statusCode: 503, message: 'busy' }, { 'retry-after': '1' });
        return response(202, {
          streamId: 's1',
          seq: attempts,
          jobId: `j${attempts}`,
          frames: 2,
          firstFrame: 0,
        });
      },
      { apiKey: 'k1' },
    );
    const body = Buffer.alloc(2 * 4 * 4 * 4, 7);
    const accepted = await client.submitFrames('s1', body, 2);
    expect(accepted).toMatchObject({ streamId: 's1', seq: 3, frames: 2 });
    const first = calls();
    expect(first).toHaveLength(3);
    const keys = first.map((r) => r.headers?.['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    expect(first.map((r) => new URL(r.url).host)).toEqual(['a:1', 'b:1', 'a:1']);
    for (const request of first) {
      expect(request).toMatchObject({
        method: 'POST',
        url: expect.stringMatching(/\/v1\/streams\/s1\/frames\?frames=2$/),
      });
      expect(request.body).toBe(body); // the same buffer, not a copy
      expect(request.headers).toMatchObject({
        'content-type': 'application/octet-stream',
        authorization: 'Bearer k1',
      });
    }

    await client.submitFrames('s1', body, 2);
    const second = calls()[3].headers?.['idempotency-key'];
    expect(second).toBeDefined();
    expect(second).not.toBe(keys[0]);
  });

  it('does not retry a 409 (stream closed)', async () => {
    const { client, calls } = setup('http://a:1/;http://b:1/', () =>
      response(409, { statusCode: 409, error: 'Conflict', message: 'stream s1 is closed' }),
    );
    await expect(client.submitFrames('s1', Buffer.alloc(4), 1)).rejects.toThrow(
      'HTTP 409: stream s1 is closed',
    );
    expect(calls()).toHaveLength(1);
  });
});

describe('StreamClient requests', () => {
  it('create posts JSON; output() fails over; close() of a closed stream returns it', async () => {
    const view = { id: 's1', state: 'closed' };
    let outputCalls = 0;
    const { client, calls } = setup('http://a:1/;http://b:1/', (request) => {
      const path = new URL(request.url).pathname;
      if (request.method === 'POST' && path === '/v1/streams')
        return response(201, { id: 's1', state: 'open' });
      if (path.startsWith('/v1/jobs/') && ++outputCalls === 1) throw networkError();
      if (path.startsWith('/v1/jobs/')) return response(200, 'BYTES');
      if (request.method === 'DELETE') return response(409, { statusCode: 409, message: 'already closed' });
      return response(200, view);
    });
    await expect(
      client.create({ codec: 'h264', width: 4, height: 4, format: 'rgba', mode: 'live' }),
    ).resolves.toMatchObject({
      id: 's1',
    });
    expect(JSON.parse((calls()[0].body as Buffer).toString())).toEqual({
      codec: 'h264',
      width: 4,
      height: 4,
      format: 'rgba',
      mode: 'live',
    });
    expect(calls()[0].headers).toMatchObject({ 'content-type': 'application/json' });
    const bytes = await client.output('http://elsewhere:9/v1/jobs/j1/outputs/0');
    expect(bytes.toString()).toBe('BYTES');
    // create went to a; round-robin sends the output request to b (refused), then to a
    expect(
      calls()
        .slice(-2)
        .map((r) => r.url),
    ).toEqual(['http://b:1/v1/jobs/j1/outputs/0', 'http://a:1/v1/jobs/j1/outputs/0']);
    await expect(client.close('s1')).resolves.toEqual(view);
  });
});

describe('StreamClient.followWs', () => {
  type Step = (handlers: WebSocketHandlers) => void;
  const text =
    (payload: Record<string, unknown>): Step =>
    (h) =>
      h.onMessage(Buffer.from(JSON.stringify(payload)), false);
  const binary =
    (data: string): Step =>
    (h) =>
      h.onMessage(Buffer.from(data), true);

  function connector(scripts: Step[][]) {
    const opened: { url: string; headers: Record<string, string> }[] = [];
    const connect: WebSocketConnector = (url, options, handlers) => {
      const script = scripts[opened.length] ?? [];
      opened.push({ url, headers: options.headers });
      let stopped = false;
      void (async () => {
        for (const step of script) {
          await new Promise((resolve) => setImmediate(resolve));
          if (stopped) return;
          step(handlers);
        }
      })();
      return {
        send: () => undefined,
        ping: () => undefined,
        close: () => (stopped = true),
        terminate: () => (stopped = true),
        pause: () => undefined,
        resume: () => undefined,
      };
    };
    return { connect, opened };
  }

  it('yields outputs with their bytes and replays an output whose bytes were lost in a drop', async () => {
    const { connect, opened } = connector([
      [
        (h) => h.onOpen(),
        text({ id: 1, type: 'output', ...output(0, 0, 0) }),
        binary('packet-0'),
        text({ id: 2, type: 'batch', ...batch(0, 1) }),
        text({ id: 3, type: 'output', ...output(1, 0, 1) }),
        (h) => h.onClose(1006, ''), // before output 3's bytes
      ],
      [
        (h) => h.onOpen(),
        text({ id: 3, type: 'output', ...output(1, 0, 1) }),
        binary('packet-1'),
        text({ id: 4, type: 'batch', ...batch(1, 1) }),
        text({ id: 5, type: 'end', batches: 2, reason: 'closed' }),
      ],
    ]);
    const { client } = setup('http://a:1/', () => response(500), { apiKey: 'k1', webSocket: connect });
    const events: StreamEventWithData[] = await collect(client.followWs('s1'));
    expect(events.map((event) => event.id)).toEqual([1, 2, 3, 4, 5]);
    const outputs = events.filter((event) => event.type === 'output');
    expect(outputs.map((event) => event.data.toString())).toEqual(['packet-0', 'packet-1']);
    expect(opened.map((o) => o.url)).toEqual([
      'ws://a:1/v1/streams/s1/ws?since=0',
      'ws://a:1/v1/streams/s1/ws?since=2',
    ]);
    expect(opened[0].headers).toEqual({ authorization: 'Bearer k1' });
  });

  it('turns a refused upgrade into an ApiError (401 is not retried)', async () => {
    const { connect, opened } = connector([
      [(h) => h.onUnexpectedResponse(401, {}, '{"statusCode":401,"message":"a valid API key is required"}')],
    ]);
    const { client } = setup('http://a:1/', () => response(500), { webSocket: connect });
    await expect(collect(client.followWs('s1'))).rejects.toThrow('HTTP 401: a valid API key is required');
    expect(opened).toHaveLength(1);
  });
});

describe('toStreamEvent', () => {
  it('takes the id and type from SSE fields or from the JSON', () => {
    expect(toStreamEvent({ id: '7', event: 'batch', data: JSON.stringify(batch(1, 1)) })).toMatchObject({
      id: 7,
      type: 'batch',
    });
    expect(
      toStreamEvent({ data: JSON.stringify({ id: 8, type: 'end', batches: 1, reason: 'closed' }) }),
    ).toMatchObject({
      id: 8,
      type: 'end',
    });
    expect(
      toStreamEvent({ data: JSON.stringify({ type: 'output', seq: 0, jobId: 'j', index: 2, id: 3 }) }),
    ).toMatchObject({
      url: '/v1/jobs/j/outputs/2',
    });
    expect(toStreamEvent({ event: 'batch', data: '{}' })).toBeUndefined();
    expect(() => toStreamEvent({ id: '1', event: 'batch', data: '{nope' })).toThrow(/not JSON/);
  });
});
