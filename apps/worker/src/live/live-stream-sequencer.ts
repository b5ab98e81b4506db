import type { EncodeJobData, JobTimings, OutputInfo, StreamEvent, StreamState } from '#contracts';
import type { LivePacket, RawLayout } from '#codecs';
import type { BufferPool, CommitResult } from '#cluster';
import {
  ExecutionCore,
  PermanentJobError,
  deleteJobInput,
  type EncodeJobIO,
  type EncodeRun,
  type EncodeStrategy,
  type Publisher,
  type UnitResult,
  type WorkUnit,
} from '../execution-core.js';

/** A running encoder context of one stream (a long-running ffmpeg). */
export interface LiveSession {
  readonly alive: boolean;
  readonly contentType: string;
  encode(
    frames: AsyncIterable<Buffer> | Buffer[],
    frameCount: number,
    options?: { signal?: AbortSignal },
  ): Promise<LivePacket[]>;
  /** encode() in two steps: `written` once the frames are in the encoder (never rejects), then the packets. */
  submit(frames: Buffer[], frameCount: number): { written: Promise<void>; packets: Promise<LivePacket[]> };
  close(): Promise<void>;
}

export interface LiveSessionFactory {
  /** Starts an encoder context for the stream's codec; null when this node cannot encode it. */
  start(data: EncodeJobData, layout: RawLayout, keyframeInterval: number): Promise<LiveSession> | null;
}

/** What the sequencer needs from the stream store. */
export interface LiveStreamLog {
  position(streamId: string): Promise<{ cursor: number; node: string | null; state: StreamState } | null>;
  commit(streamId: string, seq: number, events: StreamEvent[], pinnedNode?: string): Promise<CommitResult>;
}

/** The batch cannot run here now: hand it back to the queue (`forwardTo`: to that node's queue). */
export class LiveHandBack extends Error {
  constructor(
    message: string,
    readonly forwardTo: string | null = null,
  ) {
    super(message);
  }
}

interface StreamContext {
  session: LiveSession | null;
  /**
   * The stream-wide frame the encoder takes next: it encoded exactly the stream's frames before it (of
   * POST batches and of the data port's session alike), so either may go on with it.
   */
  next: number;
  lastUsedAt: number;
  turn: Promise<unknown>;
  busy: number;
  /** Counts against the node's capacity: from just before its session starts until it is closed. */
  holdsSlot: boolean;
}

export type LiveRunResult = UnitResult;

/** A stored packet: an output of the batch's job, with its keyframe flag for the stream's log. */
type LiveOutput = OutputInfo & { keyframe: boolean };

/**
 * The live half of a node: it sequences each stream's batches into the stream's encoder context (a
 * LiveSession: libs/codecs' LiveVideoSession, one ffmpeg). One context per stream pinned here, fed
 * batch after batch in seq order, so that single-frame batches give real inter-frame video. A batch is
 * encoded only when it is the next one the stream delivers (its seq is the stream's cursor) and the
 * stream is pinned to this node; a context is reused only when it encoded exactly the batches before
 * this one, else a new one starts (with a keyframe). That is what makes a move to another node
 * seamless: the new node starts at the first batch not yet delivered, and frames in flight are
 * re-encoded from Redis.
 *
 * A batch runs on the node's ExecutionCore like any job: the stream's encoder context is its strategy,
 * the stream's log (after the job's record) its publisher.
 */
export class LiveStreamSequencer {
  private readonly contexts = new Map<string, StreamContext>();
  private readonly core: ExecutionCore;

  constructor(
    private readonly nodeId: string,
    private readonly nodeName: string,
    private readonly storage: EncodeJobIO,
    private readonly streams: LiveStreamLog,
    private readonly sessions: LiveSessionFactory,
    private readonly now: () => number = Date.now,
    /** The most encoder contexts kept at once (--live-max-contexts). */
    private readonly capacity: number = Infinity,
    /** Frame buffers shared with the node's other work. */
    pool: BufferPool | null = null,
  ) {
    this.core = new ExecutionCore(nodeName, storage, pool, now);
  }

  /** Streams with a running encoder context here. */
  get activeStreams(): number {
    let count = 0;
    for (const context of this.contexts.values()) if (context.session?.alive) count++;
    return count;
  }

  run(data: EncodeJobData, attempt: number, signal?: AbortSignal): Promise<LiveRunResult> {
    const ref = data.stream;
    if (!ref) throw new PermanentJobError(`job ${data.jobId} is not a stream batch`);
    const context = this.contexts.get(ref.streamId) ?? this.newContext(ref.streamId);
    context.busy++;
    // One batch of a stream at a time, whatever the node's concurrency.
    const result = context.turn.then(() => this.encodeBatch(context, data, attempt, signal));
    context.turn = result
      .catch(() => undefined)
      .finally(() => {
        context.busy--;
        context.lastUsedAt = this.now();
      });
    return result;
  }

  private newContext(streamId: string): StreamContext {
    const context: StreamContext = {
      session: null,
      next: -1,
      lastUsedAt: this.now(),
      turn: Promise.resolve(),
      busy: 0,
      holdsSlot: false,
    };
    this.contexts.set(streamId, context);
    return context;
  }

  private async encodeBatch(
    context: StreamContext,
    data: EncodeJobData,
    attempt: number,
    signal?: AbortSignal,
  ): Promise<LiveRunResult> {
    const ref = data.stream!;
    const position = await this.streams.position(ref.streamId);
    if (!position)
      throw new PermanentJobError(`stream ${ref.streamId} is gone (older than the retention time)`);
    if (ref.seq < position.cursor) {
      // Delivered already (by this node before a retry, or by the node it moved from).
      await deleteJobInput(this.storage, data).catch(() => undefined);
      return { outputs: 0, skipped: true };
    }
    if (position.node !== this.nodeId) {
      throw new LiveHandBack(`stream ${ref.streamId} is pinned to node ${position.node}`, position.node);
    }
    if (ref.seq > position.cursor) {
      throw new LiveHandBack(`batch ${ref.seq} waits for batch ${position.cursor} of stream ${ref.streamId}`);
    }
    // Room for a new encoder is found (or the batch handed back) before the job is marked active.
    if (this.needsNewSession(context, ref.firstFrame)) await this.takeSlot(context, ref.streamId);
    const result = await this.core.run(
      { data, attempt, signal },
      this.contextStrategy(context),
      this.streamPublisher(context),
    );
    // Not active (finished elsewhere): the slot taken for a new encoder is not needed.
    if (result.skipped && !context.session) context.holdsSlot = false;
    return result;
  }

  /** The batch's frames through the stream's encoder context; its packets stored as the job's outputs. */
  private contextStrategy(context: StreamContext): EncodeStrategy<LiveOutput> {
    return {
      encode: async (run: EncodeRun) => {
        const packets = await run.timer.encode(() => this.encodeInContext(context, run));
        const contentType = context.session!.contentType;
        try {
          return await Promise.all(
            packets.map(async (packet, index) => ({
              ...(await run.store(index, contentType, packet.data)),
              keyframe: packet.keyframe,
            })),
          );
        } catch (error) {
          // The frames went through this context but the client may not get these packets: the retry
          // must not predict from them, so it starts a new context (a keyframe).
          await this.closeContext(run.data.stream!.streamId);
          throw error;
        }
      },
    };
  }

  /** Lists the packets on the job, hands them to the stream in one commit, then completes the job. */
  private streamPublisher(context: StreamContext): Publisher<LiveOutput> {
    return {
      publish: async (unit: WorkUnit, outputs: LiveOutput[], timings: JobTimings) => {
        const { data } = unit;
        const ref = data.stream!;
        let committed: CommitResult;
        try {
          committed = await this.deliver(data, outputs);
        } catch (error) {
          await this.closeContext(ref.streamId);
          throw error;
        }
        if (committed.status === 'appended') {
          context.next = ref.firstFrame + data.frames;
          if (committed.ended) await this.closeContext(ref.streamId);
        } else {
          // Someone else delivered this batch (or took the stream): this context's frames are not the
          // client's any more, and must not be referenced by the next batch.
          await this.closeContext(ref.streamId);
          if (committed.status === 'not-pinned') throw new LiveHandBack(`stream ${ref.streamId} moved away`);
        }
        await this.storage.complete(
          data.jobId,
          this.now(),
          timings,
          [],
          [{ type: 'completed', outputs: outputs.length }],
        );
        return { outputs: outputs.length };
      },
    };
  }

  /** Lists the stored packets as the job's outputs and hands them to the stream, in one commit. */
  private async deliver(data: EncodeJobData, outputs: LiveOutput[]): Promise<CommitResult> {
    const ref = data.stream!;
    await Promise.all(
      outputs.map(({ keyframe: _keyframe, ...info }) => this.storage.addOutput(data.jobId, info)),
    );
    const events: StreamEvent[] = [
      ...outputs.map((output): StreamEvent => ({
        type: 'output',
        seq: ref.seq,
        jobId: data.jobId,
        frame: ref.firstFrame + output.index,
        ...output,
      })),
      {
        type: 'batch',
        seq: ref.seq,
        jobId: data.jobId,
        frames: data.frames,
        outputs: outputs.length,
        node: this.nodeName,
      },
    ];
    return this.streams.commit(ref.streamId, ref.seq, events, this.nodeId);
  }

  private async encodeInContext(context: StreamContext, run: EncodeRun): Promise<LivePacket[]> {
    const { data } = run;
    const ref = data.stream!;
    if (this.needsNewSession(context, ref.firstFrame)) {
      await context.session?.close().catch(() => undefined);
      context.session = null;
      await this.takeSlot(context, ref.streamId);
      try {
        const starting = this.sessions.start(data, run.layout, ref.keyframeInterval ?? 300);
        if (!starting) throw new PermanentJobError(`node ${this.nodeName} cannot encode ${data.codec}`);
        context.session = await starting;
      } catch (error) {
        context.holdsSlot = false;
        throw error;
      }
      context.next = ref.firstFrame;
    }
    const session = context.session!;
    try {
      return await session.encode(run.frames, data.frames, { signal: run.signal });
    } catch (error) {
      await session.close().catch(() => undefined);
      context.session = null;
      context.holdsSlot = false;
      throw error;
    }
  }

  /** Whether `frame` needs a new encoder: none runs, or the one running did not encode just the frames before. */
  private needsNewSession(context: StreamContext, frame: number): boolean {
    return !context.session?.alive || context.next !== frame;
  }

  /**
   * A live session (the data port) keeps the stream's encoder context while its socket is open: it is
   * never the one closed to make room. Rejects with LiveHandBack when the node is at its capacity with
   * every context in use. The returned function lets go (the context stays, for a reconnect, until it
   * is idle for the idle timeout).
   */
  async hold(streamId: string): Promise<() => void> {
    const context = this.contexts.get(streamId) ?? this.newContext(streamId);
    context.busy++;
    try {
      await this.takeSlot(context, streamId);
    } catch (error) {
      context.busy--;
      throw error;
    }
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      context.busy--;
      context.lastUsedAt = this.now();
      if (!context.session && context.busy === 0) context.holdsSlot = false;
    };
  }

  /**
   * Encodes one frame of a live session (stream-wide number `frame`) in the stream's context, in turn
   * with its POST batches: with the running encoder when it encoded exactly the frames before, else
   * (or when `keyframe` is asked) with a new one, whose first packet is a keyframe.
   */
  encodeFrame(
    streamId: string,
    frame: number,
    input: Buffer | Promise<Buffer>,
    options: { start: () => Promise<LiveSession> | null; keyframe?: boolean },
  ): Promise<{ packet: LivePacket; contentType: string }> {
    const context = this.contexts.get(streamId) ?? this.newContext(streamId);
    context.busy++;
    // The turn ends once the frame is in the encoder, so that the next frame of the window is written
    // while this one encodes; its packet comes later, in order.
    const turn = context.turn.then(async () => {
      // A frame still being decompressed (off the event loop) is waited for in its turn.
      const raw = await input;
      if (options.keyframe || this.needsNewSession(context, frame)) {
        await context.session?.close().catch(() => undefined);
        context.session = null;
        await this.takeSlot(context, streamId);
        try {
          const starting = options.start();
          if (!starting) throw new PermanentJobError(`node ${this.nodeName} cannot encode this stream`);
          context.session = await starting;
        } catch (error) {
          context.holdsSlot = context.busy > 1;
          throw error;
        }
        context.next = frame;
      }
      const session = context.session!;
      const submitted = session.submit([raw], 1);
      context.next = frame + 1;
      await submitted.written;
      return { session, packets: submitted.packets };
    });
    const result = turn.then(async ({ session, packets }) => {
      try {
        const [packet] = await packets;
        return { packet, contentType: session.contentType };
      } catch (error) {
        await session.close().catch(() => undefined);
        if (context.session === session) {
          context.session = null;
          context.next = -1;
        }
        throw error;
      }
    });
    context.turn = turn.then(
      () => undefined,
      () => undefined,
    );
    void result
      .catch(() => undefined)
      .finally(() => {
        context.busy--;
        context.lastUsedAt = this.now();
      });
    return result;
  }

  /** Closes the stream's encoder (its frames are not the client's any more: fenced out, or failed). */
  closeStream(streamId: string): Promise<void> {
    return this.closeContext(streamId);
  }

  /**
   * A place for `context`'s new encoder within the node's capacity. At capacity, the context unused for
   * longest that has no batch waiting is closed (its stream's next batch starts again, with a keyframe,
   * wherever it is then); when every context is in use, the batch is handed back to wait. Decided
   * synchronously, so batches of several streams starting at once cannot pass the capacity together.
   */
  private async takeSlot(context: StreamContext, streamId: string): Promise<void> {
    if (context.holdsSlot) return;
    let held = 0;
    let victim: [string, StreamContext] | null = null;
    for (const entry of this.contexts) {
      const other = entry[1];
      if (!other.holdsSlot) continue;
      held++;
      if (other !== context && other.busy === 0 && (!victim || other.lastUsedAt < victim[1].lastUsedAt))
        victim = entry;
    }
    if (held >= this.capacity) {
      if (!victim) {
        throw new LiveHandBack(
          `node ${this.nodeName} keeps ${held} live encoder contexts, its capacity, all in use: stream ${streamId} waits`,
        );
      }
      this.contexts.delete(victim[0]);
      victim[1].holdsSlot = false;
      context.holdsSlot = true;
      await victim[1].session?.close().catch(() => undefined);
      return;
    }
    context.holdsSlot = true;
  }

  private async closeContext(streamId: string): Promise<void> {
    const context = this.contexts.get(streamId);
    if (!context) return;
    const session = context.session;
    context.session = null;
    context.next = -1;
    context.holdsSlot = false;
    await session?.close().catch(() => undefined);
  }

  /** Closes the contexts that had no batch for `idleMs`, or whose stream ended; returns how many. */
  async closeIdle(idleMs: number): Promise<number> {
    let closed = 0;
    const now = this.now();
    for (const [streamId, context] of this.contexts) {
      if (context.busy > 0) continue;
      if (now - context.lastUsedAt < idleMs && (await this.streams.position(streamId))?.state === 'open')
        continue;
      this.contexts.delete(streamId);
      context.holdsSlot = false;
      if (context.session) closed++;
      await context.session?.close().catch(() => undefined);
    }
    return closed;
  }

  async closeAll(): Promise<void> {
    const sessions = [...this.contexts.values()].map((context) => context.session);
    this.contexts.clear();
    await Promise.all(sessions.map((session) => session?.close().catch(() => undefined)));
  }
}
