import WebSocket from 'ws';
import { KeySpace, SessionTokens, createRedisConnection, type RedisClient } from '#cluster';
import { liveSessionPath, type LiveSessionServerMessage, type NodeRecord, type StreamView } from '#contracts';
import type { ServiceStack } from '#scripts/lib/stack.js';

/**
 * A test-only client of a node's data port (API.md, "Live sessions"): it speaks the wire protocol
 * itself, so the tests check the node, not an SDK. Tokens are minted with the stack's cluster secret
 * for the stream's record as it stands (node and epoch), as the API would.
 */

export type OutputHeader = Extract<LiveSessionServerMessage, { type: 'output' }>;

export interface SessionOutput {
  header: OutputHeader;
  data: Buffer;
}

export interface SessionClose {
  code: number;
  reason: string;
}

export class TestSession {
  readonly outputs: SessionOutput[] = [];
  readonly texts: LiveSessionServerMessage[] = [];
  readonly closed: Promise<SessionClose>;
  private header: OutputHeader | null = null;
  private waiters: (() => void)[] = [];
  private closeInfo: SessionClose | null = null;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this.wake();
      }),
    );
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (!this.header) throw new Error('a binary message without an output header');
        if (data.length !== this.header.bytes)
          throw new Error(`output of ${data.length} bytes, header says ${this.header.bytes}`);
        this.outputs.push({ header: this.header, data });
        this.header = null;
      } else {
        const message = JSON.parse(data.toString()) as LiveSessionServerMessage;
        this.texts.push(message);
        if (message.type === 'output') this.header = message;
      }
      this.wake();
    });
  }

  /** Opens a session; rejects with the HTTP status when the upgrade is refused. */
  static open(
    url: string,
    options: { token?: string; since?: number; headers?: Record<string, string>; ca?: Buffer } = {},
  ) {
    const target = new URL(url);
    if (options.since !== undefined) target.searchParams.set('since', String(options.since));
    const headers = {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    };
    const ws = new WebSocket(target, { headers, ...(options.ca ? { ca: options.ca } : {}) });
    return new Promise<TestSession>((resolve, reject) => {
      ws.once('open', () => resolve(new TestSession(ws)));
      ws.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () =>
          reject(
            Object.assign(new Error(`upgrade refused: ${response.statusCode} ${body}`), {
              status: response.statusCode,
              body,
            }),
          ),
        );
      });
      ws.once('error', reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Resolves once `check` holds (re-checked after each message), or rejects when the socket closed first. */
  async until<T>(check: () => T | undefined | false, what: string, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined && value !== false) return value;
      if (this.closeInfo)
        throw new Error(
          `socket closed (${this.closeInfo.code} ${this.closeInfo.reason}) waiting for ${what}`,
        );
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  ready(): Promise<Extract<LiveSessionServerMessage, { type: 'ready' }>> {
    return this.until(
      () =>
        this.texts.find(
          (message): message is Extract<LiveSessionServerMessage, { type: 'ready' }> =>
            message.type === 'ready',
        ),
      'ready',
    );
  }

  send(data: Buffer | string): void {
    this.ws.send(data);
  }

  /**
   * Sends `frames` keeping at most `window` in flight, as a client should; resolves with the outputs of
   * those frames (after those already received).
   */
  async sendAll(frames: Buffer[], window: number): Promise<SessionOutput[]> {
    const start = this.outputs.length;
    for (let index = 0; index < frames.length; index++) {
      if (index >= window) {
        await this.until(() => this.outputs.length - start >= index - window + 1, `output ${index - window}`);
      }
      this.send(frames[index]);
    }
    await this.until(() => this.outputs.length - start >= frames.length, 'the last output');
    return this.outputs.slice(start);
  }

  close(): void {
    this.ws.close();
  }
}

/** The node a stream is pinned to now, with its data port's URL. */
export async function nodeOf(
  stack: ServiceStack,
  streamId: string,
): Promise<{ view: StreamView; node: NodeRecord }> {
  const view = (await (await fetch(`${stack.apiUrl}/v1/streams/${streamId}`)).json()) as StreamView;
  const node = (await stack.client.nodes()).find((candidate) => candidate.id === view.node);
  if (!node?.dataUrl) throw new Error(`stream ${streamId} is on node ${view.node}, which has no data port`);
  return { view, node };
}

/** A token for the stream on its node at its current epoch, as the API issues it. */
export async function grantFor(
  stack: ServiceStack,
  streamId: string,
  ttlMs = 60_000,
): Promise<{ url: string; token: string; node: NodeRecord; epoch: number }> {
  const { node } = await nodeOf(stack, streamId);
  const epoch = await epochOf(stack, streamId);
  const { token } = new SessionTokens(stack.clusterSecrets.split(',')).issue(
    { stream: streamId, node: node.id, epoch },
    ttlMs,
  );
  return { url: `${node.dataUrl}${liveSessionPath(streamId)}`, token, node, epoch };
}

/** Runs `use` with a connection to the stack's Redis (waiting for it), then closes it. */
export async function withRedis<T>(
  stack: ServiceStack,
  use: (redis: RedisClient, keys: KeySpace) => Promise<T>,
): Promise<T> {
  const redis = createRedisConnection({ url: stack.redisUrl, role: 'worker', name: 'test' });
  try {
    return await use(redis, new KeySpace('encoder'));
  } finally {
    redis.disconnect();
  }
}

/** The record's epoch (the view does not show it). */
export function epochOf(stack: ServiceStack, streamId: string): Promise<number> {
  return withRedis(stack, async (redis, keys) =>
    Number(await redis.hget(keys.streamRecord(streamId), 'epoch')),
  );
}

/** Sets stream parameters in the record (those POST /v1/streams may not take yet, e.g. `compression`). */
export function patchParams(
  stack: ServiceStack,
  streamId: string,
  patch: Record<string, unknown>,
): Promise<void> {
  return withRedis(stack, async (redis, keys) => {
    const params = JSON.parse((await redis.hget(keys.streamRecord(streamId), 'params'))!) as Record<
      string,
      unknown
    >;
    await redis.hset(keys.streamRecord(streamId), 'params', JSON.stringify({ ...params, ...patch }));
  });
}
