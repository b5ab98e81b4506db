import type { RedisClient } from './redis-connection.js';
import type { JobEvent, LoggedJobEvent } from '#contracts';
import type { KeySpace } from './keys.js';
import { LuaScript } from './lua-script.js';

/**
 * Appends to the job's event stream and publishes the entry in one step. The stream is what clients
 * resume from; the publish is only a low-latency hint. With a dedup field, an event is recorded once per
 * job even when the job runs twice (exactly-once delivery per output).
 *
 * Entries are numbered `0-1`, `0-2`, ... as a stream's are, so a job's event id is a plain integer. A
 * log begun before that (Redis' own `ms-seq` ids, which clients may still hold) keeps its form: an
 * explicit id below its last one would be refused.
 */
/**
 * The Lua that appends ARGV[o + 5], ARGV[o + 6], ... (event, dedup key, ...) to the stream `events`
 * (dedup hash `emitted`) and publishes each one; ARGV[o + 1 .. o + 4] are the channel, the TTL, the
 * stream's length bound and the job id (see `appendArguments`). Leaves the ids in `ids`.
 */
export function appendEventsLua(events: string, emitted: string): string {
  return `
local ids = {}
local n = 0
local top = redis.call('XREVRANGE', ${events}, '+', '-', 'COUNT', 1)[1]
if top then
  local ms, seq = string.match(top[1], '^(%d+)-(%d+)$')
  n = ms == '0' and tonumber(seq) or -1
end
for i = o + 5, #ARGV, 2 do
  local event, dedup = ARGV[i], ARGV[i + 1]
  if dedup ~= '' and redis.call('HSETNX', ${emitted}, dedup, '1') == 0 then
    ids[#ids + 1] = false
  else
    local explicit = '*'
    if n >= 0 then
      n = n + 1
      explicit = '0-' .. n
    end
    local id = redis.call('XADD', ${events}, 'MAXLEN', '~', ARGV[o + 3], explicit, 'e', event)
    redis.call('PUBLISH', ARGV[o + 1], ARGV[o + 4] .. '|' .. id .. '|' .. event)
    ids[#ids + 1] = id
  end
end
redis.call('EXPIRE', ${events}, ARGV[o + 2])
redis.call('EXPIRE', ${emitted}, ARGV[o + 2])`;
}

const APPEND_AND_PUBLISH = new LuaScript(
  'encoderAppendAndPublishAll',
  `local o = 0
${appendEventsLua('KEYS[1]', 'KEYS[2]')}
return ids`,
  2,
);

const MAX_EVENTS_PER_JOB = 10_000;

/** Events whose repetition a client must never see. */
export function dedupKeyOf(event: JobEvent): string {
  switch (event.type) {
    case 'output':
      return `output:${event.index}`;
    case 'completed':
    case 'failed':
      return 'final';
    default:
      return '';
  }
}

/** The arguments of `appendEventsLua` (from ARGV[o + 1] on) for `events` of `jobId`. */
export function appendArguments(
  keys: KeySpace,
  retentionSeconds: number,
  jobId: string,
  events: JobEvent[],
): string[] {
  return [
    keys.eventsChannel,
    String(retentionSeconds),
    String(MAX_EVENTS_PER_JOB),
    jobId,
    ...events.flatMap((event) => [JSON.stringify(event), dedupKeyOf(event)]),
  ];
}

export class EventLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly retentionSeconds: number,
  ) {}

  /** Returns the event's id, or null when an equal event was already recorded. */
  async append(jobId: string, event: JobEvent): Promise<string | null> {
    return (await this.appendAll(jobId, [event]))[0];
  }

  /** Appends events in order in one round trip; each id, or null where an equal event was recorded. */
  async appendAll(jobId: string, events: JobEvent[]): Promise<(string | null)[]> {
    const ids = await APPEND_AND_PUBLISH.run(
      this.redis,
      [this.keys.events(jobId), this.keys.emitted(jobId)],
      appendArguments(this.keys, this.retentionSeconds, jobId, events),
    );
    return (ids as unknown[]).map((id) => (typeof id === 'string' ? id : null));
  }

  /** Events recorded after the log position `afterId` (exclusive), or all of them; at most `count`. */
  async readAfter(jobId: string, afterId?: string, count?: number): Promise<LoggedJobEvent[]> {
    const start = afterId ? `(${afterId}` : '-';
    const key = this.keys.events(jobId);
    const entries =
      count === undefined
        ? await this.redis.xrange(key, start, '+')
        : await this.redis.xrange(key, start, '+', 'COUNT', count);
    return entries.map(([id, fields]) => ({ id, jobId, event: JSON.parse(fields[1]) as JobEvent }));
  }

  static parseMessage(message: string): LoggedJobEvent | null {
    const first = message.indexOf('|');
    const second = message.indexOf('|', first + 1);
    if (first < 0 || second < 0) return null;
    try {
      return {
        jobId: message.slice(0, first),
        id: message.slice(first + 1, second),
        event: JSON.parse(message.slice(second + 1)) as JobEvent,
      };
    } catch {
      return null;
    }
  }
}
