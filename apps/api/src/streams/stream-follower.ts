import { Injectable } from '@nestjs/common';
import type { LoggedStreamEvent } from '../../../../libs/contracts/src/index.js';
import { StreamStore } from '../../../../libs/cluster/src/index.js';
import { EventHub } from '../events/event-hub.js';

/** Events from..to were trimmed from the bounded log before this consumer read them. */
export interface FellBehind {
  type: 'fell-behind';
  from: number;
  to: number;
  missed: number;
}

export type FollowedItem = { type: 'event'; logged: LoggedStreamEvent } | FellBehind;

const PAGE = 128;
/** Re-read the log this often even without a wake-up (a message lost while the subscriber reconnected). */
const IDLE_RECHECK_MS = 5000;

/**
 * Reads a stream's log after a given id, in order, one page at a time, and waits for more: each consumer
 * pulls only as fast as it writes to its client, so a slow one costs the API one page, never an
 * unbounded buffer. The bound is the log itself (STREAM_LOG_MAX_EVENTS): a consumer that falls further
 * behind than that is told which events it missed, and goes on from the oldest one kept.
 */
@Injectable()
export class StreamFollower {
  constructor(
    private readonly streams: StreamStore,
    private readonly hub: EventHub,
  ) {}

  async *follow(streamId: string, afterId: number, signal: AbortSignal): AsyncGenerator<FollowedItem> {
    let last = afterId;
    let woken = false;
    let wake: (() => void) | null = null;
    const stop = this.hub.onStreamEvent(streamId, () => {
      woken = true;
      wake?.();
    });
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        woken = false;
        const page = await this.streams.readAfter(streamId, last, PAGE);
        if (page.length > 0 && page[0].id > last + 1) {
          yield { type: 'fell-behind', from: last + 1, to: page[0].id - 1, missed: page[0].id - 1 - last };
        }
        for (const logged of page) {
          yield { type: 'event', logged };
          last = logged.id;
          if (logged.event.type === 'end') return;
        }
        if (page.length === PAGE || woken) continue;
        if (page.length === 0) {
          // Gone, or ended with nothing after `last` (a client resuming after the end): nothing will come.
          const record = await this.streams.get(streamId);
          if (!record || (record.state === 'ended' && record.lastEventId <= last)) return;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, IDLE_RECHECK_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
          if (woken || signal.aborted) wake();
        });
        wake = null;
      }
    } finally {
      stop();
      signal.removeEventListener('abort', onAbort);
    }
  }
}
