import { FailedAttempts, type FailureWindowReport } from './failed-attempts.js';

describe('FailedAttempts', () => {
  let now = 1_000_000;
  let reports: FailureWindowReport[];
  let attempts: FailedAttempts;

  beforeEach(() => {
    now = 1_000_000;
    reports = [];
    attempts = new FailedAttempts({
      limit: 3,
      windowSeconds: 60,
      report: (window) => reports.push(window),
      maxAddresses: 2,
      now: () => now,
    });
  });

  afterEach(() => attempts.close());

  it('lets an address fail up to the limit, then refuses it until its window ends', () => {
    for (let index = 0; index < 3; index++) {
      expect(attempts.retryAfter('10.0.0.1')).toBe(0);
      attempts.fail('10.0.0.1');
    }
    expect(attempts.retryAfter('10.0.0.1')).toBe(60);
    expect(attempts.retryAfter('10.0.0.2')).toBe(0);
    now += 59_500;
    expect(attempts.retryAfter('10.0.0.1')).toBe(1);
    now += 500;
    expect(attempts.retryAfter('10.0.0.1')).toBe(0);
  });

  it('reports each window once, when it ends, with its failures and refusals', () => {
    for (let index = 0; index < 5; index++) attempts.fail('10.0.0.1');
    attempts.retryAfter('10.0.0.1');
    attempts.retryAfter('10.0.0.1');
    attempts.sweep();
    expect(reports).toEqual([]);
    now += 60_000;
    attempts.sweep();
    attempts.sweep();
    expect(reports).toEqual([{ address: '10.0.0.1', failures: 5, refused: 2, windowSeconds: 60 }]);
  });

  it('bounds the addresses it tracks: the oldest window is reported early', () => {
    attempts.fail('10.0.0.1');
    attempts.fail('10.0.0.2');
    attempts.fail('10.0.0.3');
    expect(reports).toEqual([{ address: '10.0.0.1', failures: 1, refused: 0, windowSeconds: 60 }]);
    attempts.close();
    expect(reports.map((report) => report.address)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  });
});
