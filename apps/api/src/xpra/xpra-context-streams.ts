import { StreamClient } from '#client/stream-client.js';
import { LiveSession, type LiveFailover } from '#client/live-session.js';
import type { CreateStreamRequest } from '#contracts';
import type { ContextOutput, ContextOwner, ContextStream, ContextStreamParams } from './xpra-contexts.js';

function createRequest(params: ContextStreamParams): CreateStreamRequest {
  return {
    codec: params.codec,
    width: params.width,
    height: params.height,
    format: params.format,
    fps: params.fps,
    quality: params.quality,
    speed: params.speed,
    mode: 'live',
  };
}

/**
 * The oldest frame without its packet for this long means its node is gone: the session reports it
 * and fails over. Well inside Xpra's 1 s, so that the frames in flight are re-sent and answered in it.
 */
const SESSION_FRAME_TIMEOUT_MS = 300;

/**
 * Video contexts as live streams of this API (created through its own HTTP API on loopback, with the
 * connection's key, so the stream is its tenant's and placed by load like any other), each fed by the
 * SDK's live session: frames straight to the node that holds the encoder, packets back on the same
 * socket, and failover (report, move, re-send what is in flight) by the session itself.
 */
export class SessionContextStream implements ContextStream {
  private constructor(
    private readonly client: StreamClient,
    private readonly session: LiveSession,
    readonly id: string,
  ) {}

  static async open(
    apiUrl: string,
    params: ContextStreamParams,
    owner: ContextOwner,
    onFailover: (streamId: string, failover: LiveFailover) => void,
  ): Promise<ContextStream> {
    const client = new StreamClient(apiUrl, { apiKey: owner.key });
    const view = await client.create(createRequest(params));
    try {
      const session = await LiveSession.open(client, view, {
        frameTimeoutMs: SESSION_FRAME_TIMEOUT_MS,
        onFailover: (failover) => onFailover(view.id, failover),
      });
      return new SessionContextStream(client, session, view.id);
    } catch (error) {
      await client.close(view.id).catch(() => undefined);
      throw error;
    }
  }

  get node(): string | null {
    return this.session.node || null;
  }

  send(frame: Buffer): Promise<number> {
    return this.session.send(frame);
  }

  requestKeyframe(): void {
    this.session.requestKeyframe();
  }

  get outputs(): AsyncIterable<ContextOutput> {
    return this.session;
  }

  async close(): Promise<void> {
    this.session.abort();
    await this.client.close(this.id).catch(() => undefined);
  }
}

/**
 * The durable path, for clusters whose nodes have no data port: frames by `POST /frames` (through
 * Redis), packets back on the stream's WebSocket, a dead node's streams moved by the live supervisor
 * (slower than Xpra's 1 s: frames in flight then get errors).
 */
export class PostedContextStream implements ContextStream {
  private events: AsyncIterable<ContextOutput> | null = null;

  private constructor(
    private readonly client: StreamClient,
    readonly id: string,
    readonly node: string | null,
    private readonly abort: AbortController,
  ) {}

  static async open(
    apiUrl: string,
    params: ContextStreamParams,
    owner: ContextOwner,
  ): Promise<ContextStream> {
    const client = new StreamClient(apiUrl, { apiKey: owner.key });
    const view = await client.create(createRequest(params));
    return new PostedContextStream(client, view.id, view.node, new AbortController());
  }

  async send(frame: Buffer): Promise<number> {
    const accepted = await this.client.submitFrames(this.id, frame, 1, { signal: this.abort.signal });
    return accepted.firstFrame;
  }

  /** The durable path has no keyframe request: its encoder keeps its own keyframe interval. */
  requestKeyframe(): void {}

  get outputs(): AsyncIterable<ContextOutput> {
    this.events ??= this.follow();
    return this.events;
  }

  private follow(): AsyncIterable<ContextOutput> {
    const events = this.client.followWs(this.id, { signal: this.abort.signal });
    return (async function* () {
      for await (const event of events) {
        if (event.type === 'end') return;
        if (event.type === 'output' && event.frame !== undefined)
          yield { frame: event.frame, keyframe: event.keyframe === true, data: event.data };
      }
    })();
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.client.close(this.id).catch(() => undefined);
  }
}
