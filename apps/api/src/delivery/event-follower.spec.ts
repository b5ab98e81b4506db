import { FakeLog, fakeEvents, settle, type FakeEvent } from '../testing/delivery-fakes.js';
import { follow, type FollowedItem } from './event-follower.js';

async function collect(items: AsyncIterable<FollowedItem<FakeEvent>>): Promise<FollowedItem<FakeEvent>[]> {
  const all: FollowedItem<FakeEvent>[] = [];
  for await (const item of items) all.push(item);
  return all;
}

describe('follow', () => {
  it('yields the events after the position, in order, with their numbers, and stops after the last', async () => {
    const log = new FakeLog([...fakeEvents(4), { type: 'end' }, { type: 'progress' }]);
    const items = await collect(follow(log, '0-2', new AbortController().signal));
    expect(items.map((item) => item.type === 'event' && item.id)).toEqual([3, 4, 5]);
    expect(items.at(-1)).toMatchObject({ type: 'event', event: { type: 'end' } });
    expect(log.wakers.size).toBe(0);
  });

  it('pages through a long log and waits for it to grow', async () => {
    const log = new FakeLog(fakeEvents(300));
    const items: FollowedItem<FakeEvent>[] = [];
    const done = (async () => {
      for await (const item of follow(log, '0-0', new AbortController().signal)) items.push(item);
    })();
    await settle(20);
    expect(items).toHaveLength(300);
    expect(log.wakers.size).toBe(1);
    log.append({ type: 'progress' }, { type: 'end' });
    await done;
    expect(items.map((item) => item.type === 'event' && item.id)).toEqual(
      Array.from({ length: 302 }, (_, index) => index + 1),
    );
  });

  it('says which events were trimmed before it read them, then goes on from the oldest kept', async () => {
    const log = new FakeLog([{ type: 'progress' }, { type: 'end' }], 10);
    const items = await collect(follow(log, '0-3', new AbortController().signal));
    expect(items[0]).toEqual({ type: 'fell-behind', from: 4, to: 9, missed: 6 });
    expect(items.slice(1).map((item) => item.type === 'event' && item.id)).toEqual([10, 11]);
  });

  it('ends when the log says nothing more will come (a client resuming after the end)', async () => {
    const log = new FakeLog([{ type: 'end' }]);
    log.over = true;
    expect(await collect(follow(log, '0-1', new AbortController().signal))).toEqual([]);
  });

  it('keeps legacy (ms-seq) positions as their ids', async () => {
    const log = new FakeLog();
    log.readAfter = (position) => {
      log.reads += 1;
      return Promise.resolve(
        position === '1700000000000-1' ? [{ position: '1700000000000-2', event: { type: 'end' } }] : [],
      );
    };
    const items = await collect(follow(log, '1700000000000-1', new AbortController().signal));
    expect(items).toEqual([{ type: 'event', id: '1700000000000-2', event: { type: 'end' } }]);
  });

  it('pulls only as fast as it is consumed: a consumer that stops reading stops the reads', async () => {
    const log = new FakeLog(fakeEvents(1000));
    const abort = new AbortController();
    const items = follow(log, '0-0', abort.signal);
    await items.next();
    await settle();
    expect(log.reads).toBe(1);
    for (let taken = 1; taken < 128; taken += 1) await items.next();
    await settle();
    expect(log.reads).toBe(1);
    await items.next();
    expect(log.reads).toBe(2);
    abort.abort();
    await items.return(undefined);
    expect(log.wakers.size).toBe(0);
  });

  it('stops waiting when aborted', async () => {
    const log = new FakeLog(fakeEvents(2));
    const abort = new AbortController();
    const done = collect(follow(log, '0-0', abort.signal));
    await settle();
    abort.abort();
    expect(await done).toHaveLength(2);
    expect(log.wakers.size).toBe(0);
  });
});
