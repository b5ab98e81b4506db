import { once } from 'node:events';
import type { FollowedItem } from './event-follower.js';

const KEEPALIVE_MS = 15_000;

/** The part of an HTTP response the writer uses (express's Response has it). */
export interface SseResponse extends NodeJS.EventEmitter {
  readonly destroyed: boolean;
  status(code: number): unknown;
  setHeader(name: string, value: string): unknown;
  flushHeaders(): void;
  write(chunk: string): boolean;
  end(): unknown;
}

/**
 * Writes followed events as Server-Sent Events, waiting for the socket to drain whenever it is full (the
 * follower then reads no further). `id:` is the event's id, which `Last-Event-ID` resumes after; a
 * fell-behind notice carries no id, so it does not move that point. `payloadOf` is what a client gets
 * for an event (its `data:`).
 */
export async function serveSse<E extends { type: string }>(
  response: SseResponse,
  items: AsyncIterable<FollowedItem<E>>,
  payloadOf: (event: E) => object,
): Promise<void> {
  response.status(200);
  response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  response.setHeader('Cache-Control', 'no-cache, no-transform');
  response.setHeader('Connection', 'keep-alive');
  response.setHeader('X-Accel-Buffering', 'no');
  response.flushHeaders();
  response.write('retry: 2000\n\n');
  const keepalive = setInterval(() => response.write(': keepalive\n\n'), KEEPALIVE_MS);
  try {
    for await (const item of items) {
      const text =
        item.type === 'fell-behind'
          ? `event: fell-behind\ndata: ${JSON.stringify(item)}\n\n`
          : `id: ${item.id}\nevent: ${item.event.type}\ndata: ${JSON.stringify(payloadOf(item.event))}\n\n`;
      if (!response.write(text) && !response.destroyed) await drainedOrClosed(response);
      if (response.destroyed) break;
    }
  } finally {
    clearInterval(keepalive);
    if (!response.destroyed) response.end();
  }
}

async function drainedOrClosed(response: SseResponse): Promise<void> {
  const controller = new AbortController();
  await Promise.race([
    once(response, 'drain', { signal: controller.signal }),
    once(response, 'close', { signal: controller.signal }),
  ]).finally(() => controller.abort());
}
