import type { ConnectionOptions } from 'bullmq';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { parseRedisTarget } from './redis-target.js';
import { batchWritesPerTurn } from './turn-batched-writes.js';

/**
 * - `producer`: the API's command connection. Fails fast while Redis is away (no offline queue), so the
 *   API answers 503 instead of acknowledging work it did not store.
 * - `worker`: BullMQ workers and node heartbeats. Commands wait for reconnection (BullMQ requires
 *   `maxRetriesPerRequest: null`).
 * - `subscriber`: pub/sub; resubscribes by itself after a reconnect.
 */
/** A single Redis (or one behind Sentinel) or a Redis Cluster: the stores use what both offer. */
export type RedisClient = Redis | Cluster;

export type ConnectionRole = 'producer' | 'worker' | 'subscriber';

export interface RedisConnectionOptions {
  url: string;
  role: ConnectionRole;
  name: string;
  reconnect?: BackoffPolicy;
  /** Told of each reconnect attempt the backoff schedules (to report an outage as it goes on). */
  onReconnect?: (attempt: number, delayMs: number) => void;
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
    retryStrategy: (attempt) => {
      const delayMs = backoffDelay(attempt, reconnect);
      options.onReconnect?.(attempt, delayMs);
      return delayMs;
    },
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
}

export function createRedisConnection(options: RedisConnectionOptions): RedisClient {
  const redis = connect(options);
  // Connection errors are reported through health checks and retried by retryStrategy; an unhandled
  // 'error' event would crash the process.
  redis.on('error', () => undefined);
  return redis;
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitUntilReady(redis: RedisClient, timeoutMs: number): Promise<void> {
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

function connect(options: RedisConnectionOptions): RedisClient {
  const target = parseRedisTarget(options.url);
  const redisOptions = redisOptionsFor(options);
  switch (target.kind) {
    case 'single':
      return batchWritesPerTurn(new Redis(target.url, redisOptions));
    case 'sentinel':
      return batchWritesPerTurn(
        new Redis({
          ...redisOptions,
          sentinels: target.sentinels,
          name: target.name,
          username: target.username,
          password: target.password,
        }),
      );
    case 'cluster': {
      const { retryStrategy, enableOfflineQueue, maxRetriesPerRequest, ...nodeOptions } = redisOptions;
      return new Cluster(target.nodes, {
        clusterRetryStrategy: retryStrategy as (attempt: number) => number,
        enableOfflineQueue,
        redisOptions: {
          ...nodeOptions,
          maxRetriesPerRequest,
          username: target.username,
          password: target.password,
        },
      });
    }
  }
}

/**
 * Connection settings for BullMQ. For one server (or Sentinel) these are options, so BullMQ owns and
 * closes the connections it makes; a Redis Cluster must be handed over as a connected instance.
 */
export function bullConnectionOptions(options: RedisConnectionOptions): ConnectionOptions {
  const target = parseRedisTarget(options.url);
  if (target.kind === 'cluster') return createRedisConnection(options) as unknown as ConnectionOptions;
  if (target.kind === 'sentinel') {
    return {
      ...redisOptionsFor(options),
      sentinels: target.sentinels,
      name: target.name,
      username: target.username,
      password: target.password,
    } as ConnectionOptions;
  }
  return { url: target.url, ...redisOptionsFor(options) } as ConnectionOptions;
}
