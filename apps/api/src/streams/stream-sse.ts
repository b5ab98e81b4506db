import { once } from 'node:events';
import type { Response } from 'express';
import type { StreamEvent } from '../../../../libs/contracts/src/index.js';
import { outputUrl } from '../jobs/job-view.js';
import type { FollowedItem } from './stream-follower.js';

const KEEPALIVE_MS = 15_000;

/** What a client gets for a stream event: output events also say where to fetch the bytes. */
export function eventPayload(event: StreamEvent): Record<string, unknown> {
  return event.type === 'output' ? { ...event, url: outputUrl(event.jobId, event.index) } : { ...event };
}

/**
 * Writes followed stream events as Server-Sent Events, waiting for the socket to drain whenever it is
 * full (the follower then reads no further). `id:` is the event's number in the stream, which
 * `Last-Event-ID` resumes after; a fell-behind notice carries no id, so it does not move that point.
 */
export async function serveStreamSse(response: Response, items: AsyncIterable<FollowedItem>): Promise<void> {
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
          : `id: ${item.logged.id}\nevent: ${item.logged.event.type}\ndata: ${JSON.stringify(eventPayload(item.logged.event))}\n\n`;
      if (!response.write(text) && !response.destroyed) {
        await Promise.race([once(response, 'drain'), once(response, 'close')]);
      }
      if (response.destroyed) break;
    }
  } finally {
    clearInterval(keepalive);
    if (!response.destroyed) response.end();
  }
}
