import type { Command } from 'ioredis';
import {
  BodyLengthError,
  BodyTooLargeError,
  DEFAULT_FRAME_STORE_OPTIONS,
  FrameStore,
} from './frame-store.js';
import { KeySpace } from './keys.js';

/** Just enough of Redis for the frame store: binary SETRANGE/SET/GETRANGE/EXPIRE/UNLINK on a map. */
class FakeRedis {
  readonly values = new Map<string, Buffer>();
  readonly expiring = new Set<string>();

  sendCommand(command: Command): Promise<unknown> {
    // What ioredis does before writing: a value given in parts is joined when there is no socket.
    command.toWritable({});
    const [key, ...rest] = command.args as (string | Buffer)[];
    const name = String(key);
    if (command.name === 'setrange') {
      const offset = Number(rest[0]);
      const data = Buffer.isBuffer(rest[1]) ? rest[1] : Buffer.from(rest[1]);
      const current = this.values.get(name) ?? Buffer.alloc(0);
      const next = Buffer.alloc(Math.max(current.length, offset + data.length));
      current.copy(next);
      data.copy(next, offset);
      this.values.set(name, next);
      return Promise.resolve(next.length);
    }
    if (command.name === 'set') {
      this.values.set(name, Buffer.from(rest[0] as Buffer));
      if (String(rest[1]).toUpperCase() === 'EX') this.expiring.add(name);
      return Promise.resolve('OK');
    }
    return Promise.reject(new Error(`unexpected command ${command.name}`));
  }

  expire(key: string): Promise<number> {
    this.expiring.add(key);
    return Promise.resolve(1);
  }

  unlink(...keys: string[]): Promise<number> {
    let removed = 0;
    for (const key of keys) {
      this.expiring.delete(key);
      if (this.values.delete(key)) removed++;
    }
    return Promise.resolve(removed);
  }

  getrangeBuffer(key: string, start: number, end: number): Promise<Buffer> {
    return Promise.resolve((this.values.get(key) ?? Buffer.alloc(0)).subarray(start, end + 1));
  }
}

async function* pieces(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

/** The header of a frame stored as it is, in these tests: its length in ASCII and a colon. */
const HEADER = (frameBytes: number) => Buffer.from(`${frameBytes}:`);

/** Frame buffers that count what was taken and what is still out. */
function trackedBuffers() {
  const free: Buffer[] = [];
  const tracked = {
    acquired: 0,
    out: new Set<Buffer>(),
    acquire(size: number) {
      tracked.acquired++;
      const buffer = free.pop() ?? Buffer.alloc(size);
      tracked.out.add(buffer);
      return buffer;
    },
    release(buffer: Buffer) {
      tracked.out.delete(buffer);
      free.push(buffer);
    },
  };
  return tracked;
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('FrameStore input chunks', () => {
  const keys = new KeySpace('test');
  const jobId = 'AAAAAAAAAAAAAAAA';
  const body = Buffer.from(Array.from({ length: 2500 }, (_, index) => (index * 7) % 251));
  let redis: FakeRedis;
  let store: FrameStore;

  beforeEach(() => {
    redis = new FakeRedis();
    store = new FrameStore(redis as never, keys, { ...DEFAULT_FRAME_STORE_OPTIONS, readPieceBytes: 300 });
  });

  it('stores a body of unknown length in chunks (the last one shorter), and reads it back in order', async () => {
    expect(await store.writeInputChunks(jobId, pieces(body, 333), 1000, null, 10_000)).toBe(2500);
    expect([...redis.values.keys()]).toEqual([0, 1, 2].map((index) => keys.inputChunk(jobId, index)));
    expect(redis.values.get(keys.inputChunk(jobId, 2))!.length).toBe(500);
    expect([...redis.expiring].length).toBe(3);
    const chunks: Buffer[] = [];
    for await (const chunk of store.readInputChunks(jobId, 2500, 1000)) chunks.push(chunk);
    expect(chunks.map((chunk) => chunk.length)).toEqual([1000, 1000, 500]);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    await store.deleteInputChunks(jobId, 3);
    expect(redis.values.size).toBe(0);
  });

  it('stores a body of known length exactly', async () => {
    expect(await store.writeInputChunks(jobId, pieces(body, 64), 1000, 2500, 10_000)).toBe(2500);
    expect((await collect(store.readInputChunks(jobId, 2500, 1000))).equals(body)).toBe(true);
  });

  it('refuses a body of unknown length past the limit and removes what it wrote', async () => {
    await expect(store.writeInputChunks(jobId, pieces(body, 333), 1000, null, 2000)).rejects.toBeInstanceOf(
      BodyTooLargeError,
    );
    expect(redis.values.size).toBe(0);
  });

  it('refuses a known length over the limit before reading, and a body that differs from it', async () => {
    await expect(store.writeInputChunks(jobId, pieces(body, 333), 1000, 2500, 2000)).rejects.toBeInstanceOf(
      BodyTooLargeError,
    );
    await expect(store.writeInputChunks(jobId, pieces(body, 333), 1000, 2400, 10_000)).rejects.toBeInstanceOf(
      BodyLengthError,
    );
    expect(redis.values.size).toBe(0);
  });

  it('reserves no more for a frame than the body has sent, and removes it when the body fails', async () => {
    store = new FrameStore(redis as never, keys, {
      ...DEFAULT_FRAME_STORE_OPTIONS,
      preallocateMaxBytes: 500,
    });
    let stall!: (error: Error) => void;
    async function* bytesThenStall(bytes: number): AsyncGenerator<Buffer> {
      yield Buffer.alloc(bytes, 1);
      await new Promise<void>((_, reject) => (stall = reject));
    }
    // A 2000-byte frame declared and 100 bytes sent: Redis holds those 100, not 2000.
    const first = store.writeFrames(jobId, bytesThenStall(100), 2000, 2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(redis.values.get(keys.frame(jobId, 0))!.length).toBe(100);
    expect(redis.expiring.has(keys.frame(jobId, 0))).toBe(true);
    stall(new Error('the client stopped sending'));
    await expect(first).rejects.toThrow('the client stopped sending');
    expect(redis.values.size).toBe(0);
    // Once a whole frame was sent, the next one is allocated whole (no more than what came).
    const second = store.writeFrames(jobId, bytesThenStall(2100), 2000, 2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(redis.values.get(keys.frame(jobId, 1))!.length).toBe(2000);
    stall(new Error('the client stopped sending'));
    await expect(second).rejects.toThrow();
    // A frame no bigger than preallocateMaxBytes is allocated whole at its first byte.
    const small = store.writeFrames(jobId, bytesThenStall(10), 400, 1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(redis.values.get(keys.frame(jobId, 0))!.length).toBe(400);
    stall(new Error('the client stopped sending'));
    await expect(small).rejects.toThrow();
    expect(redis.values.size).toBe(0);
  });

  it('stores each whole frame as the value its encoder makes, one command a frame, frame n+1 gathered while n encodes', async () => {
    const frameBytes = 1000;
    const encoded: Buffer[] = [];
    let encoding = 0;
    let mostAtOnce = 0;
    const encode = async (frame: Buffer) => {
      mostAtOnce = Math.max(mostAtOnce, ++encoding);
      encoded.push(Buffer.from(frame));
      await new Promise((resolve) => setTimeout(resolve, 5));
      encoding--;
      return Buffer.concat([Buffer.from('Z'), frame.subarray(0, 10)]);
    };
    const stored: number[] = [];
    const buffers = trackedBuffers();
    const storedBytes = await store.writeEncodedFrames(
      jobId,
      pieces(body.subarray(0, 2 * frameBytes), 333),
      frameBytes,
      2,
      { encode, header: HEADER },
      buffers,
      (index) => stored.push(index),
    );
    // Each frame was gathered in a pooled buffer, and both went back.
    expect(buffers.acquired).toBe(2);
    expect(buffers.out.size).toBe(0);
    expect(storedBytes).toBe(22);
    await new Promise((resolve) => setImmediate(resolve));
    expect(stored).toEqual([0, 1]);
    expect(encoded.map((frame) => frame.equals(body.subarray(0, frameBytes)))).toEqual([true, false]);
    expect(encoded[1].equals(body.subarray(frameBytes, 2 * frameBytes))).toBe(true);
    expect(mostAtOnce).toBe(1);
    for (const index of [0, 1]) {
      const start = index * frameBytes;
      const expected = Buffer.concat([Buffer.from('Z'), body.subarray(start, start + 10)]);
      expect(redis.values.get(keys.frame(jobId, index))!.equals(expected)).toBe(true);
      expect(redis.expiring.has(keys.frame(jobId, index))).toBe(true);
    }
    // A frame that arrives in one chunk is encoded from that chunk.
    const whole = await store.writeEncodedFrames(
      jobId,
      pieces(body.subarray(0, frameBytes), frameBytes),
      frameBytes,
      1,
      { encode, header: HEADER },
      buffers,
    );
    expect(whole).toBe(11);
    expect(buffers.acquired).toBe(2);
  });

  it('stores the frame that does not pay to encode, and every frame after it, as it is behind the header', async () => {
    const frameBytes = 1000;
    let calls = 0;
    // Frame 0 encodes well, frame 1 does not: frames 1 and 2 go as they are.
    const encode = async (frame: Buffer) =>
      calls++ === 0 ? Buffer.concat([Buffer.from('Z'), frame.subarray(0, 3)]) : null;
    const buffers = trackedBuffers();
    const stored: number[] = [];
    const all = Buffer.concat([body, body]).subarray(0, 3000);
    const storedBytes = await store.writeEncodedFrames(
      jobId,
      pieces(all, 300),
      frameBytes,
      3,
      { encode, header: HEADER },
      buffers,
      (index) => stored.push(index),
    );
    expect(calls).toBe(2);
    expect(storedBytes).toBe(4 + 2 * (HEADER(frameBytes).length + frameBytes));
    expect(
      redis.values.get(keys.frame(jobId, 0))!.equals(Buffer.concat([Buffer.from('Z'), all.subarray(0, 3)])),
    ).toBe(true);
    for (const index of [1, 2]) {
      const frame = all.subarray(index * frameBytes, (index + 1) * frameBytes);
      expect(
        redis.values.get(keys.frame(jobId, index))!.equals(Buffer.concat([HEADER(frameBytes), frame])),
      ).toBe(true);
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(stored).toEqual([0, 1, 2]);
    // Frames 1 and 2 were gathered before frame 1's encode said no: stored as they are, their buffers
    // are not given back (they may still be queued on a socket).
    expect(buffers.out.size).toBe(2);
    expect(buffers.acquired).toBe(3);
  });

  it('refuses a body of the wrong length for encoded frames and removes what it stored', async () => {
    const encode = { encode: (frame: Buffer) => Promise.resolve(frame.subarray(0, 4)), header: HEADER };
    const buffers = trackedBuffers();
    await expect(
      store.writeEncodedFrames(jobId, pieces(body.subarray(0, 1500), 500), 1000, 2, encode, buffers),
    ).rejects.toBeInstanceOf(BodyLengthError);
    await expect(
      store.writeEncodedFrames(jobId, pieces(body.subarray(0, 2500), 500), 1000, 2, encode, buffers),
    ).rejects.toBeInstanceOf(BodyLengthError);
    expect(redis.values.size).toBe(0);
    // A failed upload gives its buffers back too.
    expect(buffers.out.size).toBe(0);
  });

  it('writes a whole frame with a TTL in one command', async () => {
    await store.writeFrame(jobId, 4, body);
    expect(redis.values.get(keys.frame(jobId, 4))!.equals(body)).toBe(true);
    expect(redis.expiring.has(keys.frame(jobId, 4))).toBe(true);
  });
});
