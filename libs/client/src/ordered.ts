/**
 * Maps an async iterable with up to `concurrency` calls of `fn` in flight, yielding the results in
 * the source's order. The source is read ahead while results wait (so a slow `fn` does not hold up
 * reading), and results are yielded as soon as the oldest is ready.
 */
export async function* orderedMap<T, R>(
  source: AsyncIterable<T>,
  fn: (item: T) => Promise<R>,
  concurrency: number,
): AsyncGenerator<R> {
  const iterator = source[Symbol.asyncIterator]();
  const pending: Promise<R>[] = [];
  let next: Promise<IteratorResult<T>> | undefined;
  let done = false;
  const start = (item: T) => {
    const result = fn(item);
    result.catch(() => undefined); // awaited in order below; no unhandled rejection meanwhile
    pending.push(result);
  };
  try {
    for (;;) {
      if (!done && !next && pending.length < Math.max(1, concurrency)) next = iterator.next();
      if (pending.length === 0) {
        if (!next) return;
        const result = await next;
        next = undefined;
        if (result.done) done = true;
        else start(result.value);
        continue;
      }
      const head = pending[0];
      const winner = next
        ? await Promise.race([
            head.then(
              () => 'head' as const,
              () => 'head' as const,
            ),
            next.then(
              () => 'next' as const,
              () => 'next' as const,
            ),
          ])
        : 'head';
      if (winner === 'next' && next) {
        const result = await next;
        next = undefined;
        if (result.done) done = true;
        else start(result.value);
        continue;
      }
      yield await pending.shift()!;
    }
  } finally {
    if (!done) void iterator.return?.(undefined)?.catch(() => undefined);
  }
}
