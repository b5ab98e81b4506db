import { KeySpace, type RedisClient } from '#cluster';
import type { ApiConfig } from '../config/api-config.js';
import { IdempotencyPendingException, IdempotencyStore } from './idempotency.js';

/** A store over one stored value (what `GET` of any key answers). */
function storeHolding(value: object | null): IdempotencyStore {
  const redis = { get: () => Promise.resolve(value === null ? null : JSON.stringify(value)) };
  return new IdempotencyStore(redis as unknown as RedisClient, new KeySpace('t'), {
    retentionSeconds: 60,
  } as ApiConfig);
}

describe('IdempotencyStore.answerOf', () => {
  const batch = { seq: 3, firstFrame: 6, jobId: 'j', frames: 2 };

  it('answers null for an unused key, the result for a done one, 409 while pending, 422 for another request', async () => {
    expect(await storeHolding(null).answerOf('tenant-a', 'k', 'f')).toBeNull();
    const done = storeHolding({ fingerprint: 'f', state: 'done', result: { id: 'x' } });
    expect(await done.answerOf('tenant-a', 'k', 'f')).toEqual({ id: 'x' });
    await expect(done.answerOf('tenant-a', 'k', 'other')).rejects.toThrow(/different request/);
    await expect(
      storeHolding({ fingerprint: 'f', state: 'pending' }).answerOf('tenant-a', 'k', 'f'),
    ).rejects.toThrow(IdempotencyPendingException);
  });

  it('reads a stream batch key written before the stores were one ({ state, batch })', async () => {
    const old = storeHolding({ state: 'done', batch });
    expect(await old.answerOf({ streamId: 's1' }, 'k', '')).toEqual({ streamId: 's1', ...batch });
    await expect(
      storeHolding({ state: 'pending', batch }).answerOf({ streamId: 's1' }, 'k', ''),
    ).rejects.toThrow(IdempotencyPendingException);
  });
});
