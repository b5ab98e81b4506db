import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { RedisClient } from '#cluster';
import type { LoggedJobEvent } from '#contracts';
import { EventLog, KeySpace } from '#cluster';
import { SUBSCRIBER } from '../dispatch/tokens.js';

export interface EventListener {
  onEvent(event: LoggedJobEvent): void;
  /** Pub/sub may have dropped messages (the subscriber reconnected): re-read the log. */
  onResync(): void;
}

/**
 * Fans job events out to any number of SSE/WebSocket clients through ONE Redis subscription. Pub/sub is
 * only the fast path: listeners re-read the event log after a reconnect, so nothing is missed.
 */
@Injectable()
export class EventHub implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(EventHub.name);
  private readonly listeners = new Map<string, Set<EventListener>>();
  private readonly taps = new Set<(event: LoggedJobEvent) => void>();
  /** Stream followers read the stream's log themselves: a message only wakes them. */
  private readonly streamWakers = new Map<string, Set<() => void>>();
  private connectedOnce = false;

  constructor(
    @Inject(SUBSCRIBER) private readonly subscriber: RedisClient,
    private readonly keys: KeySpace,
  ) {}

  async onModuleInit(): Promise<void> {
    this.subscriber.on('message', (channel: string, message: string) =>
      channel === this.keys.streamEventsChannel ? this.wakeStream(message) : this.dispatch(message),
    );
    this.subscriber.on('ready', () => {
      if (this.connectedOnce) this.resyncAll();
      this.connectedOnce = true;
    });
    if (this.subscriber.status === 'ready') this.connectedOnce = true;
    await this.subscriber.subscribe(this.keys.eventsChannel, this.keys.streamEventsChannel);
  }

  async onModuleDestroy(): Promise<void> {
    this.subscriber.disconnect();
  }

  listen(jobId: string, listener: EventListener): () => void {
    const set = this.listeners.get(jobId) ?? new Set<EventListener>();
    set.add(listener);
    this.listeners.set(jobId, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(jobId);
    };
  }

  /** Calls `wake` whenever the stream's log grows (and after a subscriber reconnect). */
  onStreamEvent(streamId: string, wake: () => void): () => void {
    const set = this.streamWakers.get(streamId) ?? new Set<() => void>();
    set.add(wake);
    this.streamWakers.set(streamId, set);
    return () => {
      set.delete(wake);
      if (set.size === 0) this.streamWakers.delete(streamId);
    };
  }

  /** Only the stream id (`streamId|id|json`) is needed: the followers read the events from the log. */
  private wakeStream(message: string): void {
    const streamId = message.slice(0, message.indexOf('|'));
    for (const wake of this.streamWakers.get(streamId) ?? []) wake();
  }

  /** Sees every job's events as they are published (metrics); returns the function that stops it. */
  tap(observer: (event: LoggedJobEvent) => void): () => void {
    this.taps.add(observer);
    return () => this.taps.delete(observer);
  }

  private dispatch(message: string): void {
    const event = EventLog.parseMessage(message);
    if (!event) return;
    for (const observer of this.taps) {
      try {
        observer(event);
      } catch (error) {
        this.logger.warn(`event tap failed: ${(error as Error).message}`);
      }
    }
    for (const listener of this.listeners.get(event.jobId) ?? []) {
      try {
        listener.onEvent(event);
      } catch (error) {
        this.logger.warn(`listener failed: ${(error as Error).message}`);
      }
    }
  }

  private resyncAll(): void {
    for (const set of this.listeners.values()) for (const listener of set) listener.onResync();
    for (const set of this.streamWakers.values()) for (const wake of set) wake();
  }
}
