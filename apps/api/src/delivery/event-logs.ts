import { Injectable } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobEvent, StreamEvent } from '#contracts';
import { EventLog, JobStore, StreamStore } from '#cluster';
import { EventHub } from './event-hub.js';
import type { FollowedLog } from './event-follower.js';
import { numberOf } from './event-ids.js';

/** The record turns final a moment before the final event is logged: the event gets this long to come. */
const FINAL_EVENT_GRACE_MS = 1000;

/** A job's and a stream's event logs, as the one follower reads them. */
@Injectable()
export class EventLogs {
  constructor(
    private readonly jobEvents: EventLog,
    private readonly jobs: JobStore,
    private readonly streams: StreamStore,
    private readonly hub: EventHub,
  ) {}

  /** A job is a one-batch stream: its log ends with `completed` or `failed`. */
  job(jobId: string): FollowedLog<JobEvent> {
    const readAfter = async (position: string, count: number) =>
      (await this.jobEvents.readAfter(jobId, position, count)).map(({ id, event }) => ({
        position: id,
        event,
      }));
    return {
      readAfter,
      isLast: (event) => event.type === 'completed' || event.type === 'failed',
      isOver: async (position) => {
        const record = await this.jobs.get(jobId);
        if (!record) return true;
        if (record.status !== 'completed' && record.status !== 'failed') return false;
        // If the final event never comes, the client resumed after it.
        await sleep(FINAL_EVENT_GRACE_MS);
        return (await readAfter(position, 1)).length === 0;
      },
      onGrowth: (wake) => this.hub.listen(jobId, { onEvent: wake, onResync: wake }),
    };
  }

  stream(streamId: string): FollowedLog<StreamEvent> {
    return {
      readAfter: async (position, count) => {
        const page = await this.streams.readAfter(streamId, numberOf(position) ?? 0, count);
        return page.map(({ id, event }) => ({ position: `0-${id}`, event }));
      },
      isLast: (event) => event.type === 'end',
      isOver: async (position) => {
        const record = await this.streams.get(streamId);
        return !record || (record.state === 'ended' && record.lastEventId <= (numberOf(position) ?? 0));
      },
      onGrowth: (wake) => this.hub.onStreamEvent(streamId, wake),
    };
  }
}
