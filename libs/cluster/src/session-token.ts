import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SessionTokenClaims } from '#contracts';
import type { KeySpace } from './keys.js';
import type { RedisClient } from './redis-connection.js';
import { ConfigError, type Env } from './shared-config.js';

/**
 * Live session tokens: `s1.<claims, base64url JSON>.<HMAC-SHA256, base64url>`, signed with the cluster
 * secret that the API and every node share. The first secret signs; every listed secret verifies, so a
 * secret is rotated by listing the new one first, restarting everything, then dropping the old one.
 */
const VERSION = 's1';
const MAX_TOKEN_CHARS = 1024;
export const MIN_CLUSTER_SECRET_CHARS = 32;
export const MAX_CLUSTER_SECRETS = 2;

export type TokenRejection = 'malformed' | 'forged' | 'expired';

export class SessionTokens {
  private readonly secrets: Buffer[];

  constructor(
    secrets: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    if (secrets.length === 0) throw new Error('SessionTokens needs at least one secret');
    this.secrets = secrets.map((secret) => Buffer.from(secret, 'utf8'));
  }

  issue(claims: Omit<SessionTokenClaims, 'exp'>, ttlMs: number): { token: string; expiresAt: number } {
    const exp = this.now() + ttlMs;
    const body = Buffer.from(JSON.stringify({ ...claims, exp })).toString('base64url');
    const payload = `${VERSION}.${body}`;
    return { token: `${payload}.${mac(this.secrets[0], payload).toString('base64url')}`, expiresAt: exp };
  }

  /** The claims of a token one of the secrets signed, that has not expired; else why not. */
  verify(token: string | undefined): SessionTokenClaims | TokenRejection {
    if (!token || token.length > MAX_TOKEN_CHARS) return 'malformed';
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== VERSION) return 'malformed';
    const payload = `${parts[0]}.${parts[1]}`;
    const presented = Buffer.from(parts[2], 'base64url');
    const signed = this.secrets.some((secret) => {
      const expected = mac(secret, payload);
      return presented.length === expected.length && timingSafeEqual(presented, expected);
    });
    if (!signed) return 'forged';
    const claims = parseClaims(parts[1]);
    if (!claims) return 'malformed';
    return claims.exp > this.now() ? claims : 'expired';
  }
}

function mac(secret: Buffer, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest();
}

function parseClaims(body: string): SessionTokenClaims | null {
  try {
    const value = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<SessionTokenClaims>;
    if (
      typeof value.stream !== 'string' ||
      typeof value.node !== 'string' ||
      !Number.isInteger(value.epoch) ||
      typeof value.exp !== 'number'
    )
      return null;
    return { stream: value.stream, node: value.node, epoch: value.epoch!, exp: value.exp };
  } catch {
    return null;
  }
}

/**
 * `CLUSTER_SECRETS`: one or two comma-separated secrets of at least 32 characters (first signs).
 * Undefined when unset: the caller decides whether it may run without (loopback only, a secret shared
 * through Redis: see clusterSecretsFor).
 */
export function clusterSecretsSetting(env: Env): string[] | undefined {
  const raw = env.CLUSTER_SECRETS;
  if (raw === undefined || raw === '') return undefined;
  const secrets = raw.split(',').map((secret) => secret.trim());
  if (secrets.length > MAX_CLUSTER_SECRETS || secrets.some((s) => s.length < MIN_CLUSTER_SECRET_CHARS)) {
    throw new ConfigError(
      `CLUSTER_SECRETS must be one or two comma-separated secrets of at least ${MIN_CLUSTER_SECRET_CHARS} characters each (the first signs; generate one with: openssl rand -base64 32)`,
    );
  }
  return secrets;
}

/** A fresh random secret (npm start makes one when none is set). */
export function generateClusterSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The secrets a process signs and checks session tokens with: CLUSTER_SECRETS when set. Without it, a
 * cluster that lives on loopback only (`beyondLoopback` false: nothing of this process is reachable from
 * another machine) shares one random secret through Redis (the first process to start makes it), so
 * `npm run api` and `npm run worker` work with no setting; beyond loopback the setting is required.
 */
export async function resolveClusterSecrets(
  configured: string[] | undefined,
  beyondLoopback: boolean,
  redis: Pick<RedisClient, 'set' | 'get'>,
  keys: KeySpace,
): Promise<string[]> {
  if (configured) return configured;
  if (beyondLoopback) {
    throw new ConfigError(
      "CLUSTER_SECRETS is required when the API or a node's data port is reachable beyond loopback: set the same secret (openssl rand -base64 32) on the API and every node",
    );
  }
  await redis.set(keys.clusterSecret, generateClusterSecret(), 'NX');
  const shared = await redis.get(keys.clusterSecret);
  if (!shared) throw new Error('the cluster secret vanished from Redis right after it was set');
  return [shared];
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
