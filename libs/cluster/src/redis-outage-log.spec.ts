import { RedisOutageLog, isConnectionError } from './redis-outage-log.js';

describe('RedisOutageLog', () => {
  function setup() {
    let now = 0;
    const lines: string[] = [];
    const log = new RedisOutageLog(
      'redis://app:hunter2-secret@10.0.0.9:6379',
      { info: (line) => lines.push(`info ${line}`), warn: (line) => lines.push(`warn ${line}`) },
      1000,
      () => now,
    );
    return { log, lines, advance: (ms: number) => (now += ms) };
  }
  const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:6379'), { code: 'ECONNREFUSED' });

  it('logs the first error at once, then each reconnect step at most once a second, then the recovery', () => {
    const { log, lines, advance } = setup();
    log.error(refused);
    log.error(refused); // another connection of the process, same outage
    log.retrying(1, 250);
    advance(300);
    log.retrying(2, 500);
    advance(800);
    log.retrying(3, 1000);
    advance(1000);
    log.error(refused);
    log.retrying(4, 2000);
    advance(2000);
    log.ready();
    expect(lines).toEqual([
      'warn Redis at redis://app:***@10.0.0.9:6379 unreachable (connect ECONNREFUSED 10.0.0.9:6379): retrying with backoff',
      'warn Redis at redis://app:***@10.0.0.9:6379 still unreachable after 1.1 s (connect ECONNREFUSED 10.0.0.9:6379): reconnect attempt 3 in 1000 ms',
      'warn Redis at redis://app:***@10.0.0.9:6379 still unreachable after 2.1 s (connect ECONNREFUSED 10.0.0.9:6379): reconnect attempt 4 in 2000 ms',
      'info Redis at redis://app:***@10.0.0.9:6379 reachable again after 4.1 s',
    ]);
    expect(lines.join('\n')).not.toContain('hunter2');
  });

  it('reports a connection closed without an error as lost, and a new outage after a recovery', () => {
    const { log, lines, advance } = setup();
    log.retrying(1, 300);
    advance(400);
    log.ready();
    advance(60_000);
    log.error(refused);
    expect(lines).toEqual([
      'warn Redis at redis://app:***@10.0.0.9:6379 connection lost: reconnect attempt 1 in 300 ms',
      'info Redis at redis://app:***@10.0.0.9:6379 reachable again after 0.4 s',
      'warn Redis at redis://app:***@10.0.0.9:6379 unreachable (connect ECONNREFUSED 10.0.0.9:6379): retrying with backoff',
    ]);
  });

  it('tells connection errors from others', () => {
    expect(isConnectionError(refused)).toBe(true);
    expect(isConnectionError(new Error('Connection is closed.'))).toBe(true);
    expect(isConnectionError(new Error('Missing lock for job 1'))).toBe(false);
  });
});
