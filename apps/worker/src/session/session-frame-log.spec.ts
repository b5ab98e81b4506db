import type { SessionCommitResult, SessionFrameOutput } from '#cluster';
import { SessionBacklogFull, SessionCommitRefused, SessionFrameLog } from './session-frame-log.js';

const output = (frame: number): SessionFrameOutput => ({
  node: 'n1',
  epoch: 0,
  nodeName: 'node',
  frame,
  keyframe: frame === 0,
  contentType: 'video/h264',
  data: Buffer.alloc(10),
});

class FakeRedis {
  up = true;
  logged: number[] = [];
  refuse: SessionCommitResult | null = null;
  private wake: (() => void)[] = [];

  commitSessionFrame(_streamId: string, out: SessionFrameOutput): Promise<SessionCommitResult> {
    if (!this.up)
      return Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
    if (this.refuse) return Promise.resolve(this.refuse);
    if (this.logged.includes(out.frame)) return Promise.resolve({ status: 'duplicate' });
    this.logged.push(out.frame);
    return Promise.resolve({ status: 'appended', seq: out.frame });
  }

  back(): void {
    this.up = true;
    for (const wake of this.wake.splice(0)) wake();
  }

  whenReady = (): Promise<void> =>
    this.up ? Promise.resolve() : new Promise((resolve) => this.wake.push(resolve));
}

function setup(maxQueuedFrames = 100) {
  const redis = new FakeRedis();
  const events: string[] = [];
  const log = new SessionFrameLog(
    redis,
    { isReady: () => redis.up, whenReady: redis.whenReady, maxQueuedFrames, maxQueuedBytes: 1e9 },
    {
      onDurable: (streamId, upTo) => events.push(`durable ${streamId} ${upTo}`),
      onRefused: (streamId, error) => events.push(`refused ${streamId} ${error.result.status}`),
    },
  );
  return { redis, events, log };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('SessionFrameLog', () => {
  it('logs at once while Redis answers', async () => {
    const { redis, log } = setup();
    expect(await Promise.all([log.write('s', output(0)), log.write('s', output(1))])).toEqual([true, true]);
    expect(redis.logged).toEqual([0, 1]);
  });

  it('queues while Redis is away, then flushes in order and marks the stream durable', async () => {
    const { redis, events, log } = setup();
    await log.write('s', output(0));
    redis.up = false;
    expect(await log.write('s', output(1))).toBe(false);
    redis.up = true; // back, but the queued frame must go first
    const later = log.write('s', output(2));
    redis.up = false;
    expect(await later).toBe(false);
    expect(log.backlog).toBe(2);
    redis.back();
    await settle();
    await settle();
    expect(redis.logged).toEqual([0, 1, 2]);
    expect(events).toEqual(['durable s 2']);
    expect(log.backlog).toBe(0);
  });

  it('stops taking outputs when the backlog is full', async () => {
    const { redis, log } = setup(2);
    redis.up = false;
    await log.write('s', output(0));
    await log.write('s', output(1));
    await expect(log.write('s', output(2))).rejects.toBeInstanceOf(SessionBacklogFull);
  });

  it('never queues a refusal: a fenced first attempt rejects at once', async () => {
    const { redis, log } = setup();
    redis.refuse = { status: 'moved' };
    await expect(log.write('s', output(0))).rejects.toBeInstanceOf(SessionCommitRefused);
    expect(log.backlog).toBe(0);
  });

  it('drops a backlog that Redis refuses once back (the stream moved meanwhile)', async () => {
    const { redis, events, log } = setup();
    redis.up = false;
    await log.write('s', output(0));
    redis.refuse = { status: 'moved' };
    redis.back();
    await settle();
    expect(events).toEqual(['refused s moved']);
    expect(log.backlog).toBe(0);
  });
});
