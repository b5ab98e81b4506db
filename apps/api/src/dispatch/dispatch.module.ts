import { BullModule } from '@nestjs/bullmq';
import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisClient } from '#cluster';
import {
  ENCODE_QUEUES,
  EventLog,
  FrameStore,
  DEFAULT_FRAME_STORE_OPTIONS,
  JobCancellations,
  JobStore,
  KeySpace,
  NodeRegistry,
  OutputStore,
  StreamStore,
  createRedisConnection,
  bullConnectionOptions,
} from '#cluster';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { ClusterChores } from './cluster-chores.js';
import { EncodeQueue } from './encode-queue.js';
import { GpuFallback } from './gpu-fallback.js';
import { CachedNodeList } from './cached-node-list.js';
import { REDIS, SUBSCRIBER } from './tokens.js';

/**
 * How the API hands work to the cluster: its Redis connections and the stores over them, the encode
 * queues, routing over the live nodes, and the chores that keep queued work moving (GpuFallback).
 * libs/cluster is the Redis layer itself, shared with the nodes; this is the API's use of it.
 */
@Global()
@Module({
  imports: [
    BullModule.forRootAsync({
      inject: [API_CONFIG],
      useFactory: (config: ApiConfig) => ({
        prefix: new KeySpace(config.queuePrefix).queuePrefix,
        connection: bullConnectionOptions({ url: config.redisUrl, role: 'producer', name: 'api:queue' }),
      }),
    }),
    BullModule.registerQueue({ name: ENCODE_QUEUES.cpu }, { name: ENCODE_QUEUES.gpu }),
  ],
  providers: [
    {
      provide: REDIS,
      inject: [API_CONFIG],
      useFactory: (config: ApiConfig) =>
        createRedisConnection({ url: config.redisUrl, role: 'producer', name: 'api' }),
    },
    {
      provide: SUBSCRIBER,
      inject: [API_CONFIG],
      useFactory: (config: ApiConfig) =>
        createRedisConnection({ url: config.redisUrl, role: 'subscriber', name: 'api:events' }),
    },
    {
      provide: KeySpace,
      inject: [API_CONFIG],
      useFactory: (config: ApiConfig) => new KeySpace(config.queuePrefix),
    },
    {
      provide: FrameStore,
      inject: [REDIS, KeySpace, API_CONFIG],
      useFactory: (redis: RedisClient, keys: KeySpace, config: ApiConfig) =>
        new FrameStore(redis, keys, { ...DEFAULT_FRAME_STORE_OPTIONS, ttlSeconds: config.retentionSeconds }),
    },
    {
      provide: JobStore,
      inject: [REDIS, KeySpace, API_CONFIG],
      useFactory: (redis: RedisClient, keys: KeySpace, config: ApiConfig) =>
        new JobStore(redis, keys, config.retentionSeconds),
    },
    {
      provide: OutputStore,
      inject: [REDIS, KeySpace, API_CONFIG],
      useFactory: (redis: RedisClient, keys: KeySpace, config: ApiConfig) =>
        new OutputStore(redis, keys, config.retentionSeconds),
    },
    {
      provide: EventLog,
      inject: [REDIS, KeySpace, API_CONFIG],
      useFactory: (redis: RedisClient, keys: KeySpace, config: ApiConfig) =>
        new EventLog(redis, keys, config.retentionSeconds),
    },
    {
      provide: StreamStore,
      inject: [REDIS, KeySpace, API_CONFIG],
      useFactory: (redis: RedisClient, keys: KeySpace, config: ApiConfig) =>
        new StreamStore(redis, keys, config.retentionSeconds, config.streamLogMaxEvents),
    },
    {
      provide: JobCancellations,
      inject: [REDIS, KeySpace],
      useFactory: (redis: RedisClient, keys: KeySpace) => new JobCancellations(redis, keys),
    },
    {
      provide: NodeRegistry,
      inject: [REDIS, KeySpace],
      useFactory: (redis: RedisClient, keys: KeySpace) => new NodeRegistry(redis, keys),
    },
    EncodeQueue,
    CachedNodeList,
    ClusterChores,
    GpuFallback,
  ],
  exports: [
    REDIS,
    SUBSCRIBER,
    KeySpace,
    FrameStore,
    JobStore,
    OutputStore,
    EventLog,
    StreamStore,
    JobCancellations,
    NodeRegistry,
    EncodeQueue,
    CachedNodeList,
    ClusterChores,
  ],
})
export class DispatchModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: RedisClient) {}

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}
