import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Injectable, Optional, type OnModuleDestroy } from '@nestjs/common';
import { StreamStore, type StreamRecord } from '#cluster';
import { LIVE_SESSION_CLOSE } from '#contracts';
import type { Principal } from '../auth/key-ring.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { visibleTo } from '../auth/tenancy.js';
import { parseDecimalInteger } from '../common/strict-input.js';
import { SessionGrants, type SessionTarget } from './session-grants.js';
import { STREAM_ID_PATTERN } from './streams.service.js';
import { refuse } from './upgrade-refusal.js';
import { FrameBoundaries, acceptFor, closeFrame, isHandshakeKey } from './websocket-splice.js';

/** `GET /v1/streams/:id/session` on the API: the same path as on a node's data port. */
export const SESSION_PATH = /^\/v1\/streams\/([^/]+)\/session$/;

/** How long the relay waits for the node to take the session before it answers 503. */
const DIAL_TIMEOUT_MS = 2000;
/** A session the node cannot take now (gone, moved, no data port): ask the API again this soon. */
const RETRY_AFTER_SECONDS = 1;
/** A node's refusal body is a short JSON error; no more of it is read. */
const MAX_REFUSAL_BYTES = 4096;

/** Why the node would not open the session, as the HTTP answer the relay gives its client. */
interface Refusal {
  status: number;
  message: string;
  retryAfterSeconds?: number;
}

/** One leg of a relayed session (client or node): its socket after the handshake, and what came with it. */
interface Leg {
  socket: Socket;
  head: Buffer;
}

/**
 * The API's relay of a live session, for clients that cannot reach the nodes. The client's upgrade is
 * authenticated with the API key (like `/ws`); the relay opens the same session on the stream's node
 * with a fresh token, answers the client's handshake once the node took it, and from then on the two
 * TCP connections are spliced: bytes go through as they arrive (a frame is on its way to the node
 * before its end has reached the relay), never through Redis and never reassembled into messages, so
 * text stays text, binary stays binary, pings, pongs and close frames go end to end, and a slow side
 * holds the other back through TCP itself. Both legs negotiate no extension, so their frames are the
 * same bytes. The relay only follows frame boundaries, to put in a close frame of its own: 4409 when
 * the node connection drops (the client asks the API again, `?unreachable=`), 1012 when the API stops.
 */
@Injectable()
export class SessionRelay implements OnModuleDestroy {
  private readonly relayed = new Set<(code: number, reason: string) => void>();

  constructor(
    private readonly streams: StreamStore,
    private readonly grants: SessionGrants,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  onModuleDestroy(): void {
    for (const stop of [...this.relayed]) stop(1012, 'the API is restarting: ask it again');
  }

  /**
   * Answers an upgrade to a stream's session, already authenticated as `caller`: the relayed session,
   * or the HTTP form of the close code it would get (400, 404, 409 batch stream or moved, 410 ended,
   * 429, 502, 503 + Retry-After: the node is not there).
   */
  async upgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    streamId: string,
    query: URLSearchParams,
    caller: Principal,
  ): Promise<void> {
    // Node's HTTP server takes its error listener off an upgraded socket: a client that resets while
    // the node is dialled would otherwise be an uncaught error.
    socket.on('error', () => socket.destroy());
    const key = request.headers['sec-websocket-key'];
    if (!isHandshakeKey(key) || request.headers['sec-websocket-version'] !== '13') {
      return refuse(socket, 400, 'not a WebSocket handshake (Sec-WebSocket-Key, Sec-WebSocket-Version: 13)');
    }
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
    const node = await dial(target, since);
    if (!('socket' in node)) return refuse(socket, node.status, node.message, node.retryAfterSeconds);
    if (socket.destroyed || !socket.writable) {
      node.socket.destroy();
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
    );
    this.splice({ socket: socket as Socket, head }, node, record);
  }

  private splice(client: Leg, node: Leg, record: StreamRecord): void {
    const toClient = new FrameBoundaries();
    const toNode = new FrameBoundaries();
    for (const leg of [client, node]) {
      leg.socket.setNoDelay(true);
      leg.socket.setTimeout(0);
      leg.socket.on('error', () => leg.socket.destroy());
    }
    pipe(node.socket, client.socket, toClient);
    pipe(client.socket, node.socket, toNode);
    if (node.head.length > 0) node.socket.unshift(node.head);
    if (client.head.length > 0) client.socket.unshift(client.head);

    let clientClosed = false;
    // Ends the client's connection: after the node's close frame if one went by, else with a close
    // frame of the relay's own put between two frames (in the middle of one: without).
    const closeClient = (code: number, reason: string) => {
      if (clientClosed) return;
      clientClosed = true;
      if (client.socket.destroyed || !client.socket.writable) return void client.socket.destroy();
      if (toClient.closeSeen) client.socket.end();
      else if (toClient.atBoundary) client.socket.end(closeFrame(code, reason, false));
      else client.socket.destroy();
    };
    let nodeClosed = false;
    // A client that closed cleanly sent its close frame through; one that dropped leaves the node to
    // see its connection go, as it would see the client's own.
    const closeNode = () => {
      if (nodeClosed) return;
      nodeClosed = true;
      if (toNode.closeSeen && node.socket.writable) node.socket.end();
      else node.socket.destroy();
    };
    const stop = (code: number, reason: string) => {
      closeClient(code, reason);
      closeNode();
    };
    this.relayed.add(stop);
    this.metrics?.sessionRelays.set(this.relayed.size);
    const lostNode = () =>
      closeClient(
        LIVE_SESSION_CLOSE.moved,
        `lost the node: ask GET /v1/streams/${record.id}?unreachable=${record.node ?? ''}`,
      );
    node.socket.once('end', lostNode);
    node.socket.once('close', lostNode);
    client.socket.once('end', closeNode);
    client.socket.once('close', () => {
      this.relayed.delete(stop);
      this.metrics?.sessionRelays.set(this.relayed.size);
      closeNode();
    });
  }
}

/** Passes `from`'s bytes to `to` as they come, reading on only while `to` takes them. */
function pipe(from: Socket, to: Socket, frames: FrameBoundaries): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.writable) return;
    frames.feed(chunk);
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
}

/**
 * Opens the session on the node (`?since=` passed through, the token as a bearer): its socket once it
 * answered 101 with the right accept value, or why not, as the relay's answer.
 */
function dial(target: SessionTarget, since: string | null): Promise<Leg | Refusal> {
  return new Promise((resolve) => {
    const url = new URL(since === null ? target.url : `${target.url}?since=${since}`);
    const key = randomBytes(16).toString('base64');
    let settled = false;
    const settle = (answer: Leg | Refusal) => {
      clearTimeout(timer);
      if (settled) {
        if ('socket' in answer) answer.socket.destroy();
        return;
      }
      settled = true;
      resolve(answer);
    };
    const unreachable = (why: string): Refusal => ({
      status: 503,
      message: `node ${target.node} did not take the session (${why}): report it with GET /v1/streams/:id?unreachable=${target.node}`,
      retryAfterSeconds: RETRY_AFTER_SECONDS,
    });
    const options = {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port,
      path: `${url.pathname}${url.search}`,
      agent: false as const,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': key,
        'sec-websocket-version': '13',
        authorization: `Bearer ${target.token}`,
      },
    };
    const request = url.protocol === 'wss:' ? httpsRequest(options) : httpRequest(options);
    const timer = setTimeout(() => {
      settle(unreachable(`no answer within ${DIAL_TIMEOUT_MS} ms`));
      request.destroy();
    }, DIAL_TIMEOUT_MS);
    request.on('upgrade', (response: IncomingMessage, socket: Socket, head: Buffer) => {
      if (
        response.headers['sec-websocket-accept'] !== acceptFor(key) ||
        response.headers['sec-websocket-extensions'] !== undefined
      ) {
        socket.destroy();
        return settle({ status: 502, message: `node ${target.node} answered the upgrade wrongly` });
      }
      settle({ socket, head });
    });
    request.on('response', (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () =>
        settle(refusalFrom(target, response.statusCode ?? 502, chunks, response.headers['retry-after']));
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_REFUSAL_BYTES) chunks.push(chunk);
      });
      response.on('end', done);
      response.on('error', done);
    });
    request.on('error', (error) => settle(unreachable(error.message)));
    request.end();
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
