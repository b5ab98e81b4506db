import { FakeLog, FakeSocket, fakeEvents, settle, type FakeEvent } from '../testing/delivery-fakes.js';
import { follow } from './event-follower.js';
import { serveWebSocket, type EventSocket, type WebSocketShape } from './websocket-writer.js';

const shape: WebSocketShape<FakeEvent> = {
  payloadOf: (event) => event,
  attachmentOf: (event) => (event.type === 'output' ? Promise.resolve(Buffer.from('bytes')) : null),
  endReason: 'end of log',
};

function serve(ws: FakeSocket, log: FakeLog): Promise<void> {
  return serveWebSocket(ws as unknown as EventSocket, (signal) => follow(log, '0-0', signal), shape);
}

describe('serveWebSocket', () => {
  it("sends each event as a text message with its id, an output's bytes after it, and closes at the end", async () => {
    const ws = new FakeSocket();
    const log = new FakeLog([{ type: 'output' }, { type: 'end' }]);
    const done = serve(ws, log);
    for (let round = 0; round < 10 && ws.closedWith === null; round += 1) {
      await settle();
      ws.flush();
    }
    await done;
    expect(ws.sent).toEqual(['{"id":1,"type":"output"}', Buffer.from('bytes'), '{"id":2,"type":"end"}']);
    expect(ws.closedWith).toEqual([1000, 'end of log']);
  });

  it('back-pressure: one message at a time; a client that does not take it holds back the follower', async () => {
    const ws = new FakeSocket();
    const log = new FakeLog([...fakeEvents(500), { type: 'end' }]);
    const done = serve(ws, log);
    await settle(20);
    expect(ws.sent).toHaveLength(1);
    expect(log.reads).toBe(1);
    ws.flush();
    await settle(20);
    expect(ws.sent).toHaveLength(2);
    for (let round = 0; round < 1000 && ws.closedWith === null; round += 1) {
      ws.flush();
      await settle(2);
    }
    await done;
    expect(ws.sent).toHaveLength(501);
    expect(log.reads).toBe(Math.ceil(501 / 128));
  });

  it('stops following when the client goes away', async () => {
    const ws = new FakeSocket();
    const log = new FakeLog(fakeEvents(10));
    const done = serve(ws, log);
    await settle(20);
    ws.terminate();
    ws.flush();
    await done;
    expect(ws.sent).toHaveLength(1);
    expect(log.wakers.size).toBe(0);
  });
});
