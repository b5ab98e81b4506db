import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { uncompressSync } from 'lz4-napi';
import WebSocket, { WebSocketServer } from 'ws';
import {
  LIVE_SESSION_CLOSE,
  liveSessionPath,
  type LiveSessionServerMessage,
  type StreamView,
} from '#contracts';

/**
 * An in-process stand-in for the API and the encoder nodes of one live stream, speaking the live
 * session protocol over real loopback sockets (API.md, "Live sessions"), for the session client's
 * unit specs. Its "encoder" answers each frame with `<node>:<frame>:<first byte of the frame>` and
 * keeps a log of what it committed, as the real node does in Redis. Faults are switches: kill a node
 * (its sockets die, its port closes), hang it (it reads frames and answers nothing), make it drop the
 * socket right after committing a frame, or run it without Redis (outputs `durable: false`).
 */

export interface LoggedOutput {
  frame: number;
  keyframe: boolean;
  data: Buffer;
  node: string;
}

interface NodeState {
  name: string;
  server: http.Server;
  wss: WebSocketServer;
  url: string;
  alive: boolean;
  hung: boolean;
  /** Outputs are not written to the log (Redis away): `durable: false`, queued. */
  nonDurable: boolean;
  queued: LoggedOutput[];
  /** Drop the socket right after committing this frame (before sending its output). */
  dropAfterCommit?: number;
  /** Answer frames after this many ms. */
  delayMs: number;
  /** Frames received, in order (their numbers). */
  received: number[];
  /** Most frames in flight seen at once on one socket. */
  maxInFlight: number;
  /** Whether the node's encoder for the stream has started (its first output is a keyframe). */
  encoding: boolean;
  socket?: WebSocket;
}

export interface FakeClusterOptions {
  nodes?: string[];
  width?: number;
  height?: number;
  window?: number;
  compression?: 'lz4';
  apiKey?: string;
}

export class FakeLiveCluster {
  readonly id = 'stream-1';
  readonly nodes = new Map<string, NodeState>();
  /** Every committed output, by frame (the stream's log). */
  readonly log = new Map<number, LoggedOutput>();
  /** Path and query of every API request. */
  readonly apiRequests: string[] = [];
  /** Query strings of every session connection (`since=...`), with the node (or `relay`). */
  readonly connections: { node: string; since: number }[] = [];
  record = { node: '', epoch: 1, frames: 0, state: 'open' as 'open' | 'ended' };
  apiUrl = '';
  readonly frameBytes: number;
  private api!: http.Server;
  private relay!: WebSocketServer;
  private keyframeNext = new Set<string>();

  private constructor(private readonly options: FakeClusterOptions) {
    this.frameBytes = (options.width ?? 4) * (options.height ?? 2) * 4;
  }

  static async start(options: FakeClusterOptions = {}): Promise<FakeLiveCluster> {
    const cluster = new FakeLiveCluster(options);
    for (const name of options.nodes ?? ['node-a', 'node-b']) await cluster.startNode(name);
    cluster.record.node = [...cluster.nodes.keys()][0];
    await cluster.startApi();
    return cluster;
  }

  node(name: string): NodeState {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  /** kill -9: every socket dies at once and the port refuses connections. */
  kill(name: string): void {
    const node = this.node(name);
    node.alive = false;
    for (const client of node.wss.clients) client.terminate();
    node.server.close();
    node.server.closeAllConnections();
  }

  /** Moves the stream to `to` (as a drain does) and closes the session on the old node with 1012. */
  drain(from: string, to: string): void {
    this.move(to);
    this.node(from).socket?.close(LIVE_SESSION_CLOSE.draining, 'node draining');
  }

  /** Commits the queued (non-durable) outputs to the log and tells the client. */
  flush(name: string): void {
    const node = this.node(name);
    node.nonDurable = false;
    let upTo = -1;
    for (const output of node.queued.splice(0)) {
      this.log.set(output.frame, output);
      this.record.frames = Math.max(this.record.frames, output.frame + 1);
      upTo = output.frame;
    }
    if (upTo >= 0) this.sendText(node.socket, { type: 'durable', upTo });
  }

  view(): StreamView {
    const node = this.nodes.get(this.record.node)!;
    return {
      id: this.id,
      codec: 'h264',
      mode: 'live',
      pool: 'cpu',
      state: this.record.state,
      width: this.options.width ?? 4,
      height: this.options.height ?? 2,
      format: 'rgba',
      quality: 80,
      speed: 80,
      fps: 30,
      keyframeInterval: 1000,
      oddSize: 'exact',
      batches: 0,
      delivered: 0,
      frames: this.record.frames,
      lastEventId: 0,
      node: this.record.node,
      createdAt: new Date(0).toISOString(),
      links: { self: '', frames: '', events: '', ws: '' },
      session: {
        url: `${node.url}${liveSessionPath(this.id)}`,
        token: `token:${node.name}:${this.record.epoch}`,
        expiresAt: new Date(Date.now() + 300_000).toISOString(),
        node: node.name,
        relayUrl: `${this.apiUrl.replace(/^http/, 'ws')}${liveSessionPath(this.id)}`,
      },
      ...(this.options.compression ? { compression: this.options.compression } : {}),
    } as StreamView;
  }

  async stop(): Promise<void> {
    for (const client of this.relay.clients) client.terminate();
    this.api.closeAllConnections();
    await new Promise((resolve) => this.api.close(resolve));
    for (const node of this.nodes.values()) {
      for (const client of node.wss.clients) client.terminate();
      node.server.closeAllConnections();
      if (node.alive) await new Promise((resolve) => node.server.close(resolve));
    }
  }

  private move(to: string): void {
    this.record.node = to;
    this.record.epoch += 1;
    this.node(to).encoding = false;
  }

  private async listen(server: http.Server): Promise<string> {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  private async startNode(name: string): Promise<void> {
    const server = http.createServer((_request, response) => {
      response.writeHead(404).end();
    });
    const wss = new WebSocketServer({ noServer: true });
    const node: NodeState = {
      name,
      server,
      wss,
      url: '',
      alive: true,
      hung: false,
      nonDurable: false,
      queued: [],
      delayMs: 0,
      received: [],
      maxInFlight: 0,
      encoding: false,
    };
    server.on('upgrade', (request, socket, head) => {
      const url = new URL(request.url ?? '/', 'http://x');
      const token = (request.headers.authorization ?? '').replace(/^Bearer /, '');
      const [, tokenNode, epoch] = token.split(':');
      const refuse = (status: number) => {
        socket.end(`HTTP/1.1 ${status} No\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
      };
      if (url.pathname !== liveSessionPath(this.id)) return refuse(404);
      if (tokenNode !== name) return refuse(401);
      if (this.record.node !== name || Number(epoch) !== this.record.epoch) return refuse(409);
      wss.handleUpgrade(request, socket, head, (ws) =>
        this.session(node, ws, Number(url.searchParams.get('since') ?? -1)),
      );
    });
    node.url = (await this.listen(server)).replace(/^http/, 'ws');
    this.nodes.set(name, node);
  }

  private sendText(ws: WebSocket | undefined, message: LiveSessionServerMessage): void {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  private sendOutput(ws: WebSocket, output: LoggedOutput, durable: boolean): void {
    this.sendText(ws, {
      type: 'output',
      frame: output.frame,
      keyframe: output.keyframe,
      bytes: output.data.length,
      contentType: 'video/h264',
      ...(durable ? {} : { durable: false as const }),
    });
    ws.send(output.data);
  }

  private session(node: NodeState, ws: WebSocket, since: number): void {
    this.connections.push({ node: node.name, since });
    node.socket?.close(LIVE_SESSION_CLOSE.moved, 'replaced by a newer socket');
    node.socket = ws;
    const epoch = this.record.epoch;
    let expected = this.record.frames;
    let answered = expected - 1;
    this.sendText(ws, {
      type: 'ready',
      node: node.name,
      nextFrame: expected,
      window: this.options.window ?? 4,
    });
    for (const [frame, output] of [...this.log.entries()].sort((a, b) => a[0] - b[0])) {
      if (frame > since) this.sendOutput(ws, output, true);
    }
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        const message = JSON.parse(data.toString()) as { type: string };
        if (message.type === 'keyframe') this.keyframeNext.add(node.name);
        return;
      }
      const raw = this.options.compression === 'lz4' ? uncompressSync(data) : data;
      if (raw.length !== this.frameBytes) {
        this.sendText(ws, { type: 'error', message: `frame is ${raw.length} bytes` });
        ws.close(LIVE_SESSION_CLOSE.badMessage, 'bad frame');
        return;
      }
      const frame = expected++;
      node.received.push(frame);
      node.maxInFlight = Math.max(node.maxInFlight, frame - answered);
      if (node.hung) return;
      const keyframe = !node.encoding || this.keyframeNext.delete(node.name);
      node.encoding = true;
      const output: LoggedOutput = {
        frame,
        keyframe,
        data: Buffer.from(`${node.name}:${frame}:${raw[0]}`),
        node: node.name,
      };
      setTimeout(() => {
        if (ws.readyState !== WebSocket.OPEN || !node.alive) return;
        if (this.record.epoch !== epoch || this.record.node !== node.name) {
          ws.close(LIVE_SESSION_CLOSE.moved, 'the stream moved');
          return;
        }
        answered = frame;
        if (node.nonDurable) node.queued.push(output);
        else {
          this.log.set(frame, output);
          this.record.frames = frame + 1;
        }
        if (node.dropAfterCommit === frame) {
          node.dropAfterCommit = undefined;
          ws.terminate();
          return;
        }
        this.sendOutput(ws, output, !node.nonDurable);
      }, node.delayMs);
    });
  }

  private async startApi(): Promise<void> {
    this.api = http.createServer((request, response) => {
      this.apiRequests.push(request.url ?? '');
      const url = new URL(request.url ?? '/', 'http://x');
      if (this.options.apiKey && request.headers.authorization !== `Bearer ${this.options.apiKey}`) {
        response.writeHead(401, { 'content-type': 'application/json' }).end('{"statusCode":401}');
        return;
      }
      if (request.method === 'POST' && url.pathname === '/v1/streams') {
        response.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(this.view()));
        return;
      }
      if (request.method === 'DELETE' && url.pathname === `/v1/streams/${this.id}`) {
        this.record.state = 'ended';
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.view()));
        return;
      }
      if (url.pathname !== `/v1/streams/${this.id}`) {
        response.writeHead(404, { 'content-type': 'application/json' }).end('{"statusCode":404}');
        return;
      }
      const unreachable = url.searchParams.get('unreachable');
      if (unreachable && unreachable === this.record.node) {
        const node = this.node(unreachable);
        if (!node.alive || node.hung) {
          const other = [...this.nodes.values()].find((candidate) => candidate.alive && !candidate.hung);
          if (other) this.move(other.name);
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.view()));
    });
    this.relay = new WebSocketServer({ noServer: true });
    this.api.on('upgrade', (request, socket, head) => {
      if (this.options.apiKey && request.headers.authorization !== `Bearer ${this.options.apiKey}`) {
        socket.end('HTTP/1.1 401 No\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      const url = new URL(request.url ?? '/', 'http://x');
      this.relay.handleUpgrade(request, socket, head, (client) => this.relayTo(client, url.search));
    });
    this.apiUrl = await this.listen(this.api);
  }

  /** The relay: the same protocol piped to the node that holds the stream; 4409 when the node goes. */
  private relayTo(client: WebSocket, search: string): void {
    const view = this.view();
    const upstream = new WebSocket(`${view.session!.url}${search}`, {
      headers: { authorization: `Bearer ${view.session!.token}` },
    });
    upstream.on('message', (data: Buffer, isBinary: boolean) => client.send(data, { binary: isBinary }));
    client.on('message', (data: Buffer, isBinary: boolean) => {
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary });
    });
    const end = () => {
      if (client.readyState === WebSocket.OPEN) client.close(LIVE_SESSION_CLOSE.moved, 'ask the API again');
    };
    upstream.on('close', end);
    upstream.on('error', end);
    client.on('close', () => upstream.terminate());
  }
}
