import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { clusterSecretsSetting, isLoopbackHost } from '#cluster/session-token.js';
import {
  ConfigError,
  booleanSetting as boolean,
  integerSetting as integer,
  loadSharedConfig,
  type Env,
  type SharedConfig,
} from '#cluster/shared-config.js';
import { DEFAULT_TENANT, OPERATOR_TENANT, parseKeyList, type KeyEntry } from '../auth/key-ring.js';
import { loadScaleFromZeroConfig, type ScaleFromZeroConfig } from '../dispatch/pool-codecs.js';
import { xpraSettings, type XpraConfig } from '../xpra/xpra-config.js';

export { ConfigError };

/** REDIS_URL, QUEUE_PREFIX, RETENTION_SECONDS, LOG_LEVEL and LOG_PRETTY come from `SharedConfig`. */
export interface ApiConfig extends SharedConfig {
  host: string;
  port: number;
  /** Every key, API_KEYS and OPERATOR_KEYS: none means authentication is off (loopback development). */
  apiKeys: string[];
  /** API_KEYS: each key with the tenant whose jobs and streams it makes and sees. */
  tenantKeys: KeyEntry[];
  /** OPERATOR_KEYS: keys that see every tenant's work and the dashboard. */
  operatorKeys: KeyEntry[];
  /** Wrong keys one client address may send per window before it gets 429 until the window ends. */
  authFailureLimit: number;
  authFailureWindowSeconds: number;
  allowInsecurePublic: boolean;
  /** Certificate chain and private key (PEM) when the API serves HTTPS itself; null: plain HTTP. */
  tls: TlsFiles | null;
  /** Largest accepted request body (raw frames as sent, compressed or not). */
  maxBodyBytes: number;
  maxFramePixels: number;
  maxFramesPerJob: number;
  /** Bytes of uploads this API is receiving at once, all clients together; 503 + Retry-After beyond. */
  uploadBytesInFlight: number;
  /** The same for one client (API key, or address without keys); 429 + Retry-After beyond. */
  uploadBytesPerClient: number;
  /** A body that sends nothing for this long gets 408, and what it stored is removed. */
  uploadIdleTimeoutMs: number;
  /** Bytes that uploaded images (as received, and decoded) may take in this API at once; 503 beyond. */
  imageBytesInFlight: number;
  /**
   * Raw frames up to this size (bytes) are stored as LZ4 blocks, compressed by the API as they arrive
   * (STORE_LZ4_MAX_FRAME_BYTES; 0: frames are stored as sent).
   */
  storeLz4MaxFrameBytes: number;
  /** How long CachedNodeList keeps the registry's list: how stale the routing view may be. */
  nodeCacheMs: number;
  jobAttempts: number;
  jobBackoffMs: number;
  /** Waiting jobs (all pools) beyond which submissions get 503 + Retry-After: the cluster is saturated. */
  maxQueueDepth: number;
  /** Unfinished jobs one client (API key, or address without keys) may have; 429 + Retry-After beyond. */
  maxJobsPerClient: number;
  /** Events kept per stream log; a consumer further behind is told it fell behind. */
  streamLogMaxEvents: number;
  /** How long a stream waits on one batch before the batch is looked for (and delivered as failed if lost). */
  streamStallMs: number;
  /** How often live streams are checked for a dead node to move off. */
  liveSupervisorMs: number;
  /** How long the chores lease lasts unrenewed: another API runs the cluster chores about this long after the holder dies. */
  choreLeaseMs: number;
  /** `/metrics` (Prometheus) and the collectors behind it. */
  metricsEnabled: boolean;
  /** `/docs` and `/docs-json` without a key even when API_KEYS is set. */
  docsPublic: boolean;
  admin: AdminConfig;
  /** POOL_CODECS, NO_NODE_WAIT_SECONDS, GPU_WAIT_SECONDS: jobs queued while a pool has no node. */
  scaleFromZero: ScaleFromZeroConfig;
  /** XPRA_BIND and its companions: the Xpra encoder listener, or null when it is off. */
  xpra: XpraConfig | null;
  /** Live sessions: the tokens the API grants, and how it checks a node that a client reports. */
  sessions: SessionConfig;
}

export interface SessionConfig {
  /** CLUSTER_SECRETS (first signs, all verify); undefined: a loopback cluster's secret shared through Redis. */
  clusterSecrets: string[] | undefined;
  /** Whether the API listens beyond loopback (then CLUSTER_SECRETS is required). */
  beyondLoopback: boolean;
  /** How long a session token is good for (SESSION_TOKEN_TTL_SECONDS). */
  tokenTtlMs: number;
  /** How long the API waits for a reported node's data port to answer its health probe. */
  probeTimeoutMs: number;
}

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

export interface AdminConfig {
  /** HMAC key of the dashboard session cookie (ADMIN_COOKIE_SECRET, or derived from API_KEYS). */
  cookieSecret: string;
  sessionTtlSeconds: number;
  /** Always mark the cookie `Secure` (it is anyway on HTTPS requests). */
  cookieSecure: boolean;
  /** Bull Board without retry/clean/remove buttons: those bypass the job records. */
  readOnly: boolean;
}

/**
 * The session cookie's HMAC key. Derived from the API keys when not given, so that removing a key from
 * API_KEYS also ends the dashboard sessions opened with the old key set.
 */
export function adminCookieSecret(env: Env, apiKeys: string[]): string {
  const given = env.ADMIN_COOKIE_SECRET;
  if (given !== undefined && given !== '') {
    if (given.length < 32) throw new ConfigError('ADMIN_COOKIE_SECRET must be at least 32 characters long');
    return given;
  }
  return createHmac('sha256', 'encoder-cluster admin session v1')
    .update([...apiKeys].sort().join('\n'))
    .digest('base64url');
}

/**
 * TLS_CERT_FILE and TLS_KEY_FILE, both or neither, read and checked now (PEM that parses, a key that
 * matches the certificate), so a wrong file stops the start instead of the first handshake.
 */
export function tlsFiles(env: Env, prefix = ''): TlsFiles | null {
  const certName = `${prefix}TLS_CERT_FILE`;
  const keyName = `${prefix}TLS_KEY_FILE`;
  const certFile = env[certName] || '';
  const keyFile = env[keyName] || '';
  if (!certFile && !keyFile) return null;
  if (!certFile || !keyFile)
    throw new ConfigError(
      `${certName} and ${keyName} go together: set both (PEM files) to serve ${prefix ? 'TLS' : 'HTTPS'}, or neither, got only ${certFile ? certName : keyName}`,
    );
  const read = (name: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError(
        `${name}: cannot read "${path}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      );
    }
  };
  const files = { cert: read(certName, certFile), key: read(keyName, keyFile) };
  try {
    createSecureContext(files);
  } catch (error) {
    throw new ConfigError(
      `${certName}/${keyName}: "${certFile}" and "${keyFile}" are not a PEM certificate and its private key (${(error as Error).message})`,
    );
  }
  return files;
}

/** Reads and validates the API's settings; a wrong value stops the process with a clear message. */
export function loadApiConfig(env: Env = process.env): ApiConfig {
  const host = env.HOST || '127.0.0.1';
  if (host !== 'localhost' && isIP(host) === 0)
    throw new ConfigError(`HOST must be an IP address or localhost, got "${host}"`);
  const shared = loadSharedConfig(env);
  const tenantKeys = keyList(env, 'API_KEYS', DEFAULT_TENANT);
  const operatorKeys = keyList(env, 'OPERATOR_KEYS', OPERATOR_TENANT);
  const owners = new Map<string, string>();
  for (const [role, entries] of [
    ['API_KEYS', tenantKeys],
    ['OPERATOR_KEYS', operatorKeys],
  ] as const) {
    for (const { key, tenant } of entries) {
      const owner = `${role} tenant "${tenant}"`;
      if ((owners.get(key) ?? owner) !== owner)
        throw new ConfigError(
          `a key is given twice, for ${owners.get(key)} and for ${owner}: give each key once`,
        );
      owners.set(key, owner);
    }
  }
  const apiKeys = [...owners.keys()];
  const allowInsecurePublic = env.ALLOW_INSECURE_PUBLIC === 'true';
  if (!isLoopbackHost(host) && apiKeys.length === 0 && !allowInsecurePublic) {
    throw new ConfigError(
      `refusing to listen on ${host} without API_KEYS: set API_KEYS (comma list), listen on 127.0.0.1, or set ALLOW_INSECURE_PUBLIC=true`,
    );
  }
  const maxBodyBytes = integer(env, 'MAX_BODY_BYTES', 512 * 1024 * 1024, 1024, 4 * 1024 * 1024 * 1024);
  const maxFramePixels = integer(env, 'MAX_FRAME_PIXELS', 7680 * 4320, 1, 268_402_689);
  const scaleFromZero = loadScaleFromZeroConfig(env, shared.retentionSeconds);
  return {
    ...shared,
    host,
    port: integer(env, 'PORT', 3000, 0, 65535),
    apiKeys,
    tenantKeys,
    operatorKeys,
    authFailureLimit: integer(env, 'AUTH_FAILURE_LIMIT', 20, 1, 1_000_000),
    authFailureWindowSeconds: integer(env, 'AUTH_WINDOW_SECONDS', 60, 1, 24 * 3600),
    allowInsecurePublic,
    tls: tlsFiles(env),
    maxBodyBytes,
    maxFramePixels,
    ...uploadLimits(env, maxBodyBytes, maxFramePixels),
    maxFramesPerJob: integer(env, 'MAX_FRAMES_PER_JOB', 600, 1, 100_000),
    storeLz4MaxFrameBytes: integer(env, 'STORE_LZ4_MAX_FRAME_BYTES', 40 * 1024 ** 2, 0, 2 ** 31 - 1),
    nodeCacheMs: integer(env, 'NODE_CACHE_MS', 1000, 0, 60_000),
    jobAttempts: integer(env, 'JOB_ATTEMPTS', 3, 1, 20),
    jobBackoffMs: integer(env, 'JOB_BACKOFF_MS', 1000, 0, 600_000),
    maxQueueDepth: integer(env, 'MAX_QUEUE_DEPTH', 10_000, 1, 10_000_000),
    maxJobsPerClient: integer(env, 'MAX_JOBS_PER_CLIENT', 1000, 1, 10_000_000),
    streamLogMaxEvents: integer(env, 'STREAM_LOG_MAX_EVENTS', 10_000, 100, 10_000_000),
    liveSupervisorMs: integer(env, 'LIVE_SUPERVISOR_MS', 1000, 100, 60_000),
    streamStallMs: integer(env, 'STREAM_STALL_MS', 30_000, 200, 3_600_000),
    choreLeaseMs: integer(env, 'CHORE_LEASE_MS', 5000, 300, 600_000),
    metricsEnabled: boolean(env, 'METRICS_ENABLED', true),
    docsPublic: boolean(env, 'DOCS_PUBLIC', false),
    sessions: sessionConfig(env, host),
    admin: {
      cookieSecret: adminCookieSecret(env, apiKeys),
      sessionTtlSeconds: integer(env, 'ADMIN_SESSION_TTL_SECONDS', 12 * 3600, 60, 30 * 24 * 3600),
      cookieSecure: boolean(env, 'ADMIN_COOKIE_SECURE', false),
      readOnly: boolean(env, 'ADMIN_READ_ONLY', true),
    },
    scaleFromZero,
    xpra: xpraSettings(env, { apiKeys, allowInsecurePublic, maxFramePixels }),
  };
}

/**
 * CLUSTER_SECRETS is checked here; beyond loopback it is required, and its absence stops the start now
 * (resolveClusterSecrets, which also shares a loopback cluster's secret through Redis, runs once Redis
 * is reachable).
 */
function sessionConfig(env: Env, host: string): SessionConfig {
  const clusterSecrets = clusterSecretsSetting(env);
  const beyondLoopback = !isLoopbackHost(host);
  if (!clusterSecrets && beyondLoopback) {
    throw new ConfigError(
      `CLUSTER_SECRETS is required when the API listens beyond loopback (HOST=${host}): set the same secret (openssl rand -base64 32) on the API and every node, so that nodes accept the session tokens the API grants`,
    );
  }
  return {
    clusterSecrets,
    beyondLoopback,
    tokenTtlMs: integer(env, 'SESSION_TOKEN_TTL_SECONDS', 300, 10, 86_400) * 1000,
    probeTimeoutMs: integer(env, 'SESSION_PROBE_TIMEOUT_MS', 300, 50, 10_000),
  };
}

function keyList(env: Env, name: string, fallbackTenant: string): KeyEntry[] {
  let entries: KeyEntry[];
  try {
    entries = parseKeyList(env[name], name, fallbackTenant);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  if (entries.length === 0 && (env[name] ?? '').trim() !== '') {
    // A list of nothing but commas and blanks would otherwise start with authentication off.
    throw new ConfigError(
      `${name} is set but holds no key: give a comma list of keys (16+ characters each, optionally TENANT:KEY), or unset it to run without authentication on loopback`,
    );
  }
  return entries;
}

const MAX_IN_FLIGHT_BYTES = 2 ** 40;

/** An integer setting that must leave room for something else (`why`): a clear error otherwise. */
function atLeast(env: Env, name: string, fallback: number, min: number, why: string): number {
  const value = integer(env, name, Math.max(fallback, min), 1, MAX_IN_FLIGHT_BYTES);
  if (value < min) throw new ConfigError(`${name} must be at least ${min} (${why}), got "${env[name]}"`);
  return value;
}

/**
 * What uploads in progress may take. One upload of the largest accepted size must fit each cap on its
 * own, so that a 429 or 503 always means "wait for the others", never "this can never pass".
 */
function uploadLimits(
  env: Env,
  maxBodyBytes: number,
  maxFramePixels: number,
): Pick<
  ApiConfig,
  'uploadBytesInFlight' | 'uploadBytesPerClient' | 'uploadIdleTimeoutMs' | 'imageBytesInFlight'
> {
  const perClient = atLeast(
    env,
    'UPLOAD_BYTES_PER_CLIENT',
    1024 ** 3,
    maxBodyBytes,
    'MAX_BODY_BYTES: one upload of the largest size must fit',
  );
  const total = atLeast(
    env,
    'UPLOAD_BYTES_IN_FLIGHT',
    2 * 1024 ** 3,
    perClient,
    'UPLOAD_BYTES_PER_CLIENT: what one client may send must fit',
  );
  return {
    uploadBytesInFlight: total,
    uploadBytesPerClient: perClient,
    uploadIdleTimeoutMs: integer(env, 'UPLOAD_IDLE_TIMEOUT_MS', 30_000, 100, 3_600_000),
    imageBytesInFlight: atLeast(
      env,
      'IMAGE_BYTES_IN_FLIGHT',
      512 * 1024 ** 2,
      imageBytesBound(maxFramePixels, maxBodyBytes) + maxFramePixels * 4,
      'one image of MAX_FRAME_PIXELS, as received and decoded, must fit',
    ),
  };
}

/**
 * Most bytes an uploaded image of `pixels` may be: its pixels at 16 bits per channel, uncompressed,
 * plus 1% and 1 MiB for PNG's row filters, chunk framing and metadata; never more than a whole body.
 */
export function imageBytesBound(pixels: number, maxBodyBytes: number): number {
  return Math.min(maxBodyBytes, Math.ceil(pixels * 8 * 1.01) + 1024 * 1024);
}

export const API_CONFIG = Symbol('API_CONFIG');
