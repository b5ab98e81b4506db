import type { EventLog, JobRecord, JobStore, StreamRecord, StreamStore } from '#cluster';
import type { JobEvent, LoggedJobEvent } from '#contracts';
import type { EventHub } from './event-hub.js';
import { EventLogs } from './event-logs.js';

/** A job's log and record, and a stream's record, in memory. */
function setUp() {
  const logged: LoggedJobEvent[] = [];
  let job: Pick<JobRecord, 'status'> | null = { status: 'active' };
  let stream: Pick<StreamRecord, 'state' | 'lastEventId'> | null = { state: 'open', lastEventId: 0 };
  const events = {
    readAfter: (jobId: string, after?: string, count?: number) => {
      const from = logged.findIndex((entry) => entry.id === after) + 1;
      return Promise.resolve(logged.slice(from, count === undefined ? undefined : from + count));
    },
  };
  const logs = new EventLogs(
    events as unknown as EventLog,
    { get: () => Promise.resolve(job) } as unknown as JobStore,
    { get: () => Promise.resolve(stream) } as unknown as StreamStore,
    {} as EventHub,
  );
  return {
    logs,
    log: (id: string, event: JobEvent) => logged.push({ id, jobId: 'j', event }),
    setJob: (record: typeof job) => (job = record),
    setStream: (record: typeof stream) => (stream = record),
  };
}

describe('EventLogs.job', () => {
  it('reads the log by position and ends at completed or failed', async () => {
    const { logs, log } = setUp();
    log('0-1', { type: 'active', node: 'n', attempt: 1 });
    log('0-2', { type: 'completed', outputs: 0 });
    const job = logs.job('j');
    expect(await job.readAfter('0-1', 10)).toEqual([
      { position: '0-2', event: { type: 'completed', outputs: 0 } },
    ]);
    expect(job.isLast({ type: 'completed', outputs: 0 })).toBe(true);
    expect(job.isLast({ type: 'failed', error: 'x' })).toBe(true);
    expect(job.isLast({ type: 'progress', progress: 0.5, framesDone: 1 })).toBe(false);
  });

  it('is over when the job is gone, not while it runs', async () => {
    const { logs, setJob } = setUp();
    expect(await logs.job('j').isOver('0-0')).toBe(false);
    setJob(null);
    expect(await logs.job('j').isOver('0-0')).toBe(true);
  });

  it('gives a final job its final event a moment to be logged, and is over if it never comes', async () => {
    const { logs, log, setJob } = setUp();
    log('0-1', { type: 'active', node: 'n', attempt: 1 });
    setJob({ status: 'completed' });
    const pending = logs.job('j').isOver('0-1');
    log('0-2', { type: 'completed', outputs: 0 });
    expect(await pending).toBe(false);
    expect(await logs.job('j').isOver('0-2')).toBe(true);
  });
});

describe('EventLogs.stream', () => {
  it('is over once ended with nothing after the position, or gone', async () => {
    const { logs, setStream } = setUp();
    expect(await logs.stream('s').isOver('0-3')).toBe(false);
    setStream({ state: 'ended', lastEventId: 12 });
    expect(await logs.stream('s').isOver('0-3')).toBe(false);
    expect(await logs.stream('s').isOver('0-12')).toBe(true);
    setStream(null);
    expect(await logs.stream('s').isOver('0-3')).toBe(true);
  });
});
