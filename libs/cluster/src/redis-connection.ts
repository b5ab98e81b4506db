import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { backoffDelay, type BackoffPolicy } from './backoff.js';

/**
 * - `producer`: the API's command connection. Fails fast while Redis is away (no offline queue), so the
 *   API answers 503 instead of acknowledging work it did not store.
 * - `worker`: BullMQ workers and node heartbeats. Commands wait for reconnection (BullMQ requires
 *   `maxRetriesPerRequest: null`).
 * - `subscriber`: pub/sub; resubscribes by itself after a reconnect.
 */
export type ConnectionRole = 'producer' | 'worker' | 'subscriber';

export interface RedisConnectionOptions {
  url: string;
  role: ConnectionRole;
  name: string;
  reconnect?: BackoffPolicy;
}

export const DEFAULT_RECONNECT: BackoffPolicy = { initialMs: 200, maxMs: 10_000 };

export function redisOptionsFor(options: RedisConnectionOptions): RedisOptions {
  const reconnect = options.reconnect ?? DEFAULT_RECONNECT;
  const failFast = options.role === 'producer';
  return {
    connectionName: options.name,
    lazyConnect: false,
    enableOfflineQueue: !failFast,
    maxRetriesPerRequest: failFast ? 1 : null,
    enableReadyCheck: true,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => backoffDelay(attempt, reconnect),
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
}

export function createRedisConnection(options: RedisConnectionOptions): Redis {
  const redis = new Redis(options.url, redisOptionsFor(options));
  // Connection errors are reported through health checks and retried by retryStrategy; an unhandled
  // 'error' event would crash the process.
  redis.on('error', () => undefined);
  return redis;
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitUntilReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis not reachable within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/** Connection options for BullMQ (it then owns, and closes, the connections it makes from them). */
export function bullConnectionOptions(options: RedisConnectionOptions): ConnectionOptions {
  return { url: options.url, ...redisOptionsFor(options) } as ConnectionOptions;
}
