import { eventIdOf, numberOf } from './event-ids.js';

/** Events from..to were trimmed from the bounded log before this consumer read them. */
export interface FellBehind {
  type: 'fell-behind';
  from: number;
  to: number;
  missed: number;
}

/** An event as it was logged: `position` is its place in the log (a Redis stream id). */
export interface LogEntry<E> {
  position: string;
  event: E;
}

export type FollowedItem<E> = { type: 'event'; id: number | string; event: E } | FellBehind;

/** One event log (a job's or a stream's), as the follower reads it. */
export interface FollowedLog<E> {
  /** Up to `count` entries after `position` (exclusive), in order. */
  readAfter(position: string, count: number): Promise<LogEntry<E>[]>;
  /** The event after which nothing comes (a stream's `end`, a job's `completed` or `failed`). */
  isLast(event: E): boolean;
  /** Asked when nothing follows `position`: true when nothing ever will (gone, or resumed after the end). */
  isOver(position: string): Promise<boolean>;
  /** Calls `wake` whenever the log may have grown; returns the function that stops it. */
  onGrowth(wake: () => void): () => void;
}

const PAGE = 128;
/** Re-read the log this often even without a wake-up (a message lost while the subscriber reconnected). */
const IDLE_RECHECK_MS = 5000;

/**
 * Reads a log after a given position, in order, one page at a time, and waits for more: each consumer
 * pulls only as fast as it writes to its client (the next item is read when the writer asks for it), so
 * a slow one costs the API one page, never an unbounded buffer. The bound is the log itself: a consumer
 * that falls further behind than its length is told which events it missed, and goes on from the oldest
 * one kept.
 */
export async function* follow<E>(
  log: FollowedLog<E>,
  after: string,
  signal: AbortSignal,
): AsyncGenerator<FollowedItem<E>> {
  let last = after;
  let woken = false;
  let wake: (() => void) | null = null;
  const stop = log.onGrowth(() => {
    woken = true;
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    while (!signal.aborted) {
      woken = false;
      const page = await log.readAfter(last, PAGE);
      const gap = page.length > 0 ? gapBetween(last, page[0].position) : null;
      if (gap) yield gap;
      for (const { position, event } of page) {
        yield { type: 'event', id: eventIdOf(position), event };
        last = position;
        if (log.isLast(event)) return;
      }
      if (page.length === PAGE || woken) continue;
      if (page.length === 0 && (await log.isOver(last))) return;
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

/** Numbered logs show a trim as a gap; a legacy (`ms-seq`) job log cannot, and is never trimmed in practice. */
function gapBetween(last: string, next: string): FellBehind | null {
  const from = numberOf(last);
  const to = numberOf(next);
  if (from === null || to === null || to <= from + 1) return null;
  return { type: 'fell-behind', from: from + 1, to: to - 1, missed: to - 1 - from };
}
