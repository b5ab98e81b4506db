import { EventEmitter } from 'node:events';
import type { FollowedLog, LogEntry } from '../delivery/event-follower.js';
import { numberOf } from '../delivery/event-ids.js';

export interface FakeEvent {
  type: string;
  n?: number;
}

/** An in-memory event log numbered 0-1, 0-2, ...; counts its reads and who waits for it to grow. */
export class FakeLog implements FollowedLog<FakeEvent> {
  entries: LogEntry<FakeEvent>[] = [];
  reads = 0;
  over = false;
  readonly wakers = new Set<() => void>();

  constructor(events: FakeEvent[] = [], firstNumber = 1) {
    for (const [index, event] of events.entries())
      this.entries.push({ position: `0-${firstNumber + index}`, event });
  }

  append(...events: FakeEvent[]): void {
    const last = this.entries.at(-1);
    let n = last ? numberOf(last.position)! : 0;
    for (const event of events) this.entries.push({ position: `0-${++n}`, event });
    for (const wake of this.wakers) wake();
  }

  readAfter(position: string, count: number): Promise<LogEntry<FakeEvent>[]> {
    this.reads += 1;
    const after = numberOf(position) ?? 0;
    return Promise.resolve(this.entries.filter((entry) => numberOf(entry.position)! > after).slice(0, count));
  }

  isLast(event: FakeEvent): boolean {
    return event.type === 'end';
  }

  isOver(): Promise<boolean> {
    return Promise.resolve(this.over);
  }

  onGrowth(wake: () => void): () => void {
    this.wakers.add(wake);
    return () => this.wakers.delete(wake);
  }
}

export function fakeEvents(count: number): FakeEvent[] {
  return Array.from({ length: count }, (_, n) => ({ type: 'progress', n }));
}

/** Lets pending promise callbacks and I/O callbacks run (no clock involved). */
export async function settle(rounds = 5): Promise<void> {
  for (let round = 0; round < rounds; round += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** An HTTP response whose socket is full after `capacity` writes until the test drains it. */
export class FakeResponse extends EventEmitter {
  readonly chunks: string[] = [];
  destroyed = false;
  ended = false;
  statusCode = 0;
  private room: number;

  constructor(private readonly capacity = Infinity) {
    super();
    this.room = capacity;
  }

  status(code: number): this {
    this.statusCode = code;
    return this;
  }
  setHeader(): this {
    return this;
  }
  flushHeaders(): void {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    this.room -= 1;
    return this.room > 0;
  }
  end(): this {
    this.ended = true;
    return this;
  }
  drain(): void {
    this.room = this.capacity;
    this.emit('drain');
  }
  close(): void {
    this.destroyed = true;
    this.emit('close');
  }
  /** The `id:` lines written, in order. */
  ids(): string[] {
    return this.chunks.flatMap((chunk) => [...chunk.matchAll(/^id: (.*)$/gm)].map((match) => match[1]));
  }
}

/** A WebSocket whose sends complete only when the test lets them (a slow client). */
export class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  readonly sent: (string | Buffer)[] = [];
  readonly pending: ((error?: Error) => void)[] = [];
  closedWith: [number, string] | null = null;

  send(data: string | Buffer, callback: (error?: Error) => void): void {
    this.sent.push(data);
    this.pending.push(callback);
  }
  /** Completes every send handed over so far. */
  flush(): void {
    for (const callback of this.pending.splice(0)) callback();
  }
  close(code: number, reason: string): void {
    this.closedWith = [code, reason];
    this.readyState = 3;
    this.emit('close');
  }
  ping(): void {}
  terminate(): void {
    this.readyState = 3;
    this.emit('close');
  }
}
