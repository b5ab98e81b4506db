import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { WebSocketServer } from 'ws';
import { JobStore, StreamStore } from '#cluster';
import { pathProblem, queryProblem } from '../common/strict-input.js';
import { presentedKey } from '../auth/api-key.guard.js';
import { Authenticator, clientAddressOf } from '../auth/authenticator.js';
import { visibleTo } from '../auth/tenancy.js';
import {
  REDIS_RETRY_AFTER_SECONDS,
  REDIS_UNAVAILABLE_MESSAGE,
  isRedisUnavailable,
} from '../common/http-errors.js';
import { EventDelivery } from '../delivery/event-delivery.js';
import { positionOf } from '../delivery/event-ids.js';
import { SESSION_PATH, SessionRelay } from './session-relay.js';
import { JOB_ID_PATTERN } from '../jobs/jobs.service.js';
import { STREAM_ID_PATTERN } from './streams.service.js';
import { refuse } from './upgrade-refusal.js';

const WS_PATH = /^\/v1\/streams\/([^/]+)\/ws$/;
const JOB_WS_PATH = /^\/v1\/jobs\/([^/]+)\/ws$/;

/**
 * WebSocket upgrades: `GET /v1/streams/:id/session` goes to the session relay (SessionRelay), after
 * the same key check as this route.
 *
 * `GET /v1/streams/:id/ws`: the stream's events as WebSocket messages, with the bytes inline. Each event
 * is a text message `{ id, type, ... }`; an `output` event is followed by one binary message holding
 * the output. Messages are sent one at a time, each after the previous one was handed to the socket, so
 * a slow client holds back its own follower only. Same auth as the REST routes (the API key header,
 * the stream its tenant's), checked before the upgrade.
 *
 * `GET /v1/jobs/:id/ws`: a job's events the same way (a job delivers like a one-batch stream), until its
 * `completed` or `failed`.
 */
@Injectable()
export class StreamSockets implements OnModuleDestroy {
  private readonly logger = new Logger(StreamSockets.name);
  private readonly server = new WebSocketServer({ noServer: true, maxPayload: 4096 });

  constructor(
    private readonly auth: Authenticator,
    private readonly streams: StreamStore,
    private readonly jobs: JobStore,
    private readonly delivery: EventDelivery,
    private readonly relay: SessionRelay,
  ) {}

  attach(http: Server): void {
    http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
        answerAsPlainRequest(http, request, socket, head);
        return;
      }
      // Node's HTTP server takes its error listener off an upgraded socket: a client resetting while
      // the upgrade is decided (Redis reads) would otherwise be an uncaught error.
      socket.on('error', () => socket.destroy());
      void this.upgrade(request, socket, head).catch((error: Error) => {
        if (isRedisUnavailable(error)) {
          refuse(socket, 503, REDIS_UNAVAILABLE_MESSAGE, REDIS_RETRY_AFTER_SECONDS);
          return;
        }
        this.logger.warn(`websocket upgrade failed: ${error.message}`);
        refuse(socket, 500, 'internal error');
      });
    });
  }

  onModuleDestroy(): void {
    for (const client of this.server.clients) client.terminate();
    this.server.close();
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const session = SESSION_PATH.exec(url.pathname);
    const job = JOB_WS_PATH.exec(url.pathname);
    const match = session ?? job ?? WS_PATH.exec(url.pathname);
    if (!match) return refuse(socket, 404, `no websocket at ${url.pathname}`);
    const verdict = this.auth.check(presentedKey(request), clientAddressOf(request));
    if (!verdict.ok) return refuse(socket, verdict.status, verdict.message, verdict.retryAfterSeconds);
    const problem = pathProblem(url.pathname) ?? queryProblem(url.search.slice(1));
    if (problem !== null) return refuse(socket, 400, problem);
    const id = match[1];
    if (session) return this.relay.upgrade(request, socket, head, id, url.searchParams, verdict.principal);
    // A job's log may have ids of the earlier form (see delivery/event-ids.ts).
    const since = positionOf(url.searchParams.get('since') ?? header(request, 'last-event-id'), {
      legacy: job !== null,
    });
    if (since === null) return refuse(socket, 400, 'since must be an event id (a non-negative integer)');
    const kind = job ? 'job' : 'stream';
    const [pattern, store] = job ? [JOB_ID_PATTERN, this.jobs] : [STREAM_ID_PATTERN, this.streams];
    const record = pattern.test(id) ? await store.get(id) : null;
    if (!record || !visibleTo(verdict.principal, record.tenant)) {
      return refuse(socket, 404, `no ${kind} ${id} (unknown, or older than the retention time)`);
    }
    this.server.handleUpgrade(request, socket, head, (ws) => {
      void (job ? this.delivery.jobWebSocket(ws, id, since) : this.delivery.streamWebSocket(ws, id, since));
    });
  }
}

/**
 * With an 'upgrade' listener, Node hands every request that asks for an upgrade to it (an `h2c` upgrade
 * from curl --http2, say). Those that are not WebSocket handshakes are answered by the app as plain
 * requests, the upgrade ignored, as a server without the listener would.
 */
function answerAsPlainRequest(http: Server, request: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (head.length > 0) socket.unshift(head);
  const response = new ServerResponse(request);
  response.shouldKeepAlive = false;
  response.assignSocket(socket as Socket);
  response.on('finish', () => socket.end());
  http.emit('request', request, response);
}

function header(request: IncomingMessage, name: string): string | null {
  const value = request.headers[name];
  return typeof value === 'string' ? value : null;
}
