/**
 * A push-to-pull bridge: producers push items (and end or fail it), one consumer iterates. Calls
 * `onHigh` when more than `highWaterMark` items wait and `onLow` when the consumer has drained them,
 * so a push source (a WebSocket) can be paused.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: () => void } | undefined;
  private done = false;
  private error: unknown;
  private high = false;

  constructor(
    private readonly options: { highWaterMark?: number; onHigh?: () => void; onLow?: () => void } = {},
  ) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    if (this.done) return;
    this.items.push(item);
    if (!this.high && this.items.length > (this.options.highWaterMark ?? Infinity)) {
      this.high = true;
      this.options.onHigh?.();
    }
    this.wake();
  }

  end(): void {
    this.done = true;
    this.wake();
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.error = error ?? new Error('failed');
    this.done = true;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.items.length > 0) {
        const item = this.items.shift() as T;
        if (this.high && this.items.length === 0) {
          this.high = false;
          this.options.onLow?.();
        }
        yield item;
        continue;
      }
      if (this.done) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = { resolve }));
    }
  }
}
