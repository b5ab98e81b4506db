import type WebSocket from 'ws';
import {
  LIVE_SESSION_CLOSE,
  LIVE_SESSION_PING_MS,
  LIVE_SESSION_SILENCE_MS,
  type LiveSessionCloseCode,
  type LiveSessionServerMessage,
  type StreamParams,
} from '#contracts';
import { frameBytes, type LivePacket } from '#codecs';
import type { LiveSession } from '../live/live-stream-sequencer.js';
import { BadFrameError, checkFrame, frameOf, type FrameCompression } from './session-frames.js';
import { SessionBacklogFull, SessionCommitRefused, type SessionFrameLog } from './session-frame-log.js';

/** What a session needs of the node's live encoding (the LiveStreamSequencer: one context per stream). */
export interface SessionEncoder {
  encodeFrame(
    streamId: string,
    frame: number,
    input: Buffer | Promise<Buffer>,
    options: { start: () => Promise<LiveSession> | null; keyframe?: boolean },
  ): Promise<{ packet: LivePacket; contentType: string }>;
  closeStream(streamId: string): Promise<void>;
}

export interface LoggedOutput {
  frame: number;
  keyframe: boolean;
  contentType: string;
  data: Buffer;
}

export interface StreamSessionDeps {
  nodeId: string;
  nodeName: string;
  window: number;
  encoder: SessionEncoder;
  /** Starts an encoder for the stream (null: this node cannot encode its codec). */
  startEncoder(params: StreamParams): Promise<LiveSession> | null;
  log: SessionFrameLog;
  /** The logged outputs of frames since < frame < nextFrame, in order. */
  replay(streamId: string, since: number, nextFrame: number): AsyncIterable<LoggedOutput>;
  warn(message: string): void;
}

export interface SessionStart {
  streamId: string;
  params: StreamParams;
  epoch: number;
  since: number;
}

/** Outputs waiting in the socket's send buffer past this: the client does not read (4408). */
export const SLOW_READER_BYTES = 4 * 1024 * 1024;
/** A peer that does not answer the close handshake within this is cut off. */
const CLOSE_GRACE_MS = 10_000;
/** A close reason is at most 123 bytes. */
const MAX_REASON_CHARS = 120;

export function frameSizeOf(params: StreamParams): number {
  return frameBytes({ width: params.width, height: params.height, format: params.format });
}

export function compressionOf(params: StreamParams): FrameCompression {
  return (params as StreamParams & { compression?: string }).compression === 'lz4' ? 'lz4' : 'none';
}

/**
 * One open session socket (API.md, "Live sessions"): `ready`, the replay of logged outputs the client
 * lacks, then frames in and, for each, exactly one output (a text header then the packet), each logged
 * before it is sent. Frames are numbered from `nextFrame`; at most `window` wait for their output.
 */
export class StreamSession {
  private nextFrame = 0;
  private inFlight = 0;
  private ready = false;
  private keyframeNext = false;
  private closed = false;
  private taking = true;
  /** Sends go out one after another, in frame order: the replay first, then each frame's output. */
  private sending: Promise<void> = Promise.resolve();
  private lastHeard = Date.now();
  private readonly pinger: NodeJS.Timeout;
  private readonly frameSize: number;
  private readonly compression: FrameCompression;
  private settled!: () => void;
  /** Resolves once the socket closed and every frame it took is settled (logged or failed). */
  readonly done: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    private readonly start: SessionStart,
    private readonly deps: StreamSessionDeps,
    private readonly onClosed: (session: StreamSession) => void,
  ) {
    this.frameSize = frameSizeOf(start.params);
    this.compression = compressionOf(start.params);
    this.done = new Promise((resolve) => (this.settled = resolve));
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('pong', () => (this.lastHeard = Date.now()));
    ws.on('close', () => this.onSocketClosed());
    ws.on('error', () => undefined); // a reset socket closes; nothing to add
    this.pinger = setInterval(() => this.ping(), LIVE_SESSION_PING_MS);
  }

  get streamId(): string {
    return this.start.streamId;
  }

  get open(): boolean {
    return !this.closed;
  }

  /** Sends `ready` (frames are taken from `nextFrame` on), then queues the replay of what the client lacks. */
  begin(nextFrame: number): void {
    this.nextFrame = nextFrame;
    this.sendText({
      type: 'ready',
      node: this.deps.nodeId,
      nextFrame: this.nextFrame,
      window: this.deps.window,
    });
    this.ready = true;
    const { streamId, since } = this.start;
    if (since + 1 < nextFrame) {
      this.sending = this.sending.then(async () => {
        for await (const output of this.deps.replay(streamId, since, nextFrame)) {
          if (this.closed) return;
          this.sendOutput(output, true);
        }
      });
      this.sending = this.sending.catch((error: Error) =>
        this.fail(LIVE_SESSION_CLOSE.tryAgain, `replay failed: ${error.message}`),
      );
    }
  }

  /** Sends an `error` message saying why, then closes with `code`. */
  fail(code: LiveSessionCloseCode, message: string): void {
    if (this.closed) return;
    this.taking = false;
    if (this.ws.readyState === this.ws.OPEN) {
      this.sendText({ type: 'error', message });
      this.ws.close(code, message.slice(0, MAX_REASON_CHARS));
      // A peer that does not answer the close handshake is cut off.
      setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
    }
    this.onSocketClosed();
  }

  /** Takes no more frames (drain): resolves once those taken are settled. */
  async stopTaking(): Promise<void> {
    this.taking = false;
    await this.sending.catch(() => undefined);
  }

  /** Outputs queued while Redis was away are in the log now, up to frame `upTo`. */
  markDurable(upTo: number): void {
    // After the outputs already on their way: the mark never comes before an output it covers.
    this.sending = this.sending.then(() => {
      if (!this.closed) this.sendText({ type: 'durable', upTo });
    });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.lastHeard = Date.now();
    if (this.closed) return;
    if (!isBinary) return this.onText(data);
    if (!this.taking) return; // draining: the client re-sends it to the next node
    if (!this.ready) return this.fail(LIVE_SESSION_CLOSE.badMessage, 'a frame came before `ready`');
    if (this.inFlight >= this.deps.window) {
      return this.fail(
        LIVE_SESSION_CLOSE.badMessage,
        `more than ${this.deps.window} frames in flight (the window): wait for an output before sending more`,
      );
    }
    try {
      checkFrame(data, this.frameSize, this.compression);
    } catch (error) {
      if (!(error instanceof BadFrameError)) throw error;
      return this.fail(LIVE_SESSION_CLOSE.badMessage, error.message);
    }
    this.takeFrame(this.compression === 'none' ? data : frameOf(data, this.frameSize, this.compression));
  }

  private onText(data: Buffer): void {
    let message: unknown;
    try {
      message = JSON.parse(data.toString('utf8'));
    } catch {
      return this.fail(
        LIVE_SESSION_CLOSE.badMessage,
        'a text message must be JSON ({"type":"keyframe"}); frames are binary',
      );
    }
    if ((message as { type?: unknown } | null)?.type === 'keyframe') {
      this.keyframeNext = true;
      return;
    }
    this.fail(
      LIVE_SESSION_CLOSE.badMessage,
      'the only text message a client sends is {"type":"keyframe"}; frames are binary',
    );
  }

  private takeFrame(input: Buffer | Promise<Buffer>): void {
    // Awaited in the encoder's turn; a corrupt block is reported there, not as an unhandled rejection.
    if (input instanceof Promise) input.catch(() => undefined);
    const { streamId, params, epoch } = this.start;
    const frame = this.nextFrame++;
    this.inFlight++;
    const keyframe = this.keyframeNext;
    this.keyframeNext = false;
    const encoded = this.deps.encoder.encodeFrame(streamId, frame, input, {
      start: () => this.deps.startEncoder(params),
      keyframe,
    });
    // Issued as soon as the packet is out, in frame order (the encoder is serial): one round trip each.
    const logged = encoded.then(({ packet, contentType }) =>
      this.deps.log.write(streamId, {
        node: this.deps.nodeId,
        epoch,
        nodeName: this.deps.nodeName,
        frame,
        keyframe: packet.keyframe,
        contentType,
        data: packet.data,
      }),
    );
    logged.catch(() => undefined);
    this.sending = this.sending.then(async () => {
      try {
        const { packet, contentType } = await encoded;
        const durable = await logged;
        this.inFlight--;
        if (this.closed) return;
        this.sendOutput({ frame, keyframe: packet.keyframe, contentType, data: packet.data }, durable);
      } catch (error) {
        this.onFrameFailed(error);
      }
    });
  }

  private onFrameFailed(error: unknown): void {
    const { streamId } = this.start;
    if (error instanceof SessionCommitRefused) {
      const { result } = error;
      if (result.status === 'moved' || result.status === 'out-of-order') {
        // Fenced out: this node's encoder state is not the stream's any more.
        void this.deps.encoder.closeStream(streamId);
        return this.fail(
          LIVE_SESSION_CLOSE.moved,
          result.status === 'moved'
            ? `stream ${streamId} moved to another node: ask the API again`
            : `frames reached stream ${streamId} another way: reconnect for its next frame`,
        );
      }
      void this.deps.encoder.closeStream(streamId);
      return this.fail(
        result.status === 'missing' ? LIVE_SESSION_CLOSE.unknownStream : LIVE_SESSION_CLOSE.ended,
        result.status === 'missing'
          ? `stream ${streamId} is gone`
          : `stream ${streamId} ended: it takes no more frames`,
      );
    }
    if (error instanceof SessionBacklogFull) return this.fail(LIVE_SESSION_CLOSE.tryAgain, error.message);
    if (error instanceof BadFrameError) return this.fail(LIVE_SESSION_CLOSE.badMessage, error.message);
    const message = error instanceof Error ? error.message.split('\n', 1)[0] : String(error);
    this.deps.warn(`live session of stream ${streamId}: ${message}`);
    this.fail(LIVE_SESSION_CLOSE.tryAgain, `encoding failed: ${message}`);
  }

  private sendOutput(output: LoggedOutput, durable: boolean): void {
    if (this.ws.bufferedAmount > SLOW_READER_BYTES) {
      return this.fail(
        LIVE_SESSION_CLOSE.slowReader,
        `over ${SLOW_READER_BYTES} bytes of outputs unread: read outputs as fast as you send frames`,
      );
    }
    const header: LiveSessionServerMessage = {
      type: 'output',
      frame: output.frame,
      keyframe: output.keyframe,
      bytes: output.data.length,
      contentType: output.contentType,
      ...(durable ? {} : { durable: false as const }),
    };
    this.sendText(header);
    this.ws.send(output.data, { binary: true });
  }

  private sendText(message: LiveSessionServerMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(message));
  }

  private ping(): void {
    if (Date.now() - this.lastHeard > LIVE_SESSION_SILENCE_MS) {
      return this.fail(LIVE_SESSION_CLOSE.slowReader, `silent for ${LIVE_SESSION_SILENCE_MS} ms (no pong)`);
    }
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  private onSocketClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.taking = false;
    clearInterval(this.pinger);
    this.onClosed(this);
    void this.sending.then(() => this.settled());
  }
}
