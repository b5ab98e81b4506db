import { RestartTracker } from './restart-tracker.js';

describe('RestartTracker', () => {
  it('counts a start with the same attempt again as a failover, not a first start or a retry', () => {
    const tracker = new RestartTracker();
    expect(tracker.started('a', 1)).toBe(false);
    expect(tracker.started('a', 1)).toBe(true); // its node died: the stalled-job check re-ran it
    expect(tracker.started('a', 2)).toBe(false); // a retry after a failure
    expect(tracker.started('b', 1)).toBe(false);
    tracker.finished('a');
    expect(tracker.started('a', 2)).toBe(false);
  });
});
