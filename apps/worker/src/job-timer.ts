import type { JobTimings } from '#contracts';

type Stage = 'fetchMs' | 'encodeMs' | 'storeOutputMs';

/** Adds up where one job's time goes on the node, for the `timings` of its record. */
export class JobTimer {
  private readonly spent: Record<Stage, number> = { fetchMs: 0, encodeMs: 0, storeOutputMs: 0 };

  constructor(
    private readonly queueWaitMs: number,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Passes `source` through, adding the time spent waiting for each frame to the fetch stage. */
  async *frames(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const iterator = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        const started = this.clock();
        const next = await iterator.next();
        this.spent.fetchMs += this.clock() - started;
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Consumer stopped early or failed: let the source release its buffers.
      await iterator.return?.();
    }
  }

  encode<T>(work: () => Promise<T>): Promise<T> {
    return this.time('encodeMs', work);
  }

  storeOutput<T>(work: () => Promise<T>): Promise<T> {
    return this.time('storeOutputMs', work);
  }

  timings(): JobTimings {
    const ms = (value: number) => Math.round(value * 10) / 10;
    return {
      queueWaitMs: ms(Math.max(0, this.queueWaitMs)),
      fetchMs: ms(this.spent.fetchMs),
      encodeMs: ms(this.spent.encodeMs),
      storeOutputMs: ms(this.spent.storeOutputMs),
    };
  }

  private async time<T>(stage: Stage, work: () => Promise<T>): Promise<T> {
    const started = this.clock();
    try {
      return await work();
    } finally {
      this.spent[stage] += this.clock() - started;
    }
  }
}
