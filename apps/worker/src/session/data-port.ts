import { readFileSync } from 'node:fs';
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { hostname } from 'node:os';
import { WebSocketServer, type WebSocket } from 'ws';
import { DATA_PORT_HEALTH_PATH, LIVE_SESSION_HTTP_STATUS, type LiveSessionCloseCode } from '#contracts';
import { ConfigError } from '#cluster';
import type { DataPortConfig, HostPort } from '../node-config.js';

/** An upgrade the data port accepts: the socket it becomes, and how big its messages may be. */
export interface UpgradeDecision<T> {
  accept: T;
  maxPayload: number;
}

export interface DataPortHandler<T> {
  /** `GET /healthz`'s body. */
  health(): unknown;
  /** Decides on a session upgrade (null: not a session path). */
  upgrade(
    request: IncomingMessage,
  ): Promise<
    | UpgradeDecision<T>
    | { status: LiveSessionCloseCode | 400; message: string; retryAfterSeconds?: number }
    | null
  >;
  open(ws: WebSocket, accepted: T): void;
  /** An accepted upgrade whose socket went away before the handshake. */
  abandon(accepted: T): void;
}

/**
 * The node's data port: WebSocket sessions at `/v1/streams/:id/session` and `/healthz` (the API's
 * probe), nothing else. Every refusal before the upgrade is an HTTP status with a JSON error.
 */
export class DataPort<T> {
  private readonly server: http.Server | https.Server;
  /** ws checks the payload limit while it reads; one server per limit (streams differ in frame size). */
  private readonly wsServers = new Map<number, WebSocketServer>();
  private url = '';

  constructor(
    private readonly config: DataPortConfig,
    private readonly handler: DataPortHandler<T>,
  ) {
    const onRequest = (request: IncomingMessage, response: ServerResponse) =>
      this.onRequest(request, response);
    this.server = config.tls
      ? https.createServer(readTls(config.tls), onRequest)
      : http.createServer(onRequest);
    this.server.on(
      'upgrade',
      (request: IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(request, socket, head),
    );
    this.server.on('clientError', (_error, socket) => socket.destroy());
  }

  /** Listens; resolves with the URL others dial (ws:// or wss://). */
  async listen(): Promise<string> {
    const { host, port } = this.config.bind;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (error) =>
        reject(new ConfigError(`--bind ${host}:${port}: cannot listen there (${error.message})`)),
      );
      this.server.listen(port, host, () => {
        this.server.removeAllListeners('error');
        resolve();
      });
    });
    const bound = (this.server.address() as AddressInfo).port;
    const advertised: HostPort = this.config.advertise ?? {
      host: host === '0.0.0.0' || host === '::' ? hostname() : host,
      port: bound,
    };
    const shownHost = advertised.host.includes(':') ? `[${advertised.host}]` : advertised.host;
    this.url = `${this.config.tls ? 'wss' : 'ws'}://${shownHost}:${advertised.port}`;
    return this.url;
  }

  get dataUrl(): string {
    return this.url;
  }

  /** Stops listening and drops every socket still open (sessions are closed before this). */
  async close(): Promise<void> {
    for (const wss of this.wsServers.values()) for (const client of wss.clients) client.terminate();
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    const path = new URL(request.url ?? '/', 'http://node').pathname;
    if (path === DATA_PORT_HEALTH_PATH && (request.method === 'GET' || request.method === 'HEAD')) {
      return sendJson(response, 200, this.handler.health());
    }
    const upgradeOnly = /^\/v1\/streams\/[^/]+\/session$/.test(path);
    sendJson(response, upgradeOnly ? 426 : 404, {
      statusCode: upgradeOnly ? 426 : 404,
      error: upgradeOnly ? 'Upgrade Required' : 'Not Found',
      message: upgradeOnly
        ? 'a live session is a WebSocket: connect with an Upgrade request'
        : `a node's data port serves only live sessions (/v1/streams/:id/session) and ${DATA_PORT_HEALTH_PATH}`,
    });
  }

  private async onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    let decision: Awaited<ReturnType<DataPortHandler<T>['upgrade']>>;
    try {
      decision = await this.handler.upgrade(request);
    } catch (error) {
      return refuseUpgrade(socket, 500, `the node failed to check the session: ${(error as Error).message}`);
    }
    if (decision === null) {
      return refuseUpgrade(
        socket,
        404,
        `a node's data port serves only live sessions (/v1/streams/:id/session)`,
      );
    }
    if (!('accept' in decision)) {
      const status = decision.status === 400 ? 400 : (LIVE_SESSION_HTTP_STATUS[decision.status] ?? 400);
      return refuseUpgrade(socket, status, decision.message, decision.retryAfterSeconds);
    }
    if (socket.destroyed) return this.handler.abandon(decision.accept);
    // ws drops a bad handshake without calling back: the socket's close tells.
    let opened = false;
    socket.once('close', () => {
      if (!opened) this.handler.abandon(decision.accept);
    });
    this.wsServerFor(decision.maxPayload).handleUpgrade(request, socket, head, (ws) => {
      opened = true;
      this.handler.open(ws, decision.accept);
    });
  }

  private wsServerFor(maxPayload: number): WebSocketServer {
    let wss = this.wsServers.get(maxPayload);
    if (!wss) {
      // No compression: frames are raw pixels or LZ4 already, outputs are compressed video.
      wss = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false });
      this.wsServers.set(maxPayload, wss);
    }
    return wss;
  }
}

function readTls(tls: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const read = (file: string, setting: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(`${setting}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  return {
    cert: read(tls.certFile, '--data-tls-cert (DATA_TLS_CERT_FILE)'),
    key: read(tls.keyFile, '--data-tls-key (DATA_TLS_KEY_FILE)'),
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

function refuseUpgrade(socket: Duplex, status: number, message: string, retryAfterSeconds?: number): void {
  if (socket.destroyed) return;
  const error = STATUS_CODES[status] ?? 'Error';
  const body = JSON.stringify({ statusCode: status, error, message });
  socket.end(
    `HTTP/1.1 ${status} ${error}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      (retryAfterSeconds === undefined ? '' : `Retry-After: ${retryAfterSeconds}\r\n`) +
      `\r\n${body}`,
  );
}
