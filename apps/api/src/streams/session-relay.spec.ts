import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import type { StreamRecord, StreamStore } from '#cluster';
import type { Principal } from '../auth/key-ring.js';
import type { SessionGrants, SessionTarget } from './session-grants.js';
import { SESSION_PATH, SessionRelay } from './session-relay.js';

const STREAM = 'sAAAAAAAAAAAAAAAA';
const CALLER: Principal = { tenant: 'acme', operator: false };

function liveRecord(fields: Partial<StreamRecord> = {}): StreamRecord {
  return {
    id: STREAM,
    params: {
      codec: 'h264',
      mode: 'live',
      pool: 'cpu',
      width: 16,
      height: 8,
      format: 'bgra',
      quality: 80,
      speed: 70,
      fps: 30,
      keyframeInterval: 300,
    },
    state: 'open',
    nextSeq: 0,
    cursor: 0,
    frames: 0,
    lastEventId: 0,
    node: 'node-a',
    epoch: 2,
    createdAt: 0,
    tenant: 'acme',
    ...fields,
  };
}

/** What the relay's upgrade got: the socket, or the HTTP answer that refused it. */
interface Opened {
  ws: WebSocket;
  messages: { data: string; binary: boolean }[];
  closed: Promise<{ code: number; reason: string }>;
}

/**
 * A node's data port stand-in: takes the session with the right token, answers each binary frame with
 * a text output and a binary packet, and echoes text; what it got is kept for the test.
 */
class FakeNode {
  readonly server: Server;
  readonly wss = new WebSocketServer({ noServer: true });
  readonly upgrades: { url: string; authorization: string | undefined }[] = [];
  readonly received: { data: string; binary: boolean }[] = [];
  readonly sockets: WebSocket[] = [];
  closes: { code: number; reason: string }[] = [];
  refuseWith: { status: number; body: string; retryAfter?: string } | null = null;
  /** Answers upgrades this much later. */
  delayMs = 0;

  constructor() {
    this.server = createServer();
    this.server.on('upgrade', (request: IncomingMessage, socket, head) => {
      this.upgrades.push({ url: request.url ?? '', authorization: request.headers.authorization });
      if (this.delayMs > 0) {
        setTimeout(() => socket.destroy(), this.delayMs);
        return;
      }
      if (this.refuseWith) {
        const { status, body, retryAfter } = this.refuseWith;
        socket.end(
          `HTTP/1.1 ${status} No\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retryAfter ? `Retry-After: ${retryAfter}\r\n` : ''}Connection: close\r\n\r\n${body}`,
        );
        return;
      }
      this.wss.handleUpgrade(request, socket, head, (ws) => {
        this.sockets.push(ws);
        ws.send(JSON.stringify({ type: 'ready', node: 'node-a', nextFrame: 0, window: 4 }));
        ws.on('message', (data: Buffer, binary: boolean) => {
          this.received.push({ data: binary ? data.toString('hex') : data.toString(), binary });
          if (binary) {
            ws.send(
              JSON.stringify({
                type: 'output',
                frame: 0,
                keyframe: true,
                bytes: 3,
                contentType: 'video/h264',
              }),
            );
            ws.send(Buffer.from([0, 0, 1]));
          } else ws.send(data, { binary: false });
        });
        ws.on('close', (code, reason) => this.closes.push({ code, reason: reason.toString() }));
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('SessionRelay', () => {
  let node: FakeNode;
  let nodeUrl: string;
  let api: Server;
  let apiUrl: string;
  let record: StreamRecord | null;
  let target: SessionTarget | undefined;
  let relay: SessionRelay;
  const opened: WebSocket[] = [];

  beforeEach(async () => {
    node = new FakeNode();
    nodeUrl = await node.listen();
    record = liveRecord();
    target = {
      url: `${nodeUrl}/v1/streams/${STREAM}/session`,
      token: 'token-for-node-a',
      expiresAt: Date.now() + 60_000,
      node: 'node-a',
    };
    const streams = { get: () => Promise.resolve(record) } as unknown as StreamStore;
    const grants = { targetOf: () => Promise.resolve(target) } as unknown as SessionGrants;
    relay = new SessionRelay(streams, grants);
    api = createServer();
    api.on('upgrade', (request: IncomingMessage, socket, head) => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const match = SESSION_PATH.exec(url.pathname)!;
      void relay.upgrade(request, socket, head, match[1], url.searchParams, CALLER);
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `ws://127.0.0.1:${(api.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    for (const ws of opened.splice(0)) ws.terminate();
    await node.stop();
    api.closeAllConnections();
    await new Promise((resolve) => api.close(resolve));
  });

  function open(query = ''): Promise<Opened> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${apiUrl}/v1/streams/${STREAM}/session${query}`);
      opened.push(ws);
      const messages: Opened['messages'] = [];
      ws.on('message', (data: Buffer, binary: boolean) =>
        messages.push({ data: binary ? data.toString('hex') : data.toString(), binary }),
      );
      const closed = new Promise<{ code: number; reason: string }>((done) =>
        ws.on('close', (code, reason) => done({ code, reason: reason.toString() })),
      );
      ws.once('open', () => resolve({ ws, messages, closed }));
      ws.once('unexpected-response', (_, response) => reject(new Error(`refused ${response.statusCode}`)));
      ws.once('error', reject);
    });
  }

  function refused(query = ''): Promise<{ status: number; retryAfter?: string; message: string }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${apiUrl}/v1/streams/${STREAM}/session${query}`);
      ws.once('unexpected-response', (_, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            retryAfter: response.headers['retry-after'],
            message: (JSON.parse(body) as { message: string }).message,
          }),
        );
      });
      ws.once('open', () => reject(new Error('opened')));
      ws.once('error', reject);
    });
  }

  async function until(check: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  it("opens the node's session with the token and since, and relays text as text and binary as binary", async () => {
    const session = await open('?since=-1');
    expect(node.upgrades).toEqual([
      { url: `/v1/streams/${STREAM}/session?since=-1`, authorization: 'Bearer token-for-node-a' },
    ]);
    await until(() => session.messages.length === 1, 'ready');
    expect(JSON.parse(session.messages[0].data)).toMatchObject({ type: 'ready', window: 4 });
    session.ws.send(Buffer.from([1, 2, 3, 4]));
    session.ws.send(JSON.stringify({ type: 'keyframe' }));
    await until(() => session.messages.length === 4, 'output, packet and echo');
    expect(node.received).toEqual([
      { data: '01020304', binary: true },
      { data: '{"type":"keyframe"}', binary: false },
    ]);
    expect(session.messages.slice(1).map((message) => message.binary)).toEqual([false, true, false]);
    expect(session.messages[2].data).toBe('000001');
    session.ws.close(1000, 'done');
    await until(() => node.closes.length === 1, 'the node to see the close');
    expect(node.closes[0]).toEqual({ code: 1000, reason: 'done' });
  });

  it("passes the node's close code on, and closes with 4409 when the node connection drops", async () => {
    const ended = await open();
    await until(() => node.sockets.length === 1, 'the node socket');
    node.sockets[0].close(4410, 'stream ended');
    expect(await ended.closed).toEqual({ code: 4410, reason: 'stream ended' });

    const dropped = await open();
    await until(() => node.sockets.length === 2, 'the second node socket');
    node.sockets[1].terminate();
    const end = await dropped.closed;
    expect(end.code).toBe(4409);
    expect(end.reason).toMatch(
      /^lost the node: ask GET \/v1\/streams\/sAAAAAAAAAAAAAAAA\?unreachable=node-a/,
    );
  });

  it('closes its sessions with 1012 when the API stops', async () => {
    const session = await open();
    await until(() => session.messages.length === 1, 'ready');
    relay.onModuleDestroy();
    expect(await session.closed).toEqual({ code: 1012, reason: 'the API is restarting: ask it again' });
    await until(() => node.closes.length === 1, 'the node to see its connection go');
  });

  it("answers the node's refusals before the upgrade: moved 409, a refused token 502, at capacity 429", async () => {
    node.refuseWith = { status: 409, body: '{"message":"stream moved: ask the API again"}' };
    expect(await refused()).toMatchObject({
      status: 409,
      message: 'node node-a: stream moved: ask the API again',
    });
    node.refuseWith = { status: 401, body: '{"message":"bad token"}' };
    expect(await refused()).toMatchObject({
      status: 502,
      message: expect.stringMatching(/refused the API's session token .* must share CLUSTER_SECRETS/),
    });
    node.refuseWith = { status: 429, body: '{"message":"full"}', retryAfter: '7' };
    expect(await refused()).toMatchObject({ status: 429, retryAfter: '7' });
  });

  it('holds a fast node back while its client does not read, and delivers everything once it does', async () => {
    const session = await open();
    await until(() => session.messages.length === 1, 'ready');
    session.ws.pause();
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const count = 64;
    for (let index = 0; index < count; index++) node.sockets[0].send(chunk);
    // The relay stops reading the node: most of the 64 MiB stays in the node's own send buffer (the
    // rest fills the kernel's socket buffers and the relay's mark), not in the relay.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(node.sockets[0].bufferedAmount).toBeGreaterThan(16 * 1024 * 1024);
    session.ws.resume();
    await until(() => session.messages.length === 1 + count, 'every message');
    expect(node.sockets[0].bufferedAmount).toBe(0);
  });

  it('survives a client that resets its connection while the node is being dialled', async () => {
    node.delayMs = 300;
    const client = connect((api.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    client.write(
      `GET /v1/streams/${STREAM}/session HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await until(() => node.upgrades.length === 1, 'the dial');
    client.resetAndDestroy();
    await new Promise((resolve) => setTimeout(resolve, 600));
    // Still serving.
    node.delayMs = 0;
    const session = await open();
    await until(() => session.messages.length === 1, 'ready');
  });

  it('answers 503 + Retry-After when the node is not there, and the stream conditions before dialling', async () => {
    await node.stop();
    expect(await refused()).toMatchObject({
      status: 503,
      retryAfter: '1',
      message: expect.stringMatching(/node node-a did not take the session .*\?unreachable=node-a/),
    });
    node = new FakeNode();
    await node.listen();
    target = undefined;
    expect(await refused()).toMatchObject({ status: 503, retryAfter: '1' });
    record = liveRecord({ params: { ...liveRecord().params, mode: 'batch' }, node: null });
    expect(await refused()).toMatchObject({ status: 409, message: expect.stringMatching(/batch stream/) });
    record = liveRecord({ state: 'closed' });
    expect(await refused()).toMatchObject({ status: 410 });
    record = liveRecord({ tenant: 'other' });
    expect(await refused()).toMatchObject({ status: 404 });
    record = null;
    expect(await refused()).toMatchObject({ status: 404 });
    record = liveRecord();
    expect(await refused('?since=abc')).toMatchObject({ status: 400 });
    expect(await refused('?since=-2')).toMatchObject({ status: 400 });
    expect(node.upgrades).toEqual([]);
  });
});
