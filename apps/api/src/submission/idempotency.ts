import {
  ConflictException,
  Inject,
  Injectable,
  UnprocessableEntityException,
  BadRequestException,
} from '@nestjs/common';
import type { Request } from 'express';
import type { RedisClient } from '#cluster';
import { KeySpace } from '#cluster';
import { principalOf } from '../auth/tenancy.js';
import { REDIS } from '../dispatch/tokens.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';

export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/**
 * A reservation lives this long unless the request holding it renews it (every third of it): a process
 * that dies mid-request frees its keys within seconds, so a client retrying elsewhere is not blocked.
 */
export const PENDING_TTL_SECONDS = 15;

/** 409 with Retry-After: the same key is being processed right now. */
export class IdempotencyPendingException extends ConflictException {
  readonly retryAfterSeconds = 1;
  constructor() {
    super('a request with this Idempotency-Key is still being processed; retry later');
  }
}

export function assertIdempotencyKey(key: string): void {
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new BadRequestException('Idempotency-Key must be 1-128 letters, digits, or _ . : -');
  }
}

/**
 * Whose keys a request's are: its tenant's. Any of the tenant's API keys (a rotated one too) gets the
 * first answer, and another tenant's same key is another request.
 */
export function idempotencyScope(request: Request): string {
  return `tenant-${principalOf(request).tenant}`;
}

/**
 * Whose keys these are: a tenant's submissions (`tenant-<name>`), or one stream's batches, whose keys
 * live in the stream's slot so that a batch's seq and its key are set in one step (StreamStore.allocate
 * reserves a key with an entry of this store's form).
 */
export type IdempotencyScope = string | { streamId: string };

/** What a key holds; `fingerprint` is empty where the request is not compared (a stream's batches). */
export interface IdempotencyEntry<T> {
  fingerprint: string;
  state: 'pending' | 'done';
  result?: T;
}

/**
 * What makes two submissions "the same request": method, parameters, content type and encoding, and
 * body length. The body itself is not hashed (that would cost ~20 ms per 1080p frame on the hot path).
 */
export function requestFingerprint(request: Pick<Request, 'method' | 'headers' | 'query'>): string {
  const query = Object.entries(request.query as Record<string, unknown>)
    .map(([name, value]) => `${name}=${String(value)}`)
    .sort()
    .join('&');
  const header = (name: string) => String(request.headers[name] ?? '');
  return [
    request.method,
    query,
    header('content-type').split(';')[0],
    header('content-encoding'),
    header('content-length'),
  ].join('|');
}

/**
 * `Idempotency-Key`, for every route that takes one: the same key (per tenant, or per stream for its
 * batches) with the same request returns the first answer instead of doing the work again. The key is
 * reserved before the body is read, so a retry racing the first attempt gets 409 instead of a second
 * job; a failed attempt releases it.
 */
@Injectable()
export class IdempotencyStore {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  /** The first answer when this is a repeat; null when the caller should go ahead (the key is now reserved). */
  async begin<T>(scope: IdempotencyScope, key: string, fingerprint: string): Promise<T | null> {
    assertIdempotencyKey(key);
    const pending: IdempotencyEntry<T> = { fingerprint, state: 'pending' };
    const reserved = await this.redis.set(
      this.redisKey(scope, key),
      JSON.stringify(pending),
      'EX',
      PENDING_TTL_SECONDS,
      'NX',
    );
    if (reserved === 'OK') return null;
    return (await this.answerOf<T>(scope, key, fingerprint)) ?? this.begin(scope, key, fingerprint);
  }

  /**
   * The answer the key got, or null when it is unused: 422 when it was used for another request, 409
   * (retry later) while that request is still under way.
   */
  async answerOf<T>(scope: IdempotencyScope, key: string, fingerprint: string): Promise<T | null> {
    const existing = await this.redis.get(this.redisKey(scope, key));
    if (!existing) return null;
    const entry = entryOf<T>(scope, existing);
    if (entry.fingerprint !== fingerprint) {
      throw new UnprocessableEntityException(
        'this Idempotency-Key was used for a different request (parameters or body length differ)',
      );
    }
    if (entry.state === 'pending' || entry.result === undefined) throw new IdempotencyPendingException();
    return entry.result;
  }

  /** Whether the key is in use (reserved or answered): a request with it then adds no work. */
  async has(scope: IdempotencyScope, key: string): Promise<boolean> {
    assertIdempotencyKey(key);
    return (await this.redis.exists(this.redisKey(scope, key))) > 0;
  }

  /** Keeps a reservation alive while its request runs; returns the function that stops. */
  holdPending(scope: IdempotencyScope, key: string): () => void {
    const redisKey = this.redisKey(scope, key);
    const timer = setInterval(
      () => void this.redis.expire(redisKey, PENDING_TTL_SECONDS, 'XX').catch(() => undefined),
      (PENDING_TTL_SECONDS * 1000) / 3,
    );
    return () => clearInterval(timer);
  }

  /** The work is done: a repeat now gets `result`, for the retention time. */
  async complete<T>(scope: IdempotencyScope, key: string, fingerprint: string, result: T): Promise<void> {
    const entry: IdempotencyEntry<T> = { fingerprint, state: 'done', result };
    await this.redis.set(
      this.redisKey(scope, key),
      JSON.stringify(entry),
      'EX',
      this.config.retentionSeconds,
    );
  }

  /** The work was not done: a retry with the key does it anew. */
  async abandon(scope: IdempotencyScope, key: string): Promise<void> {
    await this.redis.del(this.redisKey(scope, key));
  }

  private redisKey(scope: IdempotencyScope, key: string): string {
    return typeof scope === 'string'
      ? this.keys.idempotency(scope, key)
      : this.keys.streamBatchKey(scope.streamId, key);
  }
}

/**
 * A stream's batch key written before the stores were one held `{ state, batch }`, the batch without
 * its stream id; such keys live out the retention time, so a retry of such a batch still gets it.
 */
function entryOf<T>(scope: IdempotencyScope, json: string): IdempotencyEntry<T> {
  const entry = JSON.parse(json) as IdempotencyEntry<T> & { batch?: object };
  if (entry.fingerprint !== undefined || !entry.batch || typeof scope === 'string') return entry;
  return { fingerprint: '', state: entry.state, result: { streamId: scope.streamId, ...entry.batch } as T };
}
