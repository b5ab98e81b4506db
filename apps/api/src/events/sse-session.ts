import type { Response } from 'express';
import type { JobEvent, LoggedJobEvent } from '../../../../libs/contracts/src/index.js';
import { isEventAfter } from '../../../../libs/cluster/src/index.js';
import { outputUrl } from '../jobs/job-view.js';
import type { EventHub } from './event-hub.js';

export interface EventSource {
  readAfter(jobId: string, afterId?: string): Promise<LoggedJobEvent[]>;
  isFinished(jobId: string): Promise<boolean>;
}

const KEEPALIVE_MS = 15_000;
const FINAL_EVENT_GRACE_MS = 1000;
const FINAL_EVENT_POLL_MS = 100;

function isFinal(event: JobEvent): boolean {
  return event.type === 'completed' || event.type === 'failed';
}

/**
 * One SSE client of one job: replays the log after `Last-Event-ID`, then follows live events, each
 * exactly once and in log order, and ends after the job's final event.
 */
export class SseSession {
  private lastId: string | undefined;
  private buffered: LoggedJobEvent[] = [];
  private replaying = false;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private unsubscribe: () => void = () => undefined;
  private keepalive: NodeJS.Timeout | undefined;

  constructor(
    private readonly jobId: string,
    private readonly response: Response,
    private readonly hub: EventHub,
    private readonly source: EventSource,
    lastEventId: string | undefined,
  ) {
    this.lastId = lastEventId;
  }

  async start(): Promise<void> {
    this.response.status(200);
    this.response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    this.response.setHeader('Cache-Control', 'no-cache, no-transform');
    this.response.setHeader('Connection', 'keep-alive');
    this.response.setHeader('X-Accel-Buffering', 'no');
    this.response.flushHeaders();
    this.response.write('retry: 2000\n\n');
    this.response.on('close', () => this.close());
    this.unsubscribe = this.hub.listen(this.jobId, {
      onEvent: (event) => (this.replaying ? this.buffered.push(event) : this.send(event)),
      onResync: () => this.catchUp(),
    });
    this.keepalive = setInterval(() => this.response.write(': keepalive\n\n'), KEEPALIVE_MS);
    this.catchUp();
    await this.chain;
    if (!this.closed && (await this.source.isFinished(this.jobId).catch(() => false))) {
      // The record turns final a moment before the final event is logged: give the event that moment
      // (it ends the stream when it comes). If it never does, the client resumed after it.
      for (let waited = 0; waited < FINAL_EVENT_GRACE_MS && !this.closed; waited += FINAL_EVENT_POLL_MS) {
        await new Promise((resolve) => setTimeout(resolve, FINAL_EVENT_POLL_MS));
        this.catchUp();
        await this.chain;
      }
      if (!this.closed) {
        this.response.end();
        this.close();
      }
    }
  }

  private catchUp(): void {
    this.chain = this.chain.then(async () => {
      if (this.closed) return;
      this.replaying = true;
      try {
        for (const event of await this.source.readAfter(this.jobId, this.lastId)) this.send(event);
      } catch {
        // Redis away: the hub resyncs us when the subscriber is back.
      }
      const live = this.buffered;
      this.buffered = [];
      this.replaying = false;
      for (const event of live) this.send(event);
    });
  }

  private send(logged: LoggedJobEvent): void {
    if (this.closed) return;
    if (this.lastId && !isEventAfter(logged.id, this.lastId)) return;
    this.lastId = logged.id;
    const { event } = logged;
    const payload =
      event.type === 'output'
        ? { jobId: this.jobId, ...event, url: outputUrl(this.jobId, event.index) }
        : { jobId: this.jobId, ...event };
    this.response.write(`id: ${logged.id}\nevent: ${event.type}\ndata: ${JSON.stringify(payload)}\n\n`);
    if (isFinal(event)) {
      this.response.end();
      this.close();
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    this.unsubscribe();
  }
}
