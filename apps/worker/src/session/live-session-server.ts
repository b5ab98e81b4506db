import type { IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import { LIVE_SESSION_CLOSE, type SessionTokenClaims, type StreamParams } from '#contracts';
import type { OutputStore, StreamRecord, StreamStore, TokenRejection } from '#cluster';
import { LiveHandBack, type LiveSession, type LiveStreamSequencer } from '../live/live-stream-sequencer.js';
import type { DataPortHandler, UpgradeDecision } from './data-port.js';
import { admit, parseSessionRequest, type Admission } from './session-admission.js';
import { maxFrameMessageBytes } from './session-frames.js';
import type { SessionFrameLog, SessionLogListener } from './session-frame-log.js';
import { StreamSession, compressionOf, frameSizeOf, type LoggedOutput } from './stream-session.js';

export interface LiveSessionServerDeps {
  nodeId: string;
  nodeName: string;
  window: number;
  verify(token: string | undefined): SessionTokenClaims | TokenRejection;
  /** On the sessions' fail-fast connection: a refusal instead of a wait while Redis is away. */
  streams: Pick<StreamStore, 'get' | 'readBefore'>;
  outputs: Pick<OutputStore, 'get'>;
  sequencer: Pick<LiveStreamSequencer, 'hold' | 'encodeFrame' | 'closeStream'>;
  startEncoder(params: StreamParams): Promise<LiveSession> | null;
  log(): SessionFrameLog;
  warn(message: string): void;
}

interface Accepted {
  admission: Extract<Admission, { ok: true }>;
  release: () => void;
}

/** A full node frees contexts as streams end or go idle: worth asking again after this. */
const AT_CAPACITY_RETRY_SECONDS = 10;
/** How long a replaced socket's frames in flight may take to settle before the new one starts. */
const REPLACE_WAIT_MS = 15_000;
const REPLAY_PAGE = 256;

/**
 * The sessions of a node's data port: the upgrade checks, one socket per stream (a newer one replaces
 * the older, 4409), the replay from the stream's log, and the drain (1012 once the stream moved).
 */
export class LiveSessionServer implements DataPortHandler<Accepted>, SessionLogListener {
  private readonly sessions = new Map<string, StreamSession>();
  private draining = false;

  constructor(private readonly deps: LiveSessionServerDeps) {}

  /** Streams with a session open here. */
  get openStreams(): string[] {
    return [...this.sessions.keys()];
  }

  health(): unknown {
    return { node: this.deps.nodeId, sessions: this.sessions.size, draining: this.draining };
  }

  async upgrade(
    request: IncomingMessage,
  ): Promise<
    | UpgradeDecision<Accepted>
    | { status: 400 | Extract<Admission, { ok: false }>['code']; message: string; retryAfterSeconds?: number }
    | null
  > {
    const parsed = parseSessionRequest(request.url ?? '/', request.headers.authorization);
    if (parsed === null) return null;
    if ('error' in parsed) return { status: 400, message: parsed.error };
    const admission = await admit(parsed, {
      nodeId: this.deps.nodeId,
      verify: (token) => this.deps.verify(token),
      record: (streamId) => this.deps.streams.get(streamId),
      draining: () => this.draining,
    });
    if (!admission.ok) {
      return {
        status: admission.code,
        message: admission.message,
        retryAfterSeconds: admission.retryAfterSeconds,
      };
    }
    let release: () => void;
    try {
      release = await this.deps.sequencer.hold(parsed.streamId);
    } catch (error) {
      if (!(error instanceof LiveHandBack)) throw error;
      return {
        status: LIVE_SESSION_CLOSE.atCapacity,
        message: `this node keeps as many live encoders as it can, all in use: ${error.message}`,
        retryAfterSeconds: AT_CAPACITY_RETRY_SECONDS,
      };
    }
    const { params } = admission.record;
    return {
      accept: { admission, release },
      // A little over a frame, so that a wrong size gets the session's own 4400 and message.
      maxPayload: maxFrameMessageBytes(frameSizeOf(params), compressionOf(params)) + 64 * 1024,
    };
  }

  abandon(accepted: Accepted): void {
    accepted.release();
  }

  open(ws: WebSocket, accepted: Accepted): void {
    void this.start(ws, accepted).catch((error: Error) => {
      this.deps.warn(`live session of stream ${accepted.admission.request.streamId}: ${error.message}`);
      ws.terminate();
    });
  }

  private async start(ws: WebSocket, { admission, release }: Accepted): Promise<void> {
    const { streamId, since } = admission.request;
    let record: StreamRecord | null = admission.record;
    const session = new StreamSession(
      ws,
      { streamId, params: record.params, epoch: admission.claims.epoch, since },
      {
        nodeId: this.deps.nodeId,
        nodeName: this.deps.nodeName,
        window: this.deps.window,
        encoder: this.deps.sequencer,
        startEncoder: (params) => this.deps.startEncoder(params),
        log: this.deps.log(),
        replay: (id, after, next) => this.replay(id, after, next),
        warn: (message) => this.deps.warn(message),
      },
      (closed) => {
        release();
        if (this.sessions.get(streamId) === closed) this.sessions.delete(streamId);
      },
    );
    const older = this.sessions.get(streamId);
    this.sessions.set(streamId, session);
    if (older) {
      older.fail(LIVE_SESSION_CLOSE.moved, 'replaced by a newer socket for this stream');
      // Its frames in flight are logged first, so that `ready` names the stream's next frame.
      await Promise.race([older.done, new Promise((resolve) => setTimeout(resolve, REPLACE_WAIT_MS))]);
      record = await this.deps.streams.get(streamId);
      if (
        !record ||
        record.state !== 'open' ||
        record.node !== this.deps.nodeId ||
        record.epoch !== admission.claims.epoch
      ) {
        return session.fail(
          !record
            ? LIVE_SESSION_CLOSE.unknownStream
            : record.state !== 'open'
              ? LIVE_SESSION_CLOSE.ended
              : LIVE_SESSION_CLOSE.moved,
          `stream ${streamId} changed while the older socket closed: ask the API again`,
        );
      }
    }
    if (!session.open) return;
    session.begin(record.frames);
  }

  /** The logged outputs of frames after `since` and before `nextFrame`, oldest first. */
  private async *replay(streamId: string, since: number, nextFrame: number): AsyncGenerator<LoggedOutput> {
    const wanted: { jobId: string; index: number; frame: number; keyframe: boolean; contentType: string }[] =
      [];
    let before: number | undefined;
    reading: for (;;) {
      const page = await this.deps.streams.readBefore(streamId, REPLAY_PAGE, before);
      for (const { event } of page) {
        if (event.type !== 'output' || event.frame === undefined) continue;
        if (event.frame <= since) break reading;
        if (event.frame < nextFrame) {
          wanted.push({
            jobId: event.jobId,
            index: event.index,
            frame: event.frame,
            keyframe: event.keyframe ?? false,
            contentType: event.contentType,
          });
        }
      }
      if (page.length < REPLAY_PAGE) break;
      before = page[page.length - 1].id;
    }
    for (const output of wanted.reverse()) {
      const data = await this.deps.outputs.get(output.jobId, output.index);
      if (!data) throw new Error(`the output of frame ${output.frame} is past its retention time`);
      yield { frame: output.frame, keyframe: output.keyframe, contentType: output.contentType, data };
    }
  }

  onDurable(streamId: string, upTo: number): void {
    this.sessions.get(streamId)?.markDurable(upTo);
  }

  onRefused(streamId: string): void {
    void this.deps.sequencer.closeStream(streamId);
    this.sessions
      .get(streamId)
      ?.fail(LIVE_SESSION_CLOSE.moved, `stream ${streamId} moved while Redis was away: ask the API again`);
  }

  /**
   * The drain: no new sessions; each open one stops taking frames and lets those it took settle, its
   * stream is handed to another node (`move`), then its socket is closed with 1012.
   */
  async drain(move: (streamId: string) => Promise<string | null>, settleMs: number): Promise<void> {
    this.draining = true;
    const sessions = [...this.sessions.values()];
    await Promise.race([
      Promise.all(sessions.map((session) => session.stopTaking())),
      new Promise((resolve) => setTimeout(resolve, settleMs)),
    ]);
    await Promise.all(
      sessions.map(async (session) => {
        const to = await move(session.streamId).catch((error: Error) => {
          this.deps.warn(`moving stream ${session.streamId} off this draining node: ${error.message}`);
          return null;
        });
        session.fail(
          LIVE_SESSION_CLOSE.draining,
          to
            ? `this node is draining; the stream moved to node ${to}: ask the API again`
            : 'this node is draining: ask the API again',
        );
      }),
    );
  }
}
