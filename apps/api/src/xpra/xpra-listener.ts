import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server as HttpServer } from 'node:http';
import { MAX_FRAME_EDGE } from '#codecs/pixel-formats.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { CachedNodeList } from '../dispatch/cached-node-list.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { XpraChallenge } from './xpra-auth.js';
import type { XpraConfig } from './xpra-config.js';
import { XpraConnection, type XpraConnectionDeps } from './xpra-connection.js';
import { PostedContextStream, SessionContextStream } from './xpra-context-streams.js';
import { XpraVideoContexts, type OpenContextStream } from './xpra-contexts.js';
import { XpraMetrics } from './xpra-metrics.js';
import { XpraOneShot } from './xpra-oneshot.js';

/** A TLS ClientHello starts with this byte (a handshake record); an Xpra packet with 'P'. */
const TLS_HANDSHAKE = 0x16;

/**
 * The Xpra encoder listener on XPRA_BIND (API.md, "Xpra encoder protocol"): `tcp://` and, when a
 * certificate is set, `ssl://` clients on the same port (told apart by their first byte, as Xpra's
 * own server does).
 */
@Injectable()
export class XpraListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Xpra');
  private server: Server | null = null;
  private readonly connections = new Set<XpraConnection>();
  private readonly settings: XpraConfig | null;
  private readonly tlsApi: boolean;
  private readonly secureContext: SecureContext | null;
  private readonly metrics: XpraMetrics | null;
  private readonly deps: XpraConnectionDeps | null;
  /** This API's own HTTP address, where contexts create their live streams. */
  private apiUrl = '';

  constructor(
    @Inject(API_CONFIG) config: ApiConfig,
    private readonly nodes: CachedNodeList,
    oneShot: XpraOneShot,
    private readonly http: HttpAdapterHost,
    @Optional() metricsService?: MetricsService,
  ) {
    this.settings = config.xpra;
    this.tlsApi = config.tls !== null;
    this.secureContext = config.xpra?.tls ? createSecureContext(config.xpra.tls) : null;
    this.metrics = metricsService && config.xpra ? new XpraMetrics(metricsService.registry) : null;
    this.deps = config.xpra
      ? {
          config: config.xpra,
          challenge: config.xpra.requireAuth
            ? new XpraChallenge([...config.tenantKeys, ...config.operatorKeys])
            : null,
          oneShot,
          liveNodes: () => nodes.live(),
          contexts: (send, owner, peer) =>
            new XpraVideoContexts({
              open: this.openContextStream,
              owner,
              send,
              peer,
              maxDecompressedBytes: config.xpra?.maxDecompressedBytes ?? 0,
              maxFramePixels: config.maxFramePixels,
              metrics: this.metrics,
              logger: this.logger,
            }),
          defaultOwner: {
            tenant: config.tenantKeys[0]?.tenant ?? 'default',
            key: config.tenantKeys[0]?.key ?? config.operatorKeys[0]?.key,
          },
          maxEdge: MAX_FRAME_EDGE,
          metrics: this.metrics,
          logger: this.logger,
        }
      : null;
  }

  /**
   * Over the live session when the cluster's nodes have data ports (the fast path, with failover
   * inside Xpra's 1 s), else over the durable POST path.
   */
  private readonly openContextStream: OpenContextStream = async (params, owner) => {
    const nodes = await this.nodes.live();
    if (!nodes.some((node) => node.dataUrl)) return PostedContextStream.open(this.ownApiUrl(), params, owner);
    return SessionContextStream.open(this.ownApiUrl(), params, owner, (streamId, failover) =>
      this.logger.warn(
        `live stream ${streamId} of an Xpra context moved off node ${failover.node}: ${failover.reason}`,
      ),
    );
  };

  /** Known once the API listens (after this provider's bootstrap): asked at the first context. */
  private ownApiUrl(): string {
    if (this.apiUrl) return this.apiUrl;
    const address = (this.http.httpAdapter.getHttpServer() as HttpServer).address();
    if (!address || typeof address !== 'object') throw new Error('the API is not listening yet');
    const host = address.family === 'IPv6' ? '[::1]' : '127.0.0.1';
    this.apiUrl = `${this.tlsApi ? 'https' : 'http'}://${host}:${address.port}`;
    return this.apiUrl;
  }

  /** The bound address (port 0 resolved), or null when the listener is off. */
  address(): { host: string; port: number } | null {
    const address = this.server?.address();
    return address && typeof address === 'object' ? { host: address.address, port: address.port } : null;
  }

  async onApplicationBootstrap(): Promise<void> {
    const settings = this.settings;
    if (!settings) return;
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(settings.port, settings.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.logger.error(`listener error: ${error.message}`));
    const port = this.address()?.port ?? settings.port;
    const schemes = this.secureContext ? 'tcp:// and ssl://' : 'tcp://';
    this.logger.log(
      `Xpra encoder listening on ${settings.host}:${port} (${schemes}; ${settings.requireAuth ? 'API key as the password' : 'no authentication: loopback'})`,
    );
  }

  private accept(socket: Socket): void {
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.setNoDelay(true);
    socket.once('error', () => socket.destroy());
    if (!this.secureContext) return this.open(socket, peer);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (first[0] !== TLS_HANDSHAKE) return this.open(socket, peer);
      const tls = new TLSSocket(socket, { isServer: true, secureContext: this.secureContext ?? undefined });
      tls.once('error', (error) => {
        this.logger.warn(`xpra ${peer}: TLS handshake failed: ${error.message}`);
        socket.destroy();
      });
      tls.once('secure', () => this.open(tls, peer));
    });
  }

  private open(socket: Socket | TLSSocket, peer: string): void {
    if (!this.deps) return;
    const connection = new XpraConnection(socket, peer, this.deps);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
    socket.resume();
  }

  /** Whether the listener is on (XPRA_BIND set). */
  get enabled(): boolean {
    return this.settings !== null;
  }

  /** Video contexts this API serves, per node that holds their stream. */
  contextsByNode(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const connection of this.connections)
      for (const node of connection.contextNodes()) counts.set(node, (counts.get(node) ?? 0) + 1);
    return counts;
  }

  async onApplicationShutdown(): Promise<void> {
    for (const connection of this.connections) connection.close();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
