import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { LoggerService } from '@nestjs/common';
import { PacketReader, XpraProtocolError, encodePacket, type XpraDict, type XpraValue } from '#xpra';
import type { NodeRecord } from '#contracts';
import { XpraChallenge } from './xpra-auth.js';
import { encodingsCaps } from './xpra-capabilities.js';
import type { XpraConfig } from './xpra-config.js';
import type { ContextOwner } from './xpra-contexts.js';
import type { XpraMetrics } from './xpra-metrics.js';
import { XpraRequestError, type XpraOneShot } from './xpra-oneshot.js';

/** A connection's video contexts (context-request / -compress / -close); `send` answers on its socket. */
export interface XpraContexts {
  request(packet: XpraValue[]): void;
  compress(packet: XpraValue[], receivedAt: number): void;
  close(packet: XpraValue[]): void;
  closeAll(): void;
  /** The node of each open context's stream. */
  nodes(): string[];
}

export interface XpraConnectionDeps {
  config: XpraConfig;
  /** Null when no keys are required (the listener is on loopback, or no API_KEYS). */
  challenge: XpraChallenge | null;
  oneShot: XpraOneShot;
  liveNodes(): Promise<NodeRecord[]>;
  /** Video contexts for this connection, or null when they are not served. */
  contexts: ((send: (packet: XpraValue[]) => void, owner: ContextOwner, peer: string) => XpraContexts) | null;
  /** Who a connection is when it does not authenticate (a loopback listener). */
  defaultOwner: ContextOwner;
  maxEdge: number;
  metrics: XpraMetrics | null;
  logger: LoggerService;
}

type State = 'hello' | 'challenged' | 'ready' | 'closed';

/** How long a client may take to send its hello (and to answer the challenge). */
const HANDSHAKE_TIMEOUT_MS = 10_000;
const SERVER_VERSION = '6.5';
/** How often a video client's `encodings` is compared with the cluster's and sent again when it changed. */
const ENCODINGS_REFRESH_MS = 2000;

function dictOf(value: XpraValue | undefined): XpraDict {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value)
    ? value
    : {};
}

/**
 * One Xpra client: its packets in order, the handshake (and challenge), then one-shot `encode`s and
 * video contexts. A malformed packet closes this connection only, with a log line.
 */
export class XpraConnection {
  private readonly reader: PacketReader;
  private state: State = 'hello';
  private serverSalt: Buffer | null = null;
  private owner: ContextOwner;
  private encoding = 'png';
  private quality: number | undefined;
  private speed: number | undefined;
  private contexts: XpraContexts | null = null;
  private reading = false;
  private readonly handshakeTimer: NodeJS.Timeout;
  private refreshTimer: NodeJS.Timeout | null = null;
  private lastEncodings = '';
  private readonly uuid = randomUUID().replace(/-/g, '');

  constructor(
    private readonly socket: Duplex,
    readonly peer: string,
    private readonly deps: XpraConnectionDeps,
  ) {
    this.reader = new PacketReader(deps.config);
    this.owner = deps.defaultOwner;
    deps.metrics?.connections.inc();
    this.handshakeTimer = setTimeout(
      () => this.fail('no hello within the handshake time', false),
      HANDSHAKE_TIMEOUT_MS,
    );
    socket.on('data', (data: Buffer) => {
      this.reader.push(data);
      // Bounded buffering: stop reading while more than one largest packet waits to be parsed.
      if (this.reader.pending > deps.config.maxPacketBytes + 64) socket.pause();
      void this.drain();
    });
    socket.on('error', () => this.teardown());
    socket.on('close', () => this.teardown());
  }

  private async drain(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      while (this.state !== 'closed') {
        const packet = await this.reader.next();
        if (!packet) break;
        await this.handle(packet, performance.now());
      }
      if (this.state !== 'closed') this.socket.resume();
    } catch (error) {
      if (error instanceof XpraProtocolError) this.fail(error.message, true);
      else this.fail(`internal error: ${(error as Error).message}`, true);
    } finally {
      this.reading = false;
    }
  }

  /** The nodes holding this connection's contexts, one entry per context. */
  contextNodes(): string[] {
    return this.contexts?.nodes() ?? [];
  }

  send(packet: XpraValue[]): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    const parts = encodePacket(packet);
    const socket = this.socket as Duplex & { cork?: () => void; uncork?: () => void };
    socket.cork?.();
    for (const part of parts) socket.write(part);
    socket.uncork?.();
  }

  private async handle(packet: XpraValue[], receivedAt: number): Promise<void> {
    const type = packet[0] as string;
    if (type === 'hello') return this.onHello(dictOf(packet[1]));
    if (type === 'disconnect' || type === 'connection-lost' || type === 'connection-close') {
      this.close();
      return;
    }
    if (this.state !== 'ready') {
      this.deps.logger.debug?.(`xpra ${this.peer}: ignoring ${type} before the handshake`);
      return;
    }
    switch (type) {
      case 'encode':
        return this.onEncode(packet, receivedAt);
      case 'context-request':
        if (this.contexts) this.contexts.request(packet);
        else this.send(['context-response', packet[1] ?? 0, false, 'video contexts are not served here', {}]);
        return;
      case 'context-compress':
        if (this.contexts) this.contexts.compress(packet, receivedAt);
        else this.send(['context-data', packet[1] ?? 0, Buffer.alloc(0), { error: 'context not found' }, {}]);
        return;
      case 'context-close':
        this.contexts?.close(packet);
        return;
      default:
        // Xpra's own rule: a packet type one does not know is ignored.
        this.deps.logger.debug?.(`xpra ${this.peer}: ignoring unknown packet type ${JSON.stringify(type)}`);
    }
  }

  private async onHello(caps: XpraDict): Promise<void> {
    if (this.state === 'ready') return;
    const rencodeplus = dictOf(caps.rencodeplus);
    if (rencodeplus[''] !== true && !(Array.isArray(caps.encoders) && caps.encoders.includes('rencodeplus')))
      return this.fail('the client does not speak rencodeplus', true, 'rencodeplus is required');
    const challenge = this.deps.challenge;
    if (challenge) {
      const response = caps.challenge_response;
      const clientSalt = caps.challenge_client_salt;
      if (
        this.state === 'challenged' &&
        this.serverSalt &&
        Buffer.isBuffer(response) &&
        Buffer.isBuffer(clientSalt)
      ) {
        const entry = challenge.verify(this.serverSalt, clientSalt, response);
        this.serverSalt = null;
        if (!entry) return this.fail('authentication failed (wrong key)', false, 'authentication failed');
        this.owner = { tenant: entry.tenant, key: entry.key };
      } else if (this.state === 'hello') {
        if (!XpraChallenge.canAnswer(caps))
          return this.fail(
            'the client cannot answer a password challenge (hmac+sha256)',
            false,
            'authentication required: give an API key as the password (this client cannot answer a challenge)',
          );
        const issued = challenge.issue();
        this.serverSalt = issued.salt;
        this.state = 'challenged';
        this.send(issued.packet);
        return;
      } else {
        return this.fail(
          'authentication failed (no answer to the challenge)',
          false,
          'authentication failed',
        );
      }
    }
    clearTimeout(this.handshakeTimer);
    const encoding = dictOf(caps.encoding);
    if (typeof encoding.setting === 'string') this.encoding = encoding.setting;
    if (typeof encoding.quality === 'number') this.quality = encoding.quality;
    if (typeof encoding.speed === 'number') this.speed = encoding.speed;
    this.state = 'ready';
    this.deps.metrics?.connectionsTotal.inc({ outcome: 'ready' });
    this.send([
      'hello',
      {
        version: SERVER_VERSION,
        'session-type': 'encoder',
        'server.mode': 'encoder',
        encoders: ['rencodeplus'],
        compressors: ['lz4', 'none'],
        rencodeplus: { '': true },
        lz4: { '': true },
        none: { '': true },
        flush: true,
        uuid: this.uuid,
        encoding: this.encoding,
      },
    ]);
    await this.sendEncodings(true);
    this.send(['startup-complete']);
    // Xpra's remote module takes a new `encodings` at any time: new contexts then see the cluster as it is.
    if (Array.isArray(caps.wants) && caps.wants.includes('video')) {
      this.refreshTimer = setInterval(() => void this.sendEncodings(false), ENCODINGS_REFRESH_MS);
      this.refreshTimer.unref();
    }
    if (this.deps.contexts) this.contexts = this.deps.contexts((p) => this.send(p), this.owner, this.peer);
  }

  /** The cluster's encodings now; sent when `always`, else only when they changed since the last. */
  private async sendEncodings(always: boolean): Promise<void> {
    const nodes = await this.deps.liveNodes().catch(() => null);
    if (!nodes && !always) return;
    const caps = encodingsCaps(nodes ?? [], {
      contexts: this.deps.contexts !== null,
      maxEdge: this.deps.maxEdge,
    });
    const text = JSON.stringify(caps);
    if (!always && text === this.lastEncodings) return;
    this.lastEncodings = text;
    this.send(['encodings', caps]);
  }

  private async onEncode(packet: XpraValue[], receivedAt: number): Promise<void> {
    try {
      const response = await this.deps.oneShot.encode(packet, {
        encoding: this.encoding,
        tenant: this.owner.tenant,
        quality: this.quality,
        speed: this.speed,
        maxDecompressedBytes: this.deps.config.maxDecompressedBytes,
      });
      this.send(response);
      this.deps.metrics?.roundTrip.observe(
        { request: 'encode', encoding: String(response[1]) },
        (performance.now() - receivedAt) / 1000,
      );
    } catch (error) {
      const message =
        error instanceof XpraRequestError ? error.message : `internal error: ${(error as Error).message}`;
      this.deps.metrics?.refused.inc({ kind: 'encode' });
      // As Xpra's encoder server does: the one-shot client is told why, then disconnected.
      this.fail(`encode refused: ${message}`, false, `failed to encode: ${message}`);
    }
  }

  /** Tells the client why (a `disconnect` packet), logs, closes this connection only. */
  private fail(reason: string, malformed: boolean, told = reason): void {
    if (this.state === 'closed') return;
    if (malformed) this.deps.metrics?.refused.inc({ kind: 'malformed' });
    if (this.state !== 'ready') this.deps.metrics?.connectionsTotal.inc({ outcome: 'refused' });
    this.deps.logger.warn(`xpra ${this.peer}: closing the connection: ${reason}`);
    this.send(['disconnect', told]);
    this.close();
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.socket.end();
    // A client that does not read its disconnect must not hold the socket.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.teardown();
  }

  private teardown(): void {
    clearTimeout(this.handshakeTimer);
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.socket.destroy();
    }
    if (this.contexts) {
      this.contexts.closeAll();
      this.contexts = null;
    }
    if (!this.tornDown) {
      this.tornDown = true;
      this.deps.metrics?.connections.dec();
    }
  }

  private tornDown = false;
}
