import { EmbeddedRedis, KeySpace, StreamStore, createRedisConnection } from '#cluster';
import type { RedisClient } from '#cluster';
import type { StreamEvent, StreamParams } from '#contracts';
import { tempDir } from './support.js';

/** The stream store's Lua scripts against a real redis-server: the reorder buffer and the log. */
const PARAMS: StreamParams = {
  codec: 'jpeg',
  mode: 'batch',
  pool: 'cpu',
  width: 8,
  height: 8,
  format: 'rgba',
  quality: 80,
  speed: 70,
  fps: 30,
  keyframeInterval: 300,
};

function batchOf(seq: number, outputs = 1): StreamEvent[] {
  return [
    ...Array.from({ length: outputs }, (_, index): StreamEvent => ({
      type: 'output',
      seq,
      jobId: `job-${seq}`,
      index,
      contentType: 'image/jpeg',
      bytes: 1,
    })),
    { type: 'batch', seq, jobId: `job-${seq}`, frames: outputs, outputs, node: 'n' },
  ];
}

describe('StreamStore', () => {
  const dir = tempDir('encoder-stream-store-');
  const redis = new EmbeddedRedis({ port: 0, dataDir: dir.path });
  let client: RedisClient;
  let store: StreamStore;
  let count = 0;
  const newStream = async (node: string | null = null) => {
    const id = `stream-${count++}`;
    await store.create(id, PARAMS, node, Date.now());
    return id;
  };
  const logged = async (id: string) => (await store.readAfter(id, 0, 1000)).map((entry) => entry.event);

  beforeAll(async () => {
    const url = await redis.start();
    client = createRedisConnection({ url, role: 'worker', name: 'test' });
    store = new StreamStore(client, new KeySpace('test'), 60, 100);
  });

  afterAll(async () => {
    client.disconnect();
    await redis.stop();
    dir.remove();
  });

  it('holds batches that finish early until the ones before them are in, then logs all in order', async () => {
    const id = await newStream();
    for (let seq = 0; seq < 4; seq++)
      expect(await store.allocate(id, 2, `job-${seq}`)).toEqual({ seq, firstFrame: seq * 2 });
    expect(await store.commit(id, 2, batchOf(2))).toEqual({ status: 'appended', delivered: 0, ended: false });
    expect(await store.commit(id, 1, batchOf(1))).toEqual({ status: 'appended', delivered: 0, ended: false });
    expect(await logged(id)).toEqual([]);
    expect(await store.commit(id, 0, batchOf(0, 2))).toEqual({
      status: 'appended',
      delivered: 3,
      ended: false,
    });
    const events = await store.readAfter(id, 0, 1000);
    expect(events.map((entry) => entry.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(
      events.map((entry) => `${entry.event.type}:${entry.event.type === 'end' ? '' : entry.event.seq}`),
    ).toEqual(['output:0', 'output:0', 'batch:0', 'output:1', 'batch:1', 'output:2', 'batch:2']);
    expect((await store.get(id))?.cursor).toBe(3);
  });

  it('runs its scripts again after the server forgot them (SCRIPT FLUSH)', async () => {
    const id = await newStream();
    await store.allocate(id, 1, 'job-0');
    await store.allocate(id, 1, 'job-1');
    expect(await store.commit(id, 0, batchOf(0))).toMatchObject({ status: 'appended', delivered: 1 });
    await client.script('FLUSH');
    expect(await store.commit(id, 1, batchOf(1))).toMatchObject({ status: 'appended', delivered: 2 });
    expect(await logged(id)).toEqual([...batchOf(0), ...batchOf(1)]);
  });

  it('logs a batch once however often it is committed', async () => {
    const id = await newStream();
    await store.allocate(id, 1, 'job');
    await store.allocate(id, 1, 'job');
    await store.commit(id, 1, batchOf(1));
    expect(await store.commit(id, 1, batchOf(1))).toEqual({ status: 'duplicate' });
    await store.commit(id, 0, batchOf(0));
    expect(await store.commit(id, 0, batchOf(0))).toEqual({ status: 'duplicate' });
    expect(await logged(id)).toHaveLength(4);
  });

  it('reserves a repeated idempotency key with its first batch, as IdempotencyStore keeps keys, never a new batch', async () => {
    const id = await newStream();
    const batch = { streamId: id, seq: 0, firstFrame: 0, jobId: 'job-a', frames: 2 };
    expect(await store.allocate(id, 2, 'job-a', 'key-1')).toEqual({ seq: 0, firstFrame: 0 });
    expect(await store.allocate(id, 2, 'job-b', 'key-1')).toBe('repeat');
    const entry = await client.get(new KeySpace('test').streamBatchKey(id, 'key-1'));
    expect(JSON.parse(entry!)).toEqual({ fingerprint: '', state: 'pending', result: batch });
    expect(await store.keyOf(id, 0)).toBe('key-1');
    expect(await store.allocate(id, 1, 'job-c', 'key-2')).toEqual({ seq: 1, firstFrame: 2 });
    // A batch that was never queued releases its key: the retry makes a new batch.
    await client.del(new KeySpace('test').streamBatchKey(id, 'key-2'));
    expect(await store.allocate(id, 1, 'job-d', 'key-2')).toEqual({ seq: 2, firstFrame: 3 });
    expect((await store.get(id))?.nextSeq).toBe(3);
  });

  it('takes a live batch only from the node the stream is pinned to, until it is moved', async () => {
    const id = await newStream('node-a');
    await store.allocate(id, 1, 'job');
    expect(await store.commit(id, 0, batchOf(0), 'node-b')).toEqual({ status: 'not-pinned' });
    expect(await store.repin(id, 'node-a', 'node-b')).toBe(true);
    expect(await store.repin(id, 'node-a', 'node-c')).toBe(false);
    expect(await store.commit(id, 0, batchOf(0), 'node-a')).toEqual({ status: 'not-pinned' });
    expect(await store.commit(id, 0, batchOf(0), 'node-b')).toMatchObject({ status: 'appended' });
    expect(await store.get(id)).toMatchObject({ node: 'node-b', epoch: 1 });
  });

  it('ends a closed stream after its last acknowledged batch, and refuses new batches', async () => {
    const id = await newStream();
    await store.allocate(id, 1, 'job');
    expect(await store.close(id, 'done')).toBe('closed');
    expect(await store.close(id, 'again')).toBe('not-open');
    expect(await store.allocate(id, 1, 'job')).toBe('closed');
    expect(await logged(id)).toEqual([]);
    expect(await store.commit(id, 0, batchOf(0))).toEqual({ status: 'appended', delivered: 1, ended: true });
    expect((await logged(id)).at(-1)).toEqual({ type: 'end', batches: 1, reason: 'done' });
    expect((await store.get(id))?.state).toBe('ended');
    const empty = await newStream();
    await store.close(empty, 'nothing sent');
    expect(await logged(empty)).toEqual([{ type: 'end', batches: 0, reason: 'nothing sent' }]);
    expect(await store.allocate('no-such-stream', 1, 'job')).toBe('missing');
  });

  it('keeps the newest events only, with ids that say how many were dropped', async () => {
    const id = await newStream();
    await store.allocate(id, 150, 'job');
    await store.commit(id, 0, batchOf(0, 150));
    const kept = await store.readAfter(id, 0, 1000);
    expect(kept).toHaveLength(100);
    expect(kept[0].id).toBe(52);
    expect(kept.at(-1)?.id).toBe(151);
    expect((await store.readAfter(id, 140, 5)).map((entry) => entry.id)).toEqual([141, 142, 143, 144, 145]);
  });

  describe('live session frames (commitSessionFrame)', () => {
    const keys = new KeySpace('test');
    const sessionId = () => `s${String(count++).padStart(16, 'S')}`;
    const frameOf = (frame: number, node = 'n1', epoch = 0) => ({
      node,
      epoch,
      nodeName: 'node-1',
      frame,
      keyframe: frame === 0,
      contentType: 'video/h264',
      data: Buffer.from([0, 0, 0, 1, frame]),
    });
    const bytesOf = (id: string, frame: number) => client.getBuffer(keys.output(`${id}.live`, frame));

    it('logs each frame as a one-frame batch and stores its bytes where followers read them', async () => {
      const id = sessionId();
      await store.create(id, { ...PARAMS, mode: 'live' }, 'n1', Date.now());
      expect(await store.commitSessionFrame(id, frameOf(0))).toEqual({ status: 'appended', seq: 0 });
      expect(await store.commitSessionFrame(id, frameOf(1))).toEqual({ status: 'appended', seq: 1 });
      expect(await logged(id)).toEqual([
        {
          type: 'output',
          seq: 0,
          jobId: `${id}.live`,
          index: 0,
          frame: 0,
          contentType: 'video/h264',
          bytes: 5,
          keyframe: true,
        },
        { type: 'batch', seq: 0, jobId: `${id}.live`, frames: 1, outputs: 1, node: 'node-1' },
        {
          type: 'output',
          seq: 1,
          jobId: `${id}.live`,
          index: 1,
          frame: 1,
          contentType: 'video/h264',
          bytes: 5,
          keyframe: false,
        },
        { type: 'batch', seq: 1, jobId: `${id}.live`, frames: 1, outputs: 1, node: 'node-1' },
      ]);
      expect(await bytesOf(id, 1)).toEqual(Buffer.from([0, 0, 0, 1, 1]));
      expect(await store.get(id)).toMatchObject({ frames: 2, nextSeq: 2, cursor: 2 });
      // The bytes live in the stream's slot (one script on Redis Cluster too).
      expect(keys.output(`${id}.live`, 1)).toBe(`test:stream:{${id}}:out:1`);
    });

    it('is fenced: a moved stream, an old epoch, a closed stream and a wrong frame write nothing', async () => {
      const id = sessionId();
      await store.create(id, { ...PARAMS, mode: 'live' }, 'n1', Date.now());
      await store.commitSessionFrame(id, frameOf(0));
      expect(await store.commitSessionFrame(id, frameOf(0))).toEqual({ status: 'duplicate' });
      expect(await store.commitSessionFrame(id, frameOf(5))).toEqual({ status: 'out-of-order', frames: 1 });
      expect(await store.repin(id, 'n1', 'n2')).toBe(true);
      expect(await store.commitSessionFrame(id, frameOf(1))).toEqual({ status: 'moved' });
      expect(await store.commitSessionFrame(id, frameOf(1, 'n2', 0))).toEqual({ status: 'moved' });
      expect(await bytesOf(id, 1)).toBeNull();
      expect(await store.commitSessionFrame(id, frameOf(1, 'n2', 1))).toEqual({ status: 'appended', seq: 1 });
      await store.close(id, 'done');
      expect(await store.commitSessionFrame(id, frameOf(2, 'n2', 1))).toEqual({ status: 'not-open' });
      expect(await store.commitSessionFrame(sessionId(), frameOf(0))).toEqual({ status: 'missing' });
      expect((await logged(id)).filter((event) => event.type === 'output')).toHaveLength(2);
    });

    it('waits behind POST batches acknowledged before it, then is logged in order', async () => {
      const id = sessionId();
      await store.create(id, { ...PARAMS, mode: 'live' }, 'n1', Date.now());
      expect(await store.allocate(id, 2, 'job-0')).toEqual({ seq: 0, firstFrame: 0 });
      expect(await store.commitSessionFrame(id, frameOf(2))).toEqual({ status: 'appended', seq: 1 });
      expect(await logged(id)).toEqual([]);
      await store.commit(id, 0, batchOf(0, 2));
      expect((await logged(id)).map((event) => `${event.type}:${'seq' in event ? event.seq : ''}`)).toEqual([
        'output:0',
        'output:0',
        'batch:0',
        'output:1',
        'batch:1',
      ]);
    });
  });
});
