import type { WebSocket } from 'ws';
import type { FollowedItem } from './event-follower.js';

const PING_EVERY_MS = 15_000;

/** The part of a `ws` WebSocket the writer uses. */
export type EventSocket = Pick<
  WebSocket,
  'readyState' | 'OPEN' | 'send' | 'close' | 'ping' | 'terminate' | 'on'
>;

export interface WebSocketShape<E> {
  /** The text message for an event (the event's `id` is added to it). */
  payloadOf(event: E): object;
  /** Bytes sent as one binary message right after the event's text message (an output's), if any. */
  attachmentOf?(event: E): Promise<Buffer> | null;
  /** The close reason once the log ended. */
  endReason: string;
}

/**
 * Writes followed events as WebSocket messages: each event a text message `{ id, type, ... }`, a
 * fell-behind notice one without id. A message is sent only after the previous one was handed to the
 * socket (ws calls back once the bytes are written), so a slow client holds back its own follower only:
 * `follow` is asked for the next item no sooner. Pings find a client that went away silently.
 */
export async function serveWebSocket<E>(
  ws: EventSocket,
  follow: (signal: AbortSignal) => AsyncIterable<FollowedItem<E>>,
  shape: WebSocketShape<E>,
): Promise<void> {
  const abort = new AbortController();
  ws.on('close', () => abort.abort());
  ws.on('error', () => abort.abort());
  let alive = true;
  ws.on('pong', () => (alive = true));
  const ping = setInterval(() => {
    if (!alive) return ws.terminate();
    alive = false;
    ws.ping();
  }, PING_EVERY_MS);
  try {
    for await (const item of follow(abort.signal)) {
      if (item.type === 'fell-behind') {
        await send(ws, JSON.stringify(item));
        continue;
      }
      await send(ws, JSON.stringify({ id: item.id, ...shape.payloadOf(item.event) }));
      const attachment = shape.attachmentOf?.(item.event);
      if (attachment) await send(ws, await attachment);
    }
    if (ws.readyState === ws.OPEN) ws.close(1000, shape.endReason);
  } catch (error) {
    if (ws.readyState === ws.OPEN) ws.close(1011, (error as Error).message.slice(0, 100));
  } finally {
    clearInterval(ping);
    abort.abort();
  }
}

function send(ws: EventSocket, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ws.readyState !== ws.OPEN) return reject(new Error('the client went away'));
    ws.send(data, (error) => (error ? reject(error) : resolve()));
  });
}
