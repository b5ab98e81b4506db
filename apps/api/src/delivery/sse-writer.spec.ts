import { FakeLog, FakeResponse, fakeEvents, settle } from '../testing/delivery-fakes.js';
import { follow } from './event-follower.js';
import { serveSse } from './sse-writer.js';

describe('serveSse', () => {
  it('writes each event with its id, type and payload, then ends after the last', async () => {
    const response = new FakeResponse();
    const log = new FakeLog([{ type: 'progress', n: 1 }, { type: 'end' }]);
    await serveSse(response, follow(log, '0-0', new AbortController().signal), (event) => ({
      ...event,
      x: 1,
    }));
    expect(response.statusCode).toBe(200);
    expect(response.chunks[0]).toBe('retry: 2000\n\n');
    expect(response.chunks.slice(1)).toEqual([
      'id: 1\nevent: progress\ndata: {"type":"progress","n":1,"x":1}\n\n',
      'id: 2\nevent: end\ndata: {"type":"end","x":1}\n\n',
    ]);
    expect(response.ended).toBe(true);
  });

  it('writes a fell-behind notice without an id, so Last-Event-ID does not move past what was missed', async () => {
    const response = new FakeResponse();
    await serveSse(
      response,
      follow(new FakeLog([{ type: 'end' }], 5), '0-0', new AbortController().signal),
      (e) => e,
    );
    expect(response.chunks[1]).toBe(
      'event: fell-behind\ndata: {"type":"fell-behind","from":1,"to":4,"missed":4}\n\n',
    );
    expect(response.ids()).toEqual(['5']);
  });

  it('back-pressure: while the socket is full the follower reads no further, and goes on once it drains', async () => {
    const response = new FakeResponse(2); // full after the retry line and one event
    const log = new FakeLog([...fakeEvents(1000), { type: 'end' }]);
    const done = serveSse(response, follow(log, '0-0', new AbortController().signal), (event) => event);
    await settle(20);
    expect(response.ids()).toEqual(['1']);
    expect(log.reads).toBe(1);
    response.drain();
    await settle(20);
    expect(response.ids()).toEqual(['1', '2', '3']);
    expect(log.reads).toBe(1);
    for (let drains = 0; drains < 1000 && !response.ended; drains += 1) {
      response.drain();
      await settle(2);
    }
    await done;
    expect(response.ids()).toHaveLength(1001);
    expect(log.reads).toBe(Math.ceil(1001 / 128));
  });

  it('stops following when the client goes away while it waits for a drain', async () => {
    const response = new FakeResponse(2);
    const log = new FakeLog(fakeEvents(10));
    const done = serveSse(response, follow(log, '0-0', new AbortController().signal), (event) => event);
    await settle(20);
    response.close();
    await done;
    expect(response.ids()).toEqual(['1']);
    expect(log.wakers.size).toBe(0);
  });
});
