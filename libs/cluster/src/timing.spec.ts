import { backoffDelay } from './backoff.js';
import { dedupKeyOf } from './event-log.js';
import { KeySpace } from './keys.js';
import { lockSettingsFor } from './queues.js';

describe('backoffDelay', () => {
  const policy = { initialMs: 500, maxMs: 30_000 };
  it('doubles from the first delay, with jitter between half and all of it, and stays under the cap', () => {
    expect(backoffDelay(1, policy, () => 0)).toBe(250);
    expect(backoffDelay(1, policy, () => 1)).toBe(500);
    expect(backoffDelay(3, policy, () => 1)).toBe(2000);
    expect(backoffDelay(20, policy, () => 1)).toBe(30_000);
    expect(backoffDelay(20, policy, () => 0)).toBe(15_000);
  });
});

describe('lockSettingsFor', () => {
  it('renews the lock three times per timeout and checks for stalls twice per timeout', () => {
    expect(lockSettingsFor(3000)).toEqual({ lockDuration: 3000, lockRenewTime: 1000, stalledInterval: 1500 });
    expect(lockSettingsFor(300).lockRenewTime).toBeGreaterThanOrEqual(250);
  });
});

describe('dedupKeyOf', () => {
  it('dedups outputs per index and the final event per job, not progress', () => {
    expect(dedupKeyOf({ type: 'output', index: 3, contentType: 'image/png', bytes: 1 })).toBe('output:3');
    expect(dedupKeyOf({ type: 'completed', outputs: 1 })).toBe(dedupKeyOf({ type: 'failed', error: 'x' }));
    expect(dedupKeyOf({ type: 'progress', progress: 0.5, framesDone: 1 })).toBe('');
  });
});

describe('KeySpace', () => {
  it('hash-tags queues together and each job on its own slot', () => {
    const keys = new KeySpace('enc');
    expect(keys.queuePrefix).toBe('{enc}');
    expect(keys.frame('J1', 2)).toBe('enc:job:{J1}:frame:2');
    expect(keys.events('J1')).toBe('enc:job:{J1}:events');
    expect(keys.emitted('J1').match(/\{[^}]*\}/)?.[0]).toBe('{J1}');
  });
});
