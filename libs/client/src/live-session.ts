import { compress as lz4Block } from 'lz4-napi';
import {
  LIVE_SESSION_CLOSE,
  LIVE_SESSION_PING_MS,
  LIVE_SESSION_SILENCE_MS,
  liveSessionPath,
  type LiveSessionServerMessage,
  type StreamView,
} from '#contracts';
import { ApiError } from './api-client.js';
import { AsyncQueue } from './async-queue.js';
import { defaultSleep } from './endpoint-pool.js';
import { endpointUrl } from './endpoints.js';
import { isRetryableError } from './http.js';
import type { StreamClient } from './stream-client.js';
import type { WebSocketConnection } from './websocket.js';

/** One frame's packet, as the session gives it to its caller: once per frame, in frame order. */
export interface LiveOutput {
  frame: number;
  keyframe: boolean;
  contentType: string;
  /** H.264/HEVC: one Annex B access unit; VP8/VP9/AV1: one frame (IVF frame payload). */
  data: Buffer;
  /** False while the node could not write it to the stream's log (Redis away): its frame is kept. */
  durable: boolean;
  /** The node of the connection that delivered it. */
  node: string;
  /** It came from the stream's log on a reconnect (encoded before, on the node given up on). */
  replayed: boolean;
}

/** Why and how the session moved to another connection. */
export interface LiveFailover {
  reason: string;
  /** The node the session was on. */
  node: string;
  /** Whether the API was told that node is unreachable (a drop or a timeout, not a 1012/4409). */
  reported: boolean;
}

export interface LiveSessionOptions {
  /** Through the API's relay (`GET /v1/streams/:id/session` on the API) instead of straight to the node. */
  viaApi?: boolean;
  /**
   * The oldest frame in flight without its output for this long means the node is gone: the session
   * reports it and moves on (default 500 ms; a false alarm doubles it for the next connection, up to 8x).
   */
  frameTimeoutMs?: number;
  /** The first frame of a connection starts an encoder on the node: its own, longer limit (default 3 s). */
  firstOutputTimeoutMs?: number;
  /** The WebSocket handshake (default 2 s). */
  connectTimeoutMs?: number;
  /** How long the session keeps trying to reconnect before it fails (default 30 s). */
  reconnectForMs?: number;
  /** The last frame whose output the caller holds already (default -1: none). */
  since?: number;
  /** Frames held at most (sent, without a durable output) before send() waits (default 256). */
  maxHeldFrames?: number;
  /** Outputs delivered but not yet read by the caller before send() waits (default 64). */
  maxQueuedOutputs?: number;
  /** The frame form, from the stream's `compression` (default: the view's, else none). */
  compression?: 'lz4' | 'none';
  /** Pings every this often; no byte for `LIVE_SESSION_SILENCE_MS` is a dead socket. */
  pingIntervalMs?: number;
  signal?: AbortSignal;
  onFailover?: (failover: LiveFailover) => void;
  now?: () => number;
}

/** The session cannot go on (the stream ended or is unknown, a frame was refused, or reconnecting gave up). */
export class LiveSessionError extends Error {
  override readonly name = 'LiveSessionError';
  constructor(
    message: string,
    /** The close code or HTTP status that ended it, when one did. */
    readonly code?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A connection ended; how the session goes on depends on `action`. */
class Drop extends Error {
  constructor(
    message: string,
    /** report: ask the API with ?unreachable=node; ask: plain GET; fatal: stop. */
    readonly action: 'report' | 'ask' | 'fatal',
    readonly code?: number,
    readonly retryAfterMs?: number,
    /** The oldest frame's output did not come in time (not a drop). */
    readonly timeout = false,
    /** The API was told already (a timeout it confirmed by moving the stream). */
    readonly reported = false,
  ) {
    super(message);
  }
}

const DEFAULT_FRAME_TIMEOUT_MS = 500;
const MAX_TIMEOUT_SCALE = 8;
/** Outputs on one connection after which a doubled frame timeout goes back to the configured one. */
const TIMEOUT_RESET_OUTPUTS = 100;
/** Back-off between reconnect attempts: the first one is immediate (failover time is the product). */
const RETRY_DELAYS_MS = [0, 50, 100, 200, 400, 800, 1000];

/** How a close code (after `ready`) is handled; anything not listed is a dead node. */
function dropFor(code: number, reason: string): Drop {
  const text = `the session closed (${code}${reason ? `: ${reason}` : ''})`;
  switch (code) {
    case LIVE_SESSION_CLOSE.moved:
    case LIVE_SESSION_CLOSE.draining:
    case LIVE_SESSION_CLOSE.badToken:
    case LIVE_SESSION_CLOSE.slowReader:
      return new Drop(text, 'ask', code);
    case LIVE_SESSION_CLOSE.tryAgain:
    case LIVE_SESSION_CLOSE.atCapacity:
      return new Drop(text, 'ask', code, 500);
    case LIVE_SESSION_CLOSE.badMessage:
    case LIVE_SESSION_CLOSE.unknownStream:
    case LIVE_SESSION_CLOSE.ended:
      return new Drop(text, 'fatal', code);
    default:
      return new Drop(text, 'report', code);
  }
}

/** How a refused upgrade (an HTTP status instead of a socket) is handled. */
function dropForStatus(error: ApiError): Drop {
  const status = error.status;
  const text = `the session was refused: ${error.message}`;
  if (status === 404 || status === 410 || status === 400) return new Drop(text, 'fatal', status);
  if (status === 401 || status === 409) return new Drop(text, 'ask', status);
  if (status === 429 || status === 503) return new Drop(text, 'ask', status, error.retryAfterMs ?? 500);
  // 502/504 (a relay that cannot reach the node) and anything else: the node is the suspect.
  return new Drop(text, 'report', status);
}

/** One socket of the session and what was sent and received on it. */
interface Connection {
  socket: WebSocketConnection;
  node: string;
  /** `ready.nextFrame`: frames from here on are (re-)sent on this connection. */
  start: number;
  /** The next frame to send on it. */
  cursor: number;
  /** The highest frame whose output came on it (start - 1 before any). */
  highest: number;
  sentAt: Map<number, number>;
  pending?: Extract<LiveSessionServerMessage, { type: 'output' }>;
  /** A keyframe is asked for before this frame is sent (outputs up to it were given already). */
  keyframeBefore?: number;
  outputs: number;
  lastHeard: number;
  /** When the last output came on it: a frame queued behind others waits for them, not for the node. */
  lastOutputAt: number;
  /** A frame timeout is being checked with the API. */
  suspected?: boolean;
  timer?: NodeJS.Timeout;
  pinger?: NodeJS.Timeout;
  closed: boolean;
  /** The server's error message before it closed, if any. */
  error?: string;
}

/**
 * A live stream's session (API.md, "Live sessions"): frames over one WebSocket straight to the node
 * that encodes the stream (or through the API's relay), at most `window` in flight, each frame's
 * packet back on the same socket. The session keeps every frame until its output is durable (in the
 * stream's log), and fails over by itself: when the socket drops, or the oldest frame in flight has no
 * output within the frame timeout, it reports the node to the API (`?unreachable=`), reconnects with
 * `since` = the last frame whose output it holds, takes the outputs it missed from the log and sends
 * again what the new node lacks. The caller gets every frame's output exactly once, in frame order
 * (iterate the session).
 */
export class LiveSession implements AsyncIterable<LiveOutput> {
  /** Frames without a durable output (the bytes as sent: LZ4 blocks when the stream takes them). */
  private readonly held = new Map<number, Buffer>();
  private readonly outputs: AsyncQueue<LiveOutput>;
  private readonly waiters: (() => void)[] = [];
  private readonly now: () => number;
  private readonly compression: 'lz4' | 'none';
  private connection?: Connection;
  private recovering?: Promise<void>;
  private failure?: Error;
  private closing = false;
  private consumerBehind = false;
  private timeoutScale = 1;
  private nodeName = '';
  private windowSize = 1;
  private failoverCount = 0;
  private suspicionCount = 0;
  /** The number the next send() takes. */
  private next = 0;
  /** The first frame this session sent (frames before it were sent by others, e.g. POST /frames). */
  private base = -1;
  /** Frames whose number is taken but whose bytes are still being compressed. */
  private preparing = 0;
  /** The last frame whose output the caller was given (outputs come in order: all before it too). */
  private received: number;

  private constructor(
    private readonly client: StreamClient,
    readonly streamId: string,
    private readonly options: LiveSessionOptions,
    view: StreamView,
  ) {
    this.now = options.now ?? Date.now;
    this.received = options.since ?? -1;
    this.compression = options.compression ?? (view.compression === 'lz4' ? 'lz4' : 'none');
    this.outputs = new AsyncQueue<LiveOutput>({
      highWaterMark: options.maxQueuedOutputs ?? 64,
      onHigh: () => (this.consumerBehind = true),
      onLow: () => {
        this.consumerBehind = false;
        this.wake();
      },
    });
    options.signal?.addEventListener('abort', () => this.fail(options.signal?.reason), { once: true });
  }

  /**
   * Opens the session of a live stream (its id, or the view that POST /v1/streams or GET answered):
   * resolves once the server is `ready`.
   */
  static async open(
    client: StreamClient,
    stream: string | StreamView,
    options: LiveSessionOptions = {},
  ): Promise<LiveSession> {
    const view = typeof stream === 'string' ? await client.get(stream, { signal: options.signal }) : stream;
    const session = new LiveSession(client, view.id, options, view);
    await session.start(view);
    return session;
  }

  /** The node the session is on now. */
  get node(): string {
    return this.nodeName;
  }

  /** Frames that may be in flight (the server's `ready.window`). */
  get window(): number {
    return this.windowSize;
  }

  /** Connections replaced after a drop, a timeout or a move. */
  get failovers(): number {
    return this.failoverCount;
  }

  /** Frame timeouts checked with the API (a failover, or a node kept because it answered). */
  get suspicions(): number {
    return this.suspicionCount;
  }

  /** The number the next frame sent will have. */
  get nextFrame(): number {
    return this.next;
  }

  /** The last frame whose output was given to the caller. */
  get lastOutput(): number {
    return this.received;
  }

  /** Frames kept until their output is durable. */
  get heldFrames(): number {
    return this.held.size;
  }

  [Symbol.asyncIterator](): AsyncIterator<LiveOutput> {
    return this.outputs[Symbol.asyncIterator]();
  }

  /**
   * Sends one frame (the stream's layout, exactly its size). Waits while `window` frames are in flight
   * (or the caller lags behind the outputs, or too many frames wait to be durable); resolves with the
   * frame's number once it is on its way. The buffer is kept, not copied, until its output is
   * durable: do not change it before.
   */
  async send(frame: Buffer): Promise<number> {
    await this.waitFor(() => this.hasRoom());
    const number = this.next++;
    if (this.compression === 'lz4') {
      this.preparing++;
      try {
        frame = await lz4Block(frame);
      } finally {
        this.preparing--;
      }
    }
    this.held.set(number, frame);
    this.pump();
    return number;
  }

  /** Makes the next frame sent a keyframe. */
  requestKeyframe(): void {
    const connection = this.connection;
    if (connection && !connection.closed) connection.socket.send(JSON.stringify({ type: 'keyframe' }));
  }

  /** Resolves once every frame sent has its output (with `durable`, once they are all in the log). */
  async drain(options: { durable?: boolean } = {}): Promise<void> {
    await this.waitFor(() => this.received >= this.next - 1 && (!options.durable || this.held.size === 0));
  }

  /** Waits for the outputs of the frames sent (drain), then closes the socket and ends the iteration. */
  async close(): Promise<void> {
    try {
      await this.drain();
    } finally {
      this.closing = true;
      this.stop(this.connection);
      this.outputs.end();
      this.wake();
    }
  }

  /** Stops at once: the socket is closed, the iteration and pending calls fail with `reason`. */
  abort(reason: unknown = new LiveSessionError('the session was aborted')): void {
    this.fail(reason);
  }

  // -------------------------------------------------------------------------------------------
  // Connecting and failing over

  private async start(view: StreamView): Promise<void> {
    this.nodeName = view.session?.node ?? '';
    try {
      await this.connect(view);
    } catch (error) {
      if (!(error instanceof Drop) || error.action === 'fatal') throw this.toError(error);
      // The first try failed the way a failover would: go on as one.
      this.recover(error);
      await this.waitFor(() => this.connection !== undefined && !this.recovering);
    }
  }

  /** Opens a socket for the grant in `view`; resolves on `ready`, rejects with a Drop before it. */
  private connect(view: StreamView): Promise<void> {
    if (view.state !== 'open') {
      return Promise.reject(
        new Drop(`stream ${view.id} is ${view.state}`, 'fatal', LIVE_SESSION_CLOSE.ended),
      );
    }
    const grant = view.session;
    if (!grant) {
      return Promise.reject(
        new Drop(
          `stream ${view.id} has no live session now (not a live stream, or no node with a data port holds it)`,
          view.mode === 'live' ? 'ask' : 'fatal',
          undefined,
          500,
        ),
      );
    }
    const { url, headers } = this.target(view);
    return new Promise<void>((resolve, reject) => {
      let opened = false;
      const connection: Connection = {
        socket: undefined as unknown as WebSocketConnection,
        node: grant.node,
        start: 0,
        cursor: 0,
        highest: -1,
        sentAt: new Map(),
        outputs: 0,
        lastHeard: this.now(),
        lastOutputAt: 0,
        closed: false,
      };
      const settle = (drop: Drop) => {
        if (opened) return this.dropped(connection, drop);
        this.stop(connection);
        reject(drop);
      };
      connection.socket = this.client.webSocket(
        url,
        {
          headers,
          handshakeTimeoutMs: this.options.connectTimeoutMs ?? 2000,
          zeroMask: true,
        },
        {
          onOpen: () => {
            connection.lastHeard = this.now();
            this.startPinging(connection);
          },
          onMessage: (data, binary) => {
            connection.lastHeard = this.now();
            if (connection.closed) return;
            try {
              if (binary) return this.onPacket(connection, data);
              const message = JSON.parse(data.toString('utf8')) as LiveSessionServerMessage;
              if (message.type === 'ready') {
                if (opened) throw new Drop('a second ready on one session', 'ask');
                this.onReady(connection, message);
                opened = true;
                resolve();
                return;
              }
              if (!opened) throw new Drop(`the server sent ${message.type} before ready`, 'ask');
              this.onMessage(connection, message);
            } catch (error) {
              settle(
                error instanceof Drop
                  ? error
                  : new Drop(`a message the session cannot read: ${(error as Error).message}`, 'ask'),
              );
            }
          },
          onPong: () => (connection.lastHeard = this.now()),
          onClose: (code, reason) => settle(dropFor(code, reason || connection.error || '')),
          onError: (error) => settle(new Drop(`the session's socket failed: ${error.message}`, 'report')),
          onUnexpectedResponse: (status, headersIn, body) => {
            let parsed: ConstructorParameters<typeof ApiError>[1] = body || `HTTP ${status}`;
            try {
              parsed = JSON.parse(body) as typeof parsed;
            } catch {
              // not JSON
            }
            const retryAfter = headersIn['retry-after'];
            settle(
              dropForStatus(
                new ApiError(
                  status,
                  parsed,
                  retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined,
                ),
              ),
            );
          },
        },
      );
    });
  }

  /** Where to connect for a grant, and how to authenticate there. */
  private target(view: StreamView): { url: string; headers: Record<string, string> } {
    const grant = view.session!;
    if (!this.options.viaApi) {
      const url = new URL(grant.url);
      url.searchParams.set('since', String(this.received));
      return { url: url.toString(), headers: { authorization: `Bearer ${grant.token}` } };
    }
    // The relay on an API server the client reaches (the grant's relayUrl names the API as it sees itself).
    const endpoint = this.client.pool.pick() ?? this.client.pool.endpoints[0];
    const url = new URL(endpointUrl(endpoint.url, liveSessionPath(view.id)));
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('since', String(this.received));
    const key = this.client.key;
    return { url: url.toString(), headers: key ? { authorization: `Bearer ${key}` } : {} };
  }

  private onReady(connection: Connection, ready: Extract<LiveSessionServerMessage, { type: 'ready' }>): void {
    if (this.base < 0) {
      this.base = ready.nextFrame;
      this.next = ready.nextFrame;
    }
    if (ready.nextFrame > this.next) {
      throw new Drop(
        `the stream is at frame ${ready.nextFrame} but this session sent only up to ${this.next - 1}: ` +
          'another client sends frames to it',
        'fatal',
      );
    }
    for (let frame = ready.nextFrame; frame < this.next; frame++) {
      if (!this.held.has(frame) && this.preparing === 0) {
        throw new Drop(`the node lost frame ${frame}, which this session no longer holds`, 'fatal');
      }
    }
    connection.node = ready.node;
    connection.start = ready.nextFrame;
    connection.cursor = ready.nextFrame;
    connection.highest = ready.nextFrame - 1;
    // Outputs the caller has (not durable) that the new node will encode again: they are dropped, and
    // the first frame after them starts a new picture sequence for the caller's decoder.
    if (ready.nextFrame <= this.received) connection.keyframeBefore = this.received + 1;
    this.connection = connection;
    this.nodeName = ready.node;
    this.windowSize = Math.max(1, ready.window);
    this.pump();
    this.wake();
  }

  /** A connection that was open ended (or is given up on): fail over, or stop. */
  private dropped(connection: Connection, drop: Drop): void {
    if (connection.closed || this.connection !== connection) return;
    this.stop(connection);
    if (this.closing || this.failure) return;
    if (drop.action === 'fatal') {
      // The stream ended with nothing outstanding: a normal end for a caller that is done.
      if (drop.code === LIVE_SESSION_CLOSE.ended && this.received >= this.next - 1) {
        this.outputs.end();
        this.wake();
        return;
      }
      return this.fail(this.toError(drop));
    }
    this.recover(drop);
  }

  /** Finds the stream's session again (reporting the node when it is the suspect) and reconnects. */
  private recover(drop: Drop): void {
    if (this.recovering || this.failure || this.closing) return;
    const from = this.connection?.node ?? this.nodeName;
    this.connection = undefined;
    this.failoverCount++;
    this.options.onFailover?.({
      reason: drop.message,
      node: from,
      reported: drop.action === 'report' || drop.reported,
    });
    this.recovering = (async () => {
      const started = this.now();
      const limit = this.options.reconnectForMs ?? 30_000;
      let reason: Drop = drop;
      /** The API sent the session back to the node given up on, and that did not work either. */
      let sameNodeFailed = false;
      for (let attempt = 0; ; attempt++) {
        const delay = Math.max(
          RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)],
          reason.retryAfterMs ?? 0,
        );
        if (delay > 0) await defaultSleep(delay, this.options.signal).catch(() => undefined);
        if (this.failure || this.closing) return;
        const remaining = limit - (this.now() - started);
        if (remaining <= 0) {
          return this.fail(
            new LiveSessionError(
              `could not reconnect the session of stream ${this.streamId} within ${limit} ms: ${reason.message}`,
              reason.code,
            ),
          );
        }
        // A relay closes with 4409 when its node goes, which asks the API without naming the node: when
        // the API answers that node again and it fails again, the node is reported after all.
        const unreachable = reason.action === 'report' || sameNodeFailed ? from : undefined;
        let granted: string | undefined;
        try {
          const view = await this.client.get(this.streamId, {
            unreachable,
            signal: this.options.signal,
            deadlineMs: remaining,
          });
          granted = view.session?.node;
          await this.connect(view);
          return;
        } catch (error) {
          if (this.failure || this.closing) return;
          if (error instanceof Drop) {
            if (error.action === 'fatal') return this.fail(this.toError(error));
            sameNodeFailed = granted === from;
            reason = error;
            continue;
          }
          if (!isRetryableError(error)) return this.fail(this.toError(error));
          reason = new Drop(`the API could not be asked: ${(error as Error).message}`, 'ask');
        }
      }
    })().finally(() => {
      this.recovering = undefined;
      this.wake();
    });
  }

  // -------------------------------------------------------------------------------------------
  // Messages

  private onMessage(connection: Connection, message: LiveSessionServerMessage): void {
    switch (message.type) {
      case 'output':
        if (connection.pending)
          throw new Drop(`output of frame ${connection.pending.frame} came without its packet`, 'ask');
        connection.pending = message;
        return;
      case 'durable':
        for (const frame of this.held.keys()) if (frame <= message.upTo) this.held.delete(frame);
        this.wake();
        return;
      case 'error':
        connection.error = message.message;
        return;
      default:
        throw new Drop(`an unknown message: ${JSON.stringify(message).slice(0, 200)}`, 'ask');
    }
  }

  private onPacket(connection: Connection, data: Buffer): void {
    const header = connection.pending;
    if (!header) throw new Drop('a packet came without its output message', 'ask');
    connection.pending = undefined;
    if (data.length !== header.bytes) {
      throw new Drop(
        `frame ${header.frame}'s packet is ${data.length} bytes, its output message said ${header.bytes}`,
        'ask',
      );
    }
    const durable = header.durable !== false;
    if (header.frame >= connection.start) {
      connection.lastOutputAt = this.now();
      connection.highest = Math.max(connection.highest, header.frame);
      connection.sentAt.delete(header.frame);
      connection.outputs++;
      if (connection.outputs === TIMEOUT_RESET_OUTPUTS) this.timeoutScale = 1;
    }
    if (durable) this.held.delete(header.frame);
    if (header.frame <= this.received) {
      // Given to the caller already (a replay, or a frame encoded again after a move).
      this.afterOutput(connection);
      return;
    }
    // Frames before this session's first that the log no longer has (trimmed) are skipped over.
    if (header.frame !== this.received + 1 && !(header.frame <= this.base && this.received < this.base)) {
      throw new Drop(`frame ${header.frame}'s output came before frame ${this.received + 1}'s`, 'ask');
    }
    this.received = header.frame;
    this.outputs.push({
      frame: header.frame,
      keyframe: header.keyframe,
      contentType: header.contentType,
      data,
      durable,
      node: connection.node,
      replayed: header.frame < connection.start,
    });
    this.afterOutput(connection);
  }

  private afterOutput(connection: Connection): void {
    this.armTimer(connection);
    this.pump();
    this.wake();
  }

  // -------------------------------------------------------------------------------------------
  // Sending, window, timers

  private inFlight(connection: Connection): number {
    return connection.cursor - 1 - connection.highest;
  }

  /** Room for one more frame: the window, the held-frames cap and a caller that reads its outputs. */
  private hasRoom(): boolean {
    if (this.consumerBehind) return false;
    if (this.held.size + this.preparing >= (this.options.maxHeldFrames ?? 256)) return false;
    return this.next - 1 - Math.max(this.received, this.base - 1) < this.windowSize;
  }

  /** Sends held frames from the connection's cursor while the window has room. */
  private pump(): void {
    const connection = this.connection;
    if (!connection || connection.closed) return;
    while (connection.cursor < this.next && this.inFlight(connection) < this.windowSize) {
      const frame = this.held.get(connection.cursor);
      if (!frame) return; // still being compressed
      if (connection.keyframeBefore === connection.cursor)
        connection.socket.send(JSON.stringify({ type: 'keyframe' }));
      connection.sentAt.set(connection.cursor, this.now());
      connection.socket.send(frame);
      connection.cursor++;
    }
    this.armTimer(connection);
  }

  /** The frame timeout of the oldest frame in flight on `connection`. */
  private armTimer(connection: Connection): void {
    clearTimeout(connection.timer);
    connection.timer = undefined;
    if (connection.closed || this.inFlight(connection) <= 0) return;
    const oldest = connection.highest + 1;
    // Its clock starts when it was sent, or when the frame before it came out if that was later: the
    // node encodes a session's frames one after the other.
    const sentAt = Math.max(connection.sentAt.get(oldest) ?? this.now(), connection.lastOutputAt);
    const base = this.options.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS;
    const limit =
      (connection.outputs === 0 ? Math.max(base, this.options.firstOutputTimeoutMs ?? 3000) : base) *
      this.timeoutScale;
    connection.timer = setTimeout(
      () => {
        if (connection.highest < oldest)
          void this.suspect(
            connection,
            `no output for frame ${oldest} within ${limit} ms from ${connection.node}`,
          );
      },
      Math.max(0, sentAt + limit - this.now()),
    );
    connection.timer.unref?.();
  }

  /**
   * A frame timed out: the node may be gone, or only slow. The API decides (it probes the node): if it
   * moved the stream, the session follows; if it kept it there, the socket stays (a new one would race
   * the frames the node is still encoding) and the node gets a longer timeout from now on.
   */
  private async suspect(connection: Connection, reason: string): Promise<void> {
    if (connection.suspected || connection.closed) return;
    connection.suspected = true;
    this.suspicionCount++;
    let view: StreamView;
    try {
      view = await this.client.get(this.streamId, {
        unreachable: connection.node,
        signal: this.options.signal,
        deadlineMs: this.options.connectTimeoutMs ?? 2000,
      });
    } catch {
      return this.dropped(connection, new Drop(reason, 'report', undefined, undefined, true));
    }
    connection.suspected = false;
    if (connection.closed || this.connection !== connection) return;
    if (view.state === 'open' && view.session?.node === connection.node) {
      this.timeoutScale = Math.min(MAX_TIMEOUT_SCALE, this.timeoutScale * 2);
      this.armTimer(connection);
      return;
    }
    this.dropped(
      connection,
      new Drop(`${reason}; the API moved the stream`, 'ask', undefined, undefined, true, true),
    );
  }

  private startPinging(connection: Connection): void {
    const interval = this.options.pingIntervalMs ?? LIVE_SESSION_PING_MS;
    connection.pinger = setInterval(() => {
      if (this.now() - connection.lastHeard > Math.max(LIVE_SESSION_SILENCE_MS, 3 * interval)) {
        this.dropped(
          connection,
          new Drop(`${connection.node} was silent for ${this.now() - connection.lastHeard} ms`, 'report'),
        );
        return;
      }
      connection.socket.ping();
    }, interval);
    connection.pinger.unref?.();
  }

  private stop(connection: Connection | undefined): void {
    if (!connection || connection.closed) return;
    connection.closed = true;
    clearTimeout(connection.timer);
    clearInterval(connection.pinger);
    connection.socket.close();
    connection.socket.terminate();
  }

  // -------------------------------------------------------------------------------------------

  private waitFor(condition: () => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): boolean => {
        if (this.failure) reject(this.failure);
        else if (condition()) resolve();
        else if (this.closing) reject(new LiveSessionError('the session is closed'));
        else return false;
        return true;
      };
      if (check()) return;
      const waiter = () => {
        if (!check()) this.waiters.push(waiter);
      };
      this.waiters.push(waiter);
    });
  }

  private wake(): void {
    const waiting = this.waiters.splice(0);
    for (const waiter of waiting) waiter();
  }

  private toError(error: unknown): Error {
    if (error instanceof Drop) return new LiveSessionError(error.message, error.code);
    return error instanceof Error ? error : new LiveSessionError(String(error));
  }

  private fail(reason: unknown): void {
    if (this.failure) return;
    this.failure =
      reason instanceof Error ? reason : new LiveSessionError(String(reason ?? 'the session failed'));
    this.stop(this.connection);
    this.outputs.fail(this.failure);
    this.wake();
  }
}
