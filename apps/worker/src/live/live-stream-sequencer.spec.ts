import type { EncodeJobData, JobEvent, JobTimings, OutputInfo, StreamEvent, StreamState } from '#contracts';
import type { LivePacket } from '#codecs';
import { BufferPool, type CommitResult } from '#cluster';
import type { EncodeJobIO } from '../encode-job-runner.js';
import {
  LiveHandBack,
  LiveStreamSequencer,
  type LiveSession,
  type LiveSessionFactory,
  type LiveStreamLog,
} from './live-stream-sequencer.js';
import { encodeJobData } from '#contracts/testing/encode-job.js';
import { RawFramesOnly } from '../testing/fakes.js';

function batch(seq: number, frames = 1): EncodeJobData {
  return encodeJobData({
    jobId: `job-${seq}`,
    codec: 'h264',
    width: 4,
    height: 4,
    frames,
    stream: { streamId: 's1', mode: 'live', seq, firstFrame: seq * frames, keyframeInterval: 100 },
  });
}

class FakeStorage extends RawFramesOnly implements EncodeJobIO {
  outputs = new Map<string, Buffer>();
  completed: string[] = [];
  timings = new Map<string, JobTimings | undefined>();
  pools: (BufferPool | null)[] = [];
  finished = new Set<string>();
  async *readFrames(_jobId: string, frameBytes: number, frames: number, pool: BufferPool | null) {
    this.pools.push(pool);
    for (let index = 0; index < frames; index++) yield Buffer.alloc(frameBytes, index);
  }
  async deleteFrames() {}
  async putOutput(jobId: string, index: number, data: Buffer) {
    this.outputs.set(`${jobId}/${index}`, data);
  }
  async deleteOutputs() {}
  async markActive(jobId: string) {
    return !this.finished.has(jobId);
  }
  async status(jobId: string) {
    return this.finished.has(jobId) ? ('completed' as const) : ('active' as const);
  }
  async setProgress() {
    return true;
  }
  async addOutput(_jobId: string, _output: OutputInfo) {
    return true;
  }
  async complete(jobId: string, _now: number, timings?: JobTimings) {
    this.completed.push(jobId);
    this.timings.set(jobId, timings);
    this.finished.add(jobId);
    return true;
  }
  async fail() {
    return true;
  }
  async emit(_jobId: string, _event: JobEvent) {
    return null;
  }
  async emitAll() {}
}

class FakeLog implements LiveStreamLog {
  cursor = 0;
  node: string | null = 'me';
  log: StreamEvent[] = [];
  state: StreamState = 'open';
  nextCommit: CommitResult['status'] | 'error' | null = null;
  async position() {
    return { cursor: this.cursor, node: this.node, state: this.state };
  }
  async commit(
    _streamId: string,
    seq: number,
    events: StreamEvent[],
    pinned?: string,
  ): Promise<CommitResult> {
    const forced = this.nextCommit;
    this.nextCommit = null;
    if (forced === 'error') throw new Error('READONLY You can not write against a read only replica');
    if (forced === 'duplicate') return { status: 'duplicate' };
    if (pinned !== this.node || forced === 'not-pinned') return { status: 'not-pinned' };
    if (seq !== this.cursor) return { status: 'duplicate' };
    this.log.push(...events);
    this.cursor++;
    return { status: 'appended', delivered: this.cursor, ended: false };
  }
}

class FakeSession implements LiveSession {
  readonly contentType = 'video/h264';
  alive = true;
  encoded = 0;
  closed = false;
  failNext = false;
  constructor(readonly number: number) {}
  async encode(frames: AsyncIterable<Buffer>, count: number): Promise<LivePacket[]> {
    if (this.failNext) {
      this.alive = false;
      throw new Error('ffmpeg died');
    }
    const packets: LivePacket[] = [];
    for await (const frame of frames) {
      packets.push({
        data: Buffer.from(`s${this.number}f${this.encoded}:${frame[0]}`),
        keyframe: this.encoded === 0,
      });
      this.encoded++;
    }
    expect(packets).toHaveLength(count);
    return packets;
  }
  submit(frames: Buffer[], count: number) {
    const packets = this.encode(iterate(frames), count);
    return { written: packets.then(noop, noop), packets };
  }
  async close() {
    this.alive = false;
    this.closed = true;
  }
}

function noop(): void {}

async function* iterate(buffers: Buffer[]): AsyncGenerator<Buffer> {
  for (const buffer of buffers) yield await Promise.resolve(buffer);
}

function setup(now = () => 0, pool: BufferPool | null = null) {
  const storage = new FakeStorage();
  const log = new FakeLog();
  const sessions: FakeSession[] = [];
  const factory: LiveSessionFactory = {
    start: async () => {
      const session = new FakeSession(sessions.length);
      sessions.push(session);
      return session;
    },
  };
  const encoder = new LiveStreamSequencer('me', 'node-me', storage, log, factory, now, Infinity, pool);
  return { storage, log, sessions, encoder };
}

const outputsOf = (log: StreamEvent[]) =>
  log.filter((event): event is Extract<StreamEvent, { type: 'output' }> => event.type === 'output');

describe('LiveStreamSequencer', () => {
  it("runs a batch on the node's execution core: pooled frames, and a record with timings like any job", async () => {
    const pool = new BufferPool(1 << 20);
    const { storage, encoder } = setup(() => 0, pool);
    expect(await encoder.run(batch(0, 2), 1)).toEqual({ outputs: 2 });
    expect(storage.pools).toEqual([pool]);
    expect(storage.completed).toEqual(['job-0']);
    expect(storage.timings.get('job-0')).toEqual({
      queueWaitMs: expect.any(Number),
      fetchMs: expect.any(Number),
      encodeMs: expect.any(Number),
      storeOutputMs: expect.any(Number),
    });
    expect([...storage.outputs.keys()]).toEqual(['job-0/0', 'job-0/1']);
  });

  it('feeds consecutive batches to one encoder context and commits them in order', async () => {
    const { log, sessions, encoder, storage } = setup();
    for (let seq = 0; seq < 3; seq++) expect(await encoder.run(batch(seq, 2), 1)).toEqual({ outputs: 2 });
    expect(sessions).toHaveLength(1);
    expect(outputsOf(log.log).map((event) => [event.seq, event.frame, event.keyframe])).toEqual([
      [0, 0, true],
      [0, 1, false],
      [1, 2, false],
      [1, 3, false],
      [2, 4, false],
      [2, 5, false],
    ]);
    expect(log.log.filter((event) => event.type === 'batch')).toHaveLength(3);
    expect(storage.outputs.get('job-1/1')?.toString()).toBe('s0f3:1');
    expect(storage.completed).toEqual(['job-0', 'job-1', 'job-2']);
    expect(encoder.activeStreams).toBe(1);
  });

  it('runs the batches of a stream one at a time, in the order they were taken', async () => {
    const { log, encoder } = setup();
    await Promise.all([encoder.run(batch(0), 1), encoder.run(batch(1), 1), encoder.run(batch(2), 1)]);
    expect(outputsOf(log.log).map((event) => event.seq)).toEqual([0, 1, 2]);
  });

  it('hands back a batch whose predecessor is not delivered yet, and skips one delivered already', async () => {
    const { log, sessions, encoder } = setup();
    await expect(encoder.run(batch(1), 1)).rejects.toThrow(LiveHandBack);
    expect(sessions).toHaveLength(0);
    log.cursor = 5;
    expect(await encoder.run(batch(3), 1)).toEqual({ outputs: 0, skipped: true });
    expect(sessions).toHaveLength(0);
  });

  it('forwards a batch to the node the stream is pinned to', async () => {
    const { log, encoder } = setup();
    log.node = 'other';
    const error = await encoder.run(batch(0), 1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LiveHandBack);
    expect((error as LiveHandBack).forwardTo).toBe('other');
  });

  it('starts a new context (a keyframe) where the old one diverged from what the client got', async () => {
    const { log, sessions, encoder } = setup();
    await encoder.run(batch(0), 1);
    log.nextCommit = 'duplicate';
    await encoder.run(batch(1), 1);
    expect(sessions[0].closed).toBe(true);
    log.cursor = 2;
    await encoder.run(batch(2), 1);
    expect(sessions).toHaveLength(2);
    expect(outputsOf(log.log).map((event) => [event.seq, event.keyframe])).toEqual([
      [0, true],
      [2, true],
    ]);
  });

  it('restarts the encoder after a crash, starting with a keyframe at the failed batch', async () => {
    const { log, sessions, encoder } = setup();
    await encoder.run(batch(0), 1);
    sessions[0].failNext = true;
    await expect(encoder.run(batch(1), 1)).rejects.toThrow('ffmpeg died');
    expect(await encoder.run(batch(1), 2)).toEqual({ outputs: 1 });
    expect(sessions).toHaveLength(2);
    expect(outputsOf(log.log).map((event) => [event.seq, event.keyframe])).toEqual([
      [0, true],
      [1, true],
    ]);
  });

  it('does not reuse a context whose packets were never delivered (a failure after encoding)', async () => {
    const { log, sessions, encoder } = setup();
    await encoder.run(batch(0), 1);
    log.nextCommit = 'error';
    await expect(encoder.run(batch(1), 1)).rejects.toThrow('READONLY');
    expect(sessions[0].closed).toBe(true);
    await encoder.run(batch(1), 2);
    expect(sessions).toHaveLength(2);
    expect(outputsOf(log.log).map((event) => [event.seq, event.keyframe])).toEqual([
      [0, true],
      [1, true],
    ]);
  });

  it('closes the context of a stream that ended without waiting for the idle timeout', async () => {
    const { log, sessions, encoder } = setup();
    await encoder.run(batch(0), 1);
    expect(await encoder.closeIdle(60_000)).toBe(0);
    log.state = 'ended';
    expect(await encoder.closeIdle(60_000)).toBe(1);
    expect(sessions[0].closed).toBe(true);
  });

  it('closes contexts idle longer than the timeout', async () => {
    let now = 0;
    const { sessions, encoder } = setup(() => now);
    await encoder.run(batch(0), 1);
    now = 1000;
    expect(await encoder.closeIdle(5000)).toBe(0);
    now = 10_000;
    expect(await encoder.closeIdle(5000)).toBe(1);
    expect(sessions[0].closed).toBe(true);
    expect(encoder.activeStreams).toBe(0);
  });

  describe('capacity (--live-max-contexts)', () => {
    /** A stream log with one cursor per stream, all pinned here. */
    class StreamsLog implements LiveStreamLog {
      cursors = new Map<string, number>();
      async position(streamId: string) {
        return { cursor: this.cursors.get(streamId) ?? 0, node: 'me', state: 'open' as const };
      }
      async commit(streamId: string, seq: number): Promise<CommitResult> {
        if (seq !== (this.cursors.get(streamId) ?? 0)) return { status: 'duplicate' };
        this.cursors.set(streamId, seq + 1);
        return { status: 'appended', delivered: seq + 1, ended: false };
      }
    }

    function ofStream(streamId: string, seq: number): EncodeJobData {
      const data = batch(seq);
      return { ...data, jobId: `${streamId}-${seq}`, stream: { ...data.stream!, streamId } };
    }

    function capped(capacity: number, now: () => number) {
      const sessions = new Map<string, FakeSession[]>();
      let gate: Promise<void> | null = null;
      const factory: LiveSessionFactory = {
        start: async (data) => {
          const session = new FakeSession(sessions.size);
          if (gate) {
            const wait = gate;
            const encode = session.encode.bind(session);
            session.encode = async (frames, count) => (await wait, encode(frames, count));
          }
          const list = sessions.get(data.stream!.streamId) ?? [];
          list.push(session);
          sessions.set(data.stream!.streamId, list);
          return session;
        },
      };
      const encoder = new LiveStreamSequencer(
        'me',
        'node-me',
        new FakeStorage(),
        new StreamsLog(),
        factory,
        now,
        capacity,
      );
      return {
        encoder,
        sessions,
        hold: (until: Promise<void> | null) => {
          gate = until;
        },
      };
    }

    it('never keeps more contexts than its capacity: the one unused longest is closed', async () => {
      let now = 0;
      const { encoder, sessions } = capped(2, () => now);
      for (const stream of ['a', 'b', 'c']) {
        now += 10;
        await encoder.run(ofStream(stream, 0), 1);
      }
      expect(encoder.activeStreams).toBe(2);
      expect(['a', 'b', 'c'].map((stream) => sessions.get(stream)![0].closed)).toEqual([true, false, false]);
      // a comes back: a new context (a keyframe), and b, now the one unused longest, makes room.
      now += 10;
      await encoder.run(ofStream('a', 1), 1);
      expect(sessions.get('a')).toHaveLength(2);
      expect(['a', 'b', 'c'].map((stream) => sessions.get(stream)!.at(-1)!.closed)).toEqual([
        false,
        true,
        false,
      ]);
      expect(encoder.activeStreams).toBe(2);
    });

    it('hands a batch back when every context is encoding, and takes it once one is free', async () => {
      const { encoder, sessions, hold } = capped(1, () => 0);
      let release!: () => void;
      hold(new Promise<void>((resolve) => (release = resolve)));
      const first = encoder.run(ofStream('a', 0), 1);
      await new Promise((resolve) => setImmediate(resolve));
      await expect(encoder.run(ofStream('b', 0), 1)).rejects.toThrow(LiveHandBack);
      expect(sessions.has('b')).toBe(false);
      hold(null);
      release();
      await first;
      expect(await encoder.run(ofStream('b', 0), 1)).toEqual({ outputs: 1 });
      expect(sessions.get('a')![0].closed).toBe(true);
      expect(encoder.activeStreams).toBe(1);
    });
  });
});
