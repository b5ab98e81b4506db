import { BadRequestException } from '@nestjs/common';
import { parseDecimalInteger } from '../common/strict-input.js';

/**
 * One event-id scheme for jobs and streams. Both logs are Redis streams whose entries are numbered
 * `0-1`, `0-2`, ...: a client sees the number (`id: 7`) and resumes after it. A job log begun before jobs
 * were numbered uses Redis' own `ms-seq` ids; its clients saw those as they are (`id: 1700000000000-0`),
 * so a job also accepts that form, and such a log goes on in it.
 *
 * The follower works on log positions (the Redis ids); these two functions are the only translation.
 */

/** The log position after which to resume (`0-0`: from the start), or null when `text` is not an id. */
export function positionOf(text: string | null | undefined, options: { legacy: boolean }): string | null {
  if (text === null || text === undefined || text === '') return '0-0';
  const n = parseDecimalInteger(text);
  if (n !== null) return n >= 0 ? `0-${n}` : null;
  return options.legacy && /^\d{1,15}-\d{1,15}$/.test(text) ? text : null;
}

/** `positionOf` for an SSE route's `Last-Event-ID` (or `?since=`): 400 saying what an id looks like. */
export function resumePositionOf(text: string | undefined, options: { legacy: boolean }): string {
  const position = positionOf(text, options);
  if (position !== null) return position;
  throw new BadRequestException(
    options.legacy
      ? 'Last-Event-ID (or since) must be an event id: a non-negative integer such as 7 (or, from before, 1700000000000-0)'
      : 'Last-Event-ID (or since) must be an event id: a non-negative integer',
  );
}

/** What a client sees for a log position: the number, or a legacy `ms-seq` id as it is. */
export function eventIdOf(position: string): number | string {
  return position.startsWith('0-') ? Number(position.slice(2)) : position;
}

/** The number of a numbered position (`0-n`), null for a legacy one. */
export function numberOf(position: string): number | null {
  return position.startsWith('0-') ? Number(position.slice(2)) : null;
}
