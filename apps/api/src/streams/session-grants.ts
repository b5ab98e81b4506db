import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import {
  KeySpace,
  NodeRegistry,
  SessionTokens,
  resolveClusterSecrets,
  type RedisClient,
  type StreamRecord,
} from '#cluster';
import { liveSessionPath, type LiveSessionGrant } from '#contracts';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { REDIS } from '../dispatch/tokens.js';

/**
 * The session-token signer: CLUSTER_SECRETS, or (a loopback cluster without it) the secret the API and
 * the nodes share through Redis. Resolved on first use and kept, so that an API started while Redis is
 * away comes up and signs once Redis answers (a failed resolution is retried by the next caller).
 */
@Injectable()
export class SessionSigner implements OnApplicationBootstrap {
  private readonly logger = new Logger(SessionSigner.name);
  private tokens: Promise<SessionTokens> | null = null;

  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: KeySpace,
  ) {}

  onApplicationBootstrap(): void {
    this.signer().catch((error: Error) =>
      this.logger.warn(`session tokens: the cluster secret is not resolved yet (${error.message})`),
    );
  }

  signer(): Promise<SessionTokens> {
    const { clusterSecrets, beyondLoopback } = this.config.sessions;
    this.tokens ??= resolveClusterSecrets(clusterSecrets, beyondLoopback, this.redis, this.keys).then(
      (secrets) => new SessionTokens(secrets),
      (error: unknown) => {
        this.tokens = null;
        throw error;
      },
    );
    return this.tokens;
  }
}

/** Where to open a stream's session on its node, and the token for it. */
export interface SessionTarget {
  /** The session's URL on the node's data port. */
  url: string;
  token: string;
  /** ms since the epoch. */
  expiresAt: number;
  node: string;
}

/** Where a stream's live session is, for whom it is good, and where the API relays it. */
@Injectable()
export class SessionGrants {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly signer: SessionSigner,
    private readonly registry: NodeRegistry,
  ) {}

  /**
   * The `session` of a live stream's view: while it is open and pinned to a node that has a data port
   * (a node without one takes frames through POST /frames only). `relayBase`: `ws(s)://host[:port]` of
   * this API as the client reached it.
   */
  async grantFor(record: StreamRecord, relayBase: string): Promise<LiveSessionGrant | undefined> {
    const target = await this.targetOf(record);
    if (!target) return undefined;
    return {
      url: target.url,
      token: target.token,
      expiresAt: new Date(target.expiresAt).toISOString(),
      node: target.node,
      relayUrl: `${relayBase}${liveSessionPath(record.id)}`,
    };
  }

  /**
   * The session on the stream's node with a fresh token, bound to stream, node and the record's epoch
   * (a move makes it stale: the node then refuses it with 4409); undefined when the stream has no session
   * (not live, not open, or its node has no data port or is gone).
   */
  async targetOf(record: StreamRecord): Promise<SessionTarget | undefined> {
    if (record.params.mode !== 'live' || record.state !== 'open' || !record.node) return undefined;
    const node = await this.registry.get(record.node);
    if (!node?.dataUrl) return undefined;
    const tokens = await this.signer.signer();
    const { token, expiresAt } = tokens.issue(
      { stream: record.id, node: record.node, epoch: record.epoch },
      this.config.sessions.tokenTtlMs,
    );
    const url = `${node.dataUrl.replace(/\/+$/, '')}${liveSessionPath(record.id)}`;
    return { url, token, expiresAt, node: record.node };
  }
}

const HOST_HEADER = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/**
 * `ws(s)://host[:port]` of this API as the client reached it (its Host, or X-Forwarded-Host and
 * X-Forwarded-Proto behind a proxy: they only shape a URL handed back to that same client), falling
 * back to HOST:PORT for a Host header that is not a host name.
 */
export function relayBaseOf(
  headers: Record<string, string | string[] | undefined>,
  config: Pick<ApiConfig, 'host' | 'port' | 'tls'>,
): string {
  const first = (name: string) => {
    const value = headers[name];
    const text = Array.isArray(value) ? value[0] : value;
    return text?.split(',')[0].trim() || undefined;
  };
  const proto = first('x-forwarded-proto')?.toLowerCase();
  const secure = proto === 'https' || proto === 'wss' || (proto === undefined && config.tls !== null);
  const host = [first('x-forwarded-host'), first('host')].find(
    (candidate) => candidate !== undefined && HOST_HEADER.test(candidate),
  );
  const fallback = config.host.includes(':')
    ? `[${config.host}]:${config.port}`
    : `${config.host}:${config.port}`;
  return `${secure ? 'wss' : 'ws'}://${host ?? fallback}`;
}
