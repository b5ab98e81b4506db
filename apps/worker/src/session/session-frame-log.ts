import type { SessionCommitResult, SessionFrameOutput } from '#cluster';

/** What the log needs from the stream store (StreamStore.commitSessionFrame, on a fail-fast connection). */
export interface SessionFrameStore {
  commitSessionFrame(streamId: string, output: SessionFrameOutput): Promise<SessionCommitResult>;
}

/** The stream's record refused the frame: the session must stop (moved, ended, out of order). */
export class SessionCommitRefused extends Error {
  constructor(readonly result: Exclude<SessionCommitResult, { status: 'appended' | 'duplicate' }>) {
    super(`session frame refused: ${result.status}`);
  }
}

/** Redis is away and the node holds as many unlogged outputs as it may: stop taking frames. */
export class SessionBacklogFull extends Error {}

export interface SessionLogListener {
  /** Every output of the stream up to `upTo` queued while Redis was away is in the log now. */
  onDurable(streamId: string, upTo: number): void;
  /** A queued output was refused when Redis came back (the stream moved meanwhile): drop the stream. */
  onRefused(streamId: string, error: SessionCommitRefused): void;
}

export interface SessionFrameLogOptions {
  /** Whether the connection can take a command now (else the output is queued without trying). */
  isReady(): boolean;
  /** Resolves when the connection is (or may be) ready again. */
  whenReady(): Promise<void>;
  /** Outputs (all streams together) queued at most while Redis is away. */
  maxQueuedFrames: number;
  maxQueuedBytes: number;
}

/** Between attempts while Redis seems up but does not answer. */
const RETRY_MS = 100;

interface StreamBacklog {
  pending: SessionFrameOutput[];
  flushing: boolean;
}

/**
 * Writes each live-session output to its stream's log (fenced: StreamStore.commitSessionFrame), one
 * round trip per frame, in frame order per stream. While Redis is away the outputs are queued on the
 * node instead (bounded) and the session goes on with `durable: false`; once Redis answers, each
 * stream's backlog is written in order and its session told `durable`. An answer (refusal) from Redis
 * is never queued: it ends the session.
 */
export class SessionFrameLog {
  private readonly backlogs = new Map<string, StreamBacklog>();
  private readonly tails = new Map<string, Promise<unknown>>();
  private queuedFrames = 0;
  private queuedBytes = 0;

  constructor(
    private readonly store: SessionFrameStore,
    private readonly options: SessionFrameLogOptions,
    private readonly listener: SessionLogListener,
  ) {}

  /** Outputs waiting for Redis, all streams. */
  get backlog(): number {
    return this.queuedFrames;
  }

  /**
   * Logs one output after the stream's earlier ones. Resolves true once it is in the log, false when it
   * was queued (Redis away). Rejects with SessionCommitRefused or SessionBacklogFull.
   */
  write(streamId: string, output: SessionFrameOutput): Promise<boolean> {
    const previous = this.tails.get(streamId) ?? Promise.resolve();
    const result = previous.then(() => this.writeInOrder(streamId, output));
    const tail = result.catch(() => undefined);
    this.tails.set(streamId, tail);
    void tail.then(() => {
      if (this.tails.get(streamId) === tail) this.tails.delete(streamId);
    });
    return result;
  }

  private async writeInOrder(streamId: string, output: SessionFrameOutput): Promise<boolean> {
    const backlog = this.backlogs.get(streamId);
    if (!backlog && this.options.isReady()) {
      let result: SessionCommitResult | null = null;
      try {
        result = await this.store.commitSessionFrame(streamId, output);
      } catch (error) {
        if (!isUnreached(error)) throw error;
      }
      if (result) {
        // A first attempt that finds its frame logged already: not ours (frames came another way).
        if (result.status === 'duplicate')
          throw new SessionCommitRefused({ status: 'out-of-order', frames: -1 });
        if (result.status !== 'appended') throw new SessionCommitRefused(result);
        return true;
      }
    }
    this.enqueue(streamId, output);
    return false;
  }

  private enqueue(streamId: string, output: SessionFrameOutput): void {
    if (
      this.queuedFrames >= this.options.maxQueuedFrames ||
      this.queuedBytes + output.data.length > this.options.maxQueuedBytes
    ) {
      throw new SessionBacklogFull(
        `Redis is away and this node holds ${this.queuedFrames} outputs not yet logged, as many as it may; try again later`,
      );
    }
    let backlog = this.backlogs.get(streamId);
    if (!backlog) {
      backlog = { pending: [], flushing: false };
      this.backlogs.set(streamId, backlog);
    }
    backlog.pending.push(output);
    this.queuedFrames++;
    this.queuedBytes += output.data.length;
    if (!backlog.flushing) void this.flush(streamId, backlog);
  }

  /** Writes the stream's backlog in order as soon as Redis answers; retries what did not reach it. */
  private async flush(streamId: string, backlog: StreamBacklog): Promise<void> {
    backlog.flushing = true;
    let last = -1;
    while (backlog.pending.length > 0) {
      await this.options.whenReady();
      const output = backlog.pending[0];
      let result: SessionCommitResult;
      try {
        result = await this.store.commitSessionFrame(streamId, output);
      } catch (error) {
        if (isUnreached(error)) {
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          continue;
        }
        result = { status: 'missing' };
      }
      // 'duplicate': an earlier attempt reached Redis but its answer did not come back.
      if (result.status === 'appended' || result.status === 'duplicate') {
        backlog.pending.shift();
        this.queuedFrames--;
        this.queuedBytes -= output.data.length;
        last = output.frame;
        continue;
      }
      for (const dropped of backlog.pending) {
        this.queuedFrames--;
        this.queuedBytes -= dropped.data.length;
      }
      backlog.pending = [];
      this.backlogs.delete(streamId);
      this.listener.onRefused(streamId, new SessionCommitRefused(result));
      return;
    }
    this.backlogs.delete(streamId);
    this.listener.onDurable(streamId, last);
  }
}

/** The command did not get an answer from Redis (as opposed to Redis refusing it). */
function isUnreached(error: unknown): boolean {
  return !(error instanceof Error && error.name === 'ReplyError');
}
