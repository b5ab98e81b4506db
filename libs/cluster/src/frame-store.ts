import type { RedisClient } from './redis-connection.js';
import type { KeySpace } from './keys.js';
import { sendDirect } from './zero-copy-command.js';
import type { BufferPool } from './buffer-pool.js';

/** The upload did not match what its parameters declared. */
export class BodyLengthError extends Error {
  constructor(
    readonly expected: number,
    readonly received: number,
  ) {
    super(
      received < expected
        ? `body is ${received} bytes but the parameters declare ${expected} (frames * width * height * bytes per pixel)`
        : `body is longer than the ${expected} bytes the parameters declare (frames * width * height * bytes per pixel)`,
    );
  }
}

/** A body of unknown length went past the most bytes accepted. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`body is larger than the limit of ${limit} bytes`);
  }
}

export interface FrameStoreOptions {
  ttlSeconds: number;
  /** Upload bytes sent to Redis but not yet acknowledged; the request is paused beyond this. */
  maxInFlightBytes: number;
  /** Size of the GETRANGE pieces a node reads a frame with. */
  readPieceBytes: number;
  /** Values up to this size are allocated whole when their first byte arrives (see `write`). */
  preallocateMaxBytes: number;
  /** Per-frame values of variable length up to this size are held until whole, then sent in one SET. */
  gatherMaxBytes: number;
  /** How long a reader waits for the next frame of an upload still arriving, without progress. */
  arrivalWaitMs: number;
}

export const DEFAULT_FRAME_STORE_OPTIONS: FrameStoreOptions = {
  ttlSeconds: 3600,
  maxInFlightBytes: 8 * 1024 * 1024,
  readPieceBytes: 512 * 1024,
  preallocateMaxBytes: 1024 * 1024,
  gatherMaxBytes: 4 * 1024 * 1024,
  arrivalWaitMs: 10_000,
};

/** Keys removed per UNLINK: one command for a job's input, however many frames (600 at most by default). */
const UNLINK_BATCH = 1024;

/** Between two looks at an arriving upload's `landed` count, doubling up to the most. */
const ARRIVAL_POLL_MS = { first: 5, most: 100 };

/**
 * Frames live in Redis as one binary string per frame (never JSON). Uploads are streamed into them
 * chunk by chunk, as they arrive, so the API holds at most `maxInFlightBytes` of a request, and large
 * values are read back in pieces into a reused buffer (whole-value GETs of 8 MB are slow on both ends).
 */
export class FrameStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly options: FrameStoreOptions = DEFAULT_FRAME_STORE_OPTIONS,
  ) {}

  /**
   * Writes `count` values of `valueBytes` each (frames, or chunks of a compressed upload) from `body`,
   * which must hold exactly `totalBytes` (the last value is shorter when `totalBytes` is not a multiple
   * of `valueBytes`). Resolves with the number of values. On any failure the keys written so far are
   * removed.
   */
  async writeStream(
    body: AsyncIterable<Buffer>,
    keyOf: (index: number) => string,
    valueBytes: number,
    totalBytes: number,
  ): Promise<number> {
    return (await this.write(body, keyOf, valueBytes, totalBytes, true)).values;
  }

  /**
   * Writes a body of unknown length (a compressed upload without Content-Length) into values of
   * `valueBytes` each, the last one shorter; fails with BodyTooLargeError past `maxBytes`. On any
   * failure the keys written so far are removed.
   */
  writeUpTo(
    body: AsyncIterable<Buffer>,
    keyOf: (index: number) => string,
    valueBytes: number,
    maxBytes: number,
  ): Promise<{ values: number; bytes: number }> {
    return this.write(body, keyOf, valueBytes, maxBytes, false);
  }

  private write(
    body: AsyncIterable<Buffer>,
    keyOf: (index: number) => string,
    valueBytes: number,
    totalBytes: number,
    exact: boolean,
  ): Promise<{ values: number; bytes: number }> {
    // A body of unknown length always grows: its last value must not be padded.
    return this.writePieces(fixedSizePieces(body, valueBytes, totalBytes, exact), keyOf, exact);
  }

  /**
   * Writes values piece by piece as the pieces arrive (each piece's value is `valueBytes` long, known
   * from its first piece on when `sized`), at most `maxInFlightBytes` unacknowledged. Resolves with
   * the number of values and bytes written; on any failure the keys written so far are removed.
   */
  async writePieces(
    pieces: AsyncIterable<ValuePiece>,
    keyOf: (index: number) => string,
    sized = true,
    gather = false,
    onValueStored?: (index: number) => void,
  ): Promise<{ values: number; bytes: number }> {
    let received = 0;
    let gathered: Buffer[] = [];
    let gatheredBytes = 0;
    let values = 0;
    const inFlight = new Set<Promise<unknown>>();
    let inFlightBytes = 0;
    let failure: unknown;
    let last: Promise<unknown> = Promise.resolve();
    const track = (promise: Promise<unknown>, bytes: number) => {
      last = promise;
      inFlightBytes += bytes;
      const tracked = promise.then(
        () => undefined,
        (error: unknown) => {
          failure ??= error;
        },
      );
      inFlight.add(tracked);
      void tracked.finally(() => {
        inFlight.delete(tracked);
        inFlightBytes -= bytes;
      });
    };
    try {
      for await (const { index, valueBytes, offset, data } of pieces) {
        if (failure) throw failure;
        const key = keyOf(index);
        values = Math.max(values, index + 1);
        if (gather && sized && valueBytes <= this.options.gatherMaxBytes) {
          // Held (views of the request's chunks, no copy) until whole, then one SET: one command
          // and one AOF entry per frame instead of one per HTTP chunk.
          if (offset === 0) [gathered, gatheredBytes] = [[], 0];
          gathered.push(data);
          gatheredBytes += data.length;
          if (gatheredBytes === valueBytes) {
            track(sendDirect(this.redis, 'set', [key, gathered, 'EX', this.options.ttlSeconds]), valueBytes);
            [gathered, gatheredBytes] = [[], 0];
          }
        } else if (offset === 0 && data.length === valueBytes) {
          // Whole in one piece (a small frame): one command instead of three.
          track(sendDirect(this.redis, 'set', [key, data, 'EX', this.options.ttlSeconds]), data.length);
        } else {
          // A value is allocated whole, once, only when that reserves no more than the request has
          // already sent (or little): a client that declares a huge body and sends a byte must not
          // make Redis hold the whole of it. Otherwise it grows with the bytes that arrive, which
          // Redis does 1 MiB at a time (README, "Data path": slower for 4K and 8K frames, and the
          // value ends in a larger allocation).
          if (
            offset === 0 &&
            sized &&
            (valueBytes <= this.options.preallocateMaxBytes || valueBytes <= received)
          )
            track(sendDirect(this.redis, 'setrange', [key, valueBytes - 1, '\0']), 0);
          track(sendDirect(this.redis, 'setrange', [key, offset, data]), data.length);
          // After the command that created the key (commands on one key keep their order).
          if (offset === 0) track(this.redis.expire(key, this.options.ttlSeconds), 0);
        }
        received += data.length;
        // One connection answers in order: once the value's last command is answered, all of it is stored.
        if (onValueStored && offset + data.length === valueBytes)
          last.then(
            () => onValueStored(index),
            () => undefined,
          );
        while (inFlightBytes > this.options.maxInFlightBytes && inFlight.size > 0)
          await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
      return { values, bytes: received };
    } catch (error) {
      await Promise.all(inFlight);
      await this.deleteKeys(Array.from({ length: values }, (_, index) => keyOf(index))).catch(
        () => undefined,
      );
      throw error;
    }
  }

  writeFrames(
    jobId: string,
    body: AsyncIterable<Buffer>,
    frameBytes: number,
    frames: number,
    onFrameStored?: (index: number) => void,
  ): Promise<number> {
    if (!onFrameStored)
      return this.writeStream(
        body,
        (index) => this.keys.frame(jobId, index),
        frameBytes,
        frameBytes * frames,
      );
    const pieces = fixedSizePieces(body, frameBytes, frameBytes * frames, true);
    return this.writePieces(
      pieces,
      (index) => this.keys.frame(jobId, index),
      true,
      false,
      onFrameStored,
    ).then(({ values }) => values);
  }

  /**
   * Stores raw frames as the values `encoding` makes of each whole frame (an LZ4 block, for a node to
   * decompress; or the frame behind a header once encoding does not pay), checking the body's length
   * as `writeFrames` does; resolves with the bytes stored. A
   * frame is gathered into one of two buffers from `buffers` (no copy when it arrives in one chunk), and
   * encoded while the next one arrives; at most two frames are held, and both go back to `buffers`.
   */
  async writeEncodedFrames(
    jobId: string,
    body: AsyncIterable<Buffer>,
    frameBytes: number,
    frames: number,
    encoding: FrameEncoding,
    buffers: FrameBufferSource,
    onFrameStored?: (index: number) => void,
  ): Promise<number> {
    const raw = fixedSizePieces(body, frameBytes, frameBytes * frames, true);
    return this.writeFrameValues(jobId, encodedFrames(raw, frameBytes, encoding, buffers), onFrameStored);
  }

  /** Tells readers of an arriving upload that its first `count` frames are stored whole. */
  async markLanded(jobId: string, count: number): Promise<void> {
    await this.redis.set(this.keys.landed(jobId), String(count), 'EX', this.options.ttlSeconds);
  }

  /**
   * Waits until frame `index` of an arriving upload is stored whole; FrameNotArrivedError when the
   * `landed` count has not moved for `arrivalWaitMs` (the upload stalled, or its API went away).
   */
  private async waitForFrame(jobId: string, index: number): Promise<void> {
    let seen = -1;
    let movedAt = Date.now();
    let delay = ARRIVAL_POLL_MS.first;
    for (;;) {
      const landed = Number((await this.redis.get(this.keys.landed(jobId))) ?? 0);
      if (landed > index) return;
      if (landed !== seen) [seen, movedAt] = [landed, Date.now()];
      if (Date.now() - movedAt >= this.options.arrivalWaitMs)
        throw new FrameNotArrivedError(this.keys.frame(jobId, index), this.options.arrivalWaitMs);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, ARRIVAL_POLL_MS.most);
    }
  }

  /**
   * Stores a job's per-frame values of variable length (an `lz4-block` upload's blocks) as their
   * pieces arrive, under the frame keys; resolves with the bytes stored.
   */
  async writeFrameValues(
    jobId: string,
    pieces: AsyncIterable<ValuePiece>,
    onFrameStored?: (index: number) => void,
  ): Promise<number> {
    const keyOf = (index: number) => this.keys.frame(jobId, index);
    return (await this.writePieces(pieces, keyOf, true, true, onFrameStored)).bytes;
  }

  /** Stores one whole frame (decoded on the API, e.g. from an uploaded image) in a single command. */
  async writeFrame(jobId: string, index: number, frame: Buffer): Promise<void> {
    await sendDirect(this.redis, 'set', [
      this.keys.frame(jobId, index),
      frame,
      'EX',
      this.options.ttlSeconds,
    ]);
  }

  /**
   * Stores a compressed upload as it arrives, in values of `chunkBytes` (the last one shorter), to be
   * decompressed on a node: exactly `length` bytes when the length is known (Content-Length), else
   * anything up to `maxBytes` (BodyTooLargeError beyond). Resolves with the bytes stored.
   */
  async writeInputChunks(
    jobId: string,
    body: AsyncIterable<Buffer>,
    chunkBytes: number,
    length: number | null,
    maxBytes: number,
  ): Promise<number> {
    const keyOf = (index: number) => this.keys.inputChunk(jobId, index);
    if (length === null) return (await this.writeUpTo(body, keyOf, chunkBytes, maxBytes)).bytes;
    if (length > maxBytes) throw new BodyTooLargeError(maxBytes);
    await this.writeStream(body, keyOf, chunkBytes, length);
    return length;
  }

  /** Reads one stored value into `target` (which must have exactly its length), in pipelined pieces. */
  async readInto(key: string, target: Buffer): Promise<void> {
    const piece = this.options.readPieceBytes;
    const reads: Promise<void>[] = [];
    for (let start = 0; start < target.length; start += piece) {
      const end = Math.min(start + piece, target.length) - 1;
      reads.push(
        this.redis.getrangeBuffer(key, start, end).then((part) => {
          if (part.length !== end - start + 1) throw new MissingFrameError(key);
          part.copy(target, start);
        }),
      );
    }
    await Promise.all(reads);
  }

  /**
   * Yields each frame of a job in order. With a `pool`, a frame's buffer goes back to it as soon as the
   * consumer asks for the next one, so the consumer must be done with it by then (sharp is, and so is
   * FfmpegChild, whose stdin writes resolve once the pipe has taken the bytes; a stream `pipe()`d into
   * ffmpeg is not, as it reads ahead: give that no pool, so that each frame is its own buffer).
   */
  async *readFrames(
    jobId: string,
    frameBytes: number,
    frames: number,
    pool: BufferPool | null,
    arriving = false,
  ): AsyncGenerator<Buffer> {
    let next: Promise<Buffer> | undefined;
    const release = (buffer: Buffer) => pool?.release(buffer);
    const load = async (index: number) => {
      if (arriving) await this.waitForFrame(jobId, index);
      const buffer = pool ? pool.acquire(frameBytes) : Buffer.allocUnsafeSlow(frameBytes);
      try {
        await this.readInto(this.keys.frame(jobId, index), buffer);
        return buffer;
      } catch (error) {
        release(buffer);
        throw error;
      }
    };
    let current: Buffer | undefined;
    try {
      for (let index = 0; index < frames; index++) {
        current = await (next ?? load(index));
        // Prefetch the next frame while the consumer encodes this one.
        next = index + 1 < frames ? load(index + 1) : undefined;
        next?.catch(() => undefined);
        yield current;
        release(current);
        current = undefined;
      }
    } finally {
      if (current) release(current);
      if (next) await next.then(release).catch(() => undefined);
    }
  }

  /**
   * Yields each frame value of a job whole, in order (one GET each, so each arrives in the one buffer
   * the reply is read into), reading the next one while the consumer works on the current one.
   */
  async *readFrameValues(jobId: string, frames: number, arriving = false): AsyncGenerator<Buffer> {
    const load = async (index: number) => {
      if (arriving) await this.waitForFrame(jobId, index);
      const key = this.keys.frame(jobId, index);
      const value = await this.redis.getBuffer(key);
      if (value === null) throw new MissingFrameError(key);
      return value;
    };
    yield* prefetched(frames, load);
  }

  /**
   * Yields the chunks of a compressed upload in order (`storedBytes` in all, `chunkBytes` each, the
   * last shorter), reading the next one while the consumer works on the current one.
   */
  async *readInputChunks(jobId: string, storedBytes: number, chunkBytes: number): AsyncGenerator<Buffer> {
    const count = Math.ceil(storedBytes / chunkBytes);
    const load = async (index: number) => {
      const buffer = Buffer.allocUnsafe(Math.min(chunkBytes, storedBytes - index * chunkBytes));
      await this.readInto(this.keys.inputChunk(jobId, index), buffer);
      return buffer;
    };
    yield* prefetched(count, load);
  }

  async deleteInputChunks(jobId: string, chunks: number): Promise<void> {
    await this.deleteKeys(Array.from({ length: chunks }, (_, index) => this.keys.inputChunk(jobId, index)));
  }

  async deleteFrames(jobId: string, frames: number): Promise<void> {
    await this.deleteKeys([
      ...Array.from({ length: frames }, (_, index) => this.keys.frame(jobId, index)),
      this.keys.landed(jobId),
    ]);
  }

  /** Removes keys of one job (its frames, its input chunks), which share the job's hash slot. */
  async deleteKeys(keys: string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += UNLINK_BATCH)
      await this.redis.unlink(...keys.slice(start, start + UNLINK_BATCH));
  }
}

/** A piece of one stored value: `data` goes at `offset` of value `index`, which is `valueBytes` long. */
export interface ValuePiece {
  index: number;
  valueBytes: number;
  offset: number;
  data: Buffer;
}

/** `load(0)` .. `load(count - 1)` in order, each next one loading while the consumer works on the current. */
async function* prefetched(count: number, load: (index: number) => Promise<Buffer>): AsyncGenerator<Buffer> {
  let next: Promise<Buffer> | undefined;
  try {
    for (let index = 0; index < count; index++) {
      const current = await (next ?? load(index));
      next = index + 1 < count ? load(index + 1) : undefined;
      next?.catch(() => undefined);
      yield current;
    }
  } finally {
    await next?.catch(() => undefined);
  }
}

/**
 * Cuts a body into the pieces of values of `valueBytes` each (the last one shorter when `totalBytes`
 * is not a multiple), without copying; fails once the body passes `totalBytes` (BodyLengthError when
 * it must be `exact`ly that long, and when it ends short; BodyTooLargeError otherwise).
 */
async function* fixedSizePieces(
  body: AsyncIterable<Buffer>,
  valueBytes: number,
  totalBytes: number,
  exact: boolean,
): AsyncGenerator<ValuePiece> {
  let received = 0;
  for await (const chunk of body) {
    if (received + chunk.length > totalBytes) {
      throw exact
        ? new BodyLengthError(totalBytes, received + chunk.length)
        : new BodyTooLargeError(totalBytes);
    }
    let at = 0;
    while (at < chunk.length) {
      const index = Math.floor(received / valueBytes);
      const offset = received % valueBytes;
      const size = Math.min(valueBytes, totalBytes - index * valueBytes);
      const take = Math.min(size - offset, chunk.length - at);
      yield { index, valueBytes: size, offset, data: chunk.subarray(at, at + take) };
      at += take;
      received += take;
    }
  }
  if (exact && received !== totalBytes) throw new BodyLengthError(totalBytes, received);
}

/**
 * How raw frames become stored values: `encode` makes one whole frame's value, or answers null when
 * encoding does not pay for that upload; then that frame and the ones after it are stored as they are,
 * behind `header(frameBytes)`, which makes them values of the same form (an LZ4 block of literals).
 */
export interface FrameEncoding {
  encode(frame: Buffer): Promise<Buffer | null>;
  header(frameBytes: number): Buffer;
}

/**
 * Whole frames out of the pieces of fixed-size frames, each encoded into one value. Frame n + 1 is
 * gathered while frame n encodes; a gathering buffer goes back to `buffers` once its frame is encoded
 * (the next frame, or another upload, reuses it: no fresh frame-sized allocation per frame). Once an
 * encode does not pay, the rest of the upload passes through as it arrives, behind the header.
 */
async function* encodedFrames(
  pieces: AsyncIterable<ValuePiece>,
  frameBytes: number,
  encoding: FrameEncoding,
  buffers: FrameBufferSource,
): AsyncGenerator<ValuePiece> {
  const header = encoding.header(frameBytes);
  const asIs = (index: number, frame: Buffer): ValuePiece[] => [
    { index, valueBytes: header.length + frameBytes, offset: 0, data: header },
    { index, valueBytes: header.length + frameBytes, offset: header.length, data: frame },
  ];
  let passThrough = false;
  let filling: Buffer | undefined;
  let pending: { index: number; value: Promise<Buffer | null>; frame: Buffer; pooled: boolean } | undefined;
  // A frame stored as it is may still be in a socket's queue once its value is sent: its buffer is
  // not given back to the pool (it is garbage once written).
  const finish = async (frame: NonNullable<typeof pending>): Promise<ValuePiece[]> => {
    const value = await frame.value;
    if (value === null) {
      passThrough = true;
      return asIs(frame.index, frame.frame);
    }
    if (frame.pooled) buffers.release(frame.frame);
    return [{ index: frame.index, valueBytes: value.length, offset: 0, data: value }];
  };
  try {
    for await (const { index, offset, data } of pieces) {
      if (passThrough) {
        if (offset === 0) yield asIs(index, data)[0];
        yield { index, valueBytes: header.length + frameBytes, offset: header.length + offset, data };
        continue;
      }
      let whole = data;
      let pooled = false;
      if (offset !== 0 || data.length !== frameBytes) {
        filling ??= buffers.acquire(frameBytes);
        data.copy(filling, offset);
        if (offset + data.length < frameBytes) continue;
        [whole, pooled, filling] = [filling, true, undefined];
      }
      if (pending) {
        const done = pending;
        pending = undefined;
        yield* await finish(done);
      }
      if (passThrough) {
        // Gathered already, before its predecessor turned out not to pay.
        yield* asIs(index, whole);
        continue;
      }
      pending = { index, value: encoding.encode(whole), frame: whole, pooled };
      // Awaited in turn; until then a failure must not go unhandled if the body fails first.
      pending.value.catch(() => undefined);
    }
    if (pending) {
      const done = pending;
      pending = undefined;
      yield* await finish(done);
    }
  } finally {
    // A frame still encoding reads its buffer: whoever reuses buffers must not get it back before.
    if (pending) {
      await pending.value.catch(() => undefined);
      if (pending.pooled) buffers.release(pending.frame);
    }
    if (filling) buffers.release(filling);
  }
}

/** Where frame-sized buffers come from and go back to (a BufferPool). */
export type FrameBufferSource = Pick<BufferPool, 'acquire' | 'release'>;

/** A frame expired or was removed before a node got to it. */
export class MissingFrameError extends Error {
  constructor(readonly key: string) {
    super(`input data ${key} is gone (expired before it was encoded?)`);
  }
}

/** A frame of an upload still arriving did not come in time. */
export class FrameNotArrivedError extends MissingFrameError {
  constructor(key: string, waitedMs: number) {
    super(key);
    this.message = `input data ${key} did not arrive: the upload made no progress for ${waitedMs} ms`;
  }
}
