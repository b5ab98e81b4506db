import { Redis, type RedisOptions } from 'ioredis';
import { parseRedisTarget, redact } from './redis-target.js';

/**
 * Redis refused the credentials of its URL: a configuration error to report once and stop on, not an
 * outage to retry. The message names the server (password masked) and Redis's own reply, never the
 * command that carried the password.
 */
export class RedisCredentialsError extends Error {}

/** Replies that mean "wrong or missing user/password" (Redis 6+ ACL and requirepass alike). */
const CREDENTIAL_REPLY = /^(WRONGPASS|NOAUTH)\b|^ERR (AUTH\b|invalid password|Client sent AUTH)/;

export function isCredentialsError(error: unknown): boolean {
  return error instanceof RedisCredentialsError || CREDENTIAL_REPLY.test((error as Error)?.message ?? '');
}

/** The error to report for a refusal seen on a connection to `url` (its reply, never its command). */
export function credentialsErrorFor(url: string, error: Error): RedisCredentialsError {
  if (error instanceof RedisCredentialsError) return error;
  const code = error.message.split(' ')[0];
  return new RedisCredentialsError(
    code === 'NOAUTH'
      ? `Redis at ${redact(url)} requires a password (NOAUTH): give it in the URL as user:password@`
      : `Redis at ${redact(url)} refused the credentials (${code}): check the user name and password in the URL`,
  );
}

/**
 * Connects once, without retrying, and asks for PING. Rejects with RedisCredentialsError when Redis
 * refuses the credentials; resolves `reachable` or `unreachable` otherwise (an outage is not a
 * configuration error: the process's connections retry it with backoff and log it).
 */
export async function checkRedisCredentials(
  url: string,
  timeoutMs = 5000,
): Promise<'reachable' | 'unreachable'> {
  const target = parseRedisTarget(url);
  const options: RedisOptions = {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    connectionName: 'credentials-check',
  };
  const redis =
    target.kind === 'single'
      ? new Redis(target.url, options)
      : target.kind === 'sentinel'
        ? new Redis({
            ...options,
            sentinels: target.sentinels,
            name: target.name,
            username: target.username,
            password: target.password,
            sentinelRetryStrategy: () => null,
          })
        : // Every node of a cluster takes the same credentials: the first one answers for all.
          new Redis({
            ...options,
            ...target.nodes[0],
            username: target.username,
            password: target.password,
          });
  let refused: Error | undefined;
  // ioredis reports a refused AUTH/HELLO as an 'error' event; connect() itself only says "closed".
  redis.on('error', (error: Error) => {
    if (isCredentialsError(error)) refused ??= error;
  });
  try {
    await redis.connect();
    await redis.ping();
    return 'reachable';
  } catch (error) {
    refused ??= isCredentialsError(error) ? (error as Error) : undefined;
    if (refused) throw credentialsErrorFor(url, refused);
    return 'unreachable';
  } finally {
    redis.disconnect();
  }
}
