import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { StreamStore, type StreamRecord } from '../../../../libs/cluster/src/index.js';
import {
  LIVE_SESSION_CLOSE,
  LIVE_SESSION_PING_MS,
  LIVE_SESSION_SILENCE_MS,
  frameByteLength,
} from '../../../../libs/contracts/src/index.js';
import type { Principal } from '../auth/key-ring.js';
import { visibleTo } from '../auth/tenancy.js';
import { parseDecimalInteger } from '../common/strict-input.js';
import { SessionGrants, type SessionTarget } from './session-grants.js';
import { STREAM_ID_PATTERN } from './streams.service.js';
import { refuse } from './upgrade-refusal.js';

/** `GET /v1/streams/:id/session` on the API: the same path as on a node's data port. */
export const SESSION_PATH = /^\/v1\/streams\/([^/]+)\/session$/;

/** How long the relay waits for the node to take the session before it answers 503. */
const DIAL_TIMEOUT_MS = 2000;
/** A session the node cannot take now (gone, moved, no data port): ask the API again this soon. */
const RETRY_AFTER_SECONDS = 1;
/** A node's refusal body is a short JSON error; no more of it is read. */
const MAX_REFUSAL_BYTES = 4096;
/** Close reasons are at most 123 bytes on the wire. */
const MAX_REASON_BYTES = 123;

/** Why the node would not open the session, as the HTTP answer the relay gives its client. */
interface Refusal {
  status: number;
  message: string;
  retryAfterSeconds?: number;
}

/**
 * The API's relay of a live session, for clients that cannot reach the nodes: the client's socket is
 * authenticated with the API key (like `/ws`), the relay opens the same session on the stream's node
 * with a fresh token, and from then on bytes go socket to socket, each message as it came (text stays
 * text, binary stays binary), never through Redis. Whichever side is slower holds the other back: a
 * side's reads pause while the other side's send buffer is over its mark. The node's close code is the
 * client's; a node connection that drops or falls silent (the node died, or the stream moved) closes
 * the client with 4409, and the client asks the API again (`GET /v1/streams/:id`, with `?unreachable=`).
 */
@Injectable()
export class SessionRelay implements OnModuleDestroy {
  private readonly logger = new Logger(SessionRelay.name);
  private readonly relayed = new Set<WebSocket>();

  constructor(
    private readonly streams: StreamStore,
    private readonly grants: SessionGrants,
  ) {}

  onModuleDestroy(): void {
    for (const client of this.relayed) closeWith(client, 1012, 'the API is restarting: ask it again');
  }

  /**
   * Answers an upgrade to a stream's session, already authenticated as `caller`: the relayed session,
   * or the HTTP form of the close code it would get (400, 404, 409 batch stream or moved, 410 ended,
   * 429, 503 + Retry-After: the node is not there).
   */
  async upgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    streamId: string,
    query: URLSearchParams,
    caller: Principal,
  ): Promise<void> {
    const since = query.get('since');
    if (since !== null && !((parseDecimalInteger(since) ?? -2) >= -1)) {
      return refuse(
        socket,
        400,
        'since must be the last frame whose output the client holds: an integer, -1 for none',
      );
    }
    const record = STREAM_ID_PATTERN.test(streamId) ? await this.streams.get(streamId) : null;
    if (!record || !visibleTo(caller, record.tenant)) {
      return refuse(socket, 404, `no stream ${streamId} (unknown, or older than the retention time)`);
    }
    if (record.params.mode !== 'live') {
      return refuse(
        socket,
        409,
        `stream ${streamId} is a batch stream: sessions are for live streams (mode=live); send its frames with POST /v1/streams/${streamId}/frames`,
      );
    }
    if (record.state !== 'open') {
      return refuse(socket, 410, `stream ${streamId} is ${record.state}: it takes no more frames`);
    }
    const target = await this.grants.targetOf(record);
    if (!target) {
      return refuse(
        socket,
        503,
        `stream ${streamId} has no session now: its node ${record.node ?? '(none)'} is gone or has no data port; ask GET /v1/streams/${streamId}?unreachable=${record.node ?? ''} and retry`,
        RETRY_AFTER_SECONDS,
      );
    }
    const gone = new Promise<void>((resolve) => socket.once('close', resolve));
    let clientGone = false;
    void gone.then(() => (clientGone = true));
    const dialed = await dial(target, since, nodePayloadLimit(record));
    if (!(dialed instanceof WebSocket)) {
      return refuse(socket, dialed.status, dialed.message, dialed.retryAfterSeconds);
    }
    if (clientGone || socket.destroyed) return dialed.terminate();
    const server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: clientPayloadLimit(record),
    });
    let piped = false;
    server.handleUpgrade(request, socket, head, (client) => {
      piped = true;
      this.pipe(client, dialed, streamId, record);
    });
    // A client socket that went away while the node was dialled is not upgraded (and not called back).
    if (!piped) dialed.terminate();
  }

  private pipe(client: WebSocket, node: DialedNode, streamId: string, record: StreamRecord): void {
    this.relayed.add(client);
    const high = highWaterMark(record);
    forward(client, node, high);
    forward(node, client, high);
    for (const [data, isBinary] of node.early.splice(0)) client.send(data, { binary: isBinary });
    node.off('message', node.onEarly);
    node.resume();

    const heard = { client: Date.now(), node: Date.now() };
    for (const [side, ws] of [
      ['client', client],
      ['node', node],
    ] as const) {
      const hear = () => (heard[side] = Date.now());
      ws.on('message', hear);
      ws.on('pong', hear);
      ws.on('ping', hear);
    }
    const ping = setInterval(() => {
      const now = Date.now();
      // A side whose reads the relay paused (the other side is slow) is not silent: it is held back.
      for (const [side, ws] of [
        ['client', client],
        ['node', node],
      ] as const) {
        if (ws.isPaused) heard[side] = now;
        if (now - heard[side] > LIVE_SESSION_SILENCE_MS) ws.terminate();
        else if (ws.readyState === WebSocket.OPEN) ws.ping();
      }
    }, LIVE_SESSION_PING_MS);

    node.on('close', (code, reason) => {
      clearInterval(ping);
      if (isSendable(code)) closeWith(client, code, reason.toString());
      else {
        closeWith(
          client,
          LIVE_SESSION_CLOSE.moved,
          `lost the node: ask GET /v1/streams/${streamId}?unreachable=${record.node ?? ''}`,
        );
      }
    });
    client.on('close', (code, reason) => {
      clearInterval(ping);
      this.relayed.delete(client);
      closeWith(node, isSendable(code) ? code : 1000, reason.toString());
    });
    client.on('error', (error) => {
      this.logger.debug(`session relay of ${streamId}: client socket error: ${error.message}`);
      client.terminate();
    });
    node.on('error', (error) => {
      this.logger.debug(`session relay of ${streamId}: node socket error: ${error.message}`);
      node.terminate();
    });
    if (node.readyState !== WebSocket.OPEN) {
      closeWith(client, LIVE_SESSION_CLOSE.moved, 'lost the node: ask the API again');
    }
  }
}

/** The node's socket, with what it sent before the client's socket was there to take it. */
type DialedNode = WebSocket & {
  early: [RawData, boolean][];
  onEarly: (data: RawData, isBinary: boolean) => void;
};

/**
 * Opens the session on the node (`?since=` passed through). Its messages are kept from the moment it
 * opens, and its reads paused, until the client's socket is there to take them.
 */
function dial(
  target: SessionTarget,
  since: string | null,
  maxPayload: number,
): Promise<DialedNode | Refusal> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (answer: DialedNode | Refusal) => {
      if (settled) return;
      settled = true;
      resolve(answer);
    };
    const url = since === null ? target.url : `${target.url}?since=${since}`;
    const node = new WebSocket(url, {
      headers: { authorization: `Bearer ${target.token}` },
      perMessageDeflate: false,
      handshakeTimeout: DIAL_TIMEOUT_MS,
      maxPayload,
      // A zero mask: ws then neither masks a frame here (a copy and an XOR of every byte, in JS without
      // bufferutil) nor unmasks it on the node. Masking guards browsers' traffic through caching
      // proxies; this hop is server to server.
      generateMask: (mask: Buffer) => void mask.fill(0),
    }) as DialedNode;
    node.early = [];
    node.onEarly = (data, isBinary) => node.early.push([data, isBinary]);
    node.on('message', node.onEarly);
    node.once('open', () => {
      node.pause();
      settle(node);
    });
    node.once('unexpected-response', (_, response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        settle(refusalFrom(target, response.statusCode ?? 502, chunks, response.headers['retry-after']));
        node.terminate();
      };
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_REFUSAL_BYTES) chunks.push(chunk);
      });
      response.on('end', done);
      response.on('error', done);
    });
    node.on('error', (error) =>
      settle({
        status: 503,
        message: `node ${target.node} did not take the session (${error.message}): report it with GET /v1/streams/:id?unreachable=${target.node}`,
        retryAfterSeconds: RETRY_AFTER_SECONDS,
      }),
    );
  });
}

/**
 * The node's refusal as the relay's answer: the same status for the conditions the contract names
 * (404, 409 moved, 410, 429, 503), with the node's message. A token the node refuses (401) is not the
 * client's fault: the API and that node do not share CLUSTER_SECRETS (502).
 */
function refusalFrom(
  target: SessionTarget,
  status: number,
  chunks: Buffer[],
  retryAfter: string | undefined,
): Refusal {
  let message = Buffer.concat(chunks).toString('utf8').slice(0, 500);
  try {
    const parsed = JSON.parse(message) as { message?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // Not the JSON error shape: its text, as it came.
  }
  const retryAfterSeconds = retryAfter !== undefined ? Number(retryAfter) : undefined;
  const retry = Number.isFinite(retryAfterSeconds) ? retryAfterSeconds : undefined;
  if (status === 401 || status === 403) {
    return {
      status: 502,
      message: `node ${target.node} refused the API's session token (${message}): the API and the node must share CLUSTER_SECRETS`,
    };
  }
  if ([404, 409, 410].includes(status)) return { status, message: `node ${target.node}: ${message}` };
  if (status === 429 || status === 503) {
    return {
      status,
      message: `node ${target.node}: ${message}`,
      retryAfterSeconds: retry ?? RETRY_AFTER_SECONDS,
    };
  }
  return { status: 502, message: `node ${target.node} answered ${status}: ${message}` };
}

/** Passes each message on as it came; reads from `from` pause while `to` has more than `high` unsent. */
function forward(from: WebSocket, to: WebSocket, high: number): void {
  from.on('message', (data: RawData, isBinary: boolean) => {
    if (to.readyState !== WebSocket.OPEN) return;
    to.send(data, { binary: isBinary }, () => {
      if (from.isPaused && to.bufferedAmount <= high / 2) from.resume();
    });
    if (to.bufferedAmount > high) from.pause();
  });
}

function frameBytesOf(record: StreamRecord): number {
  const { width, height, format } = record.params;
  return frameByteLength(width, height, format);
}

/** A frame as the client may send it: raw, or as an LZ4 block (worst case) behind its u32 size. */
function clientPayloadLimit(record: StreamRecord): number {
  const raw = frameBytesOf(record);
  return Math.max(64 * 1024, 4 + raw + Math.ceil(raw / 255) + 16);
}

/** A packet is smaller than its frame but for pathological input: leave room. */
function nodePayloadLimit(record: StreamRecord): number {
  return Math.max(16 * 1024 * 1024, 2 * frameBytesOf(record));
}

/** Two frames unsent on either side is more than a session's window needs from the relay. */
function highWaterMark(record: StreamRecord): number {
  return Math.max(1024 * 1024, 2 * frameBytesOf(record));
}

function isSendable(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999)
  );
}

function closeWith(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) return;
  if (ws.readyState === WebSocket.CONNECTING) return ws.terminate();
  ws.close(code, truncate(reason));
}

function truncate(reason: string): string {
  let text = reason;
  while (Buffer.byteLength(text) > MAX_REASON_BYTES) text = text.slice(0, -1);
  return text;
}
