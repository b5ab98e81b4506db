import { StreamClient } from '../../../../libs/client/src/stream-client.js';
import type { ContextOutput, ContextOwner, ContextStream, ContextStreamParams } from './xpra-contexts.js';

/**
 * Video contexts as live streams of this API, through its own HTTP API on loopback (the SDK's stream
 * client): created with the connection's key, so the stream is its tenant's, placed by load like any
 * live stream, and moved off a dead node by the live supervisor. Frames go by `POST /frames` (through
 * Redis) and packets come back on the stream's WebSocket.
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
    const view = await client.create({
      codec: params.codec,
      width: params.width,
      height: params.height,
      format: params.format,
      fps: params.fps,
      quality: params.quality,
      speed: params.speed,
      mode: 'live',
    });
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
