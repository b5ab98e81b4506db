import { parseSse, type ServerSentEvent } from './sse.js';

async function parse(chunks: string[]): Promise<ServerSentEvent[]> {
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const chunk of chunks) yield new TextEncoder().encode(chunk);
  }
  const events: ServerSentEvent[] = [];
  for await (const event of parseSse(body())) events.push(event);
  return events;
}

describe('parseSse', () => {
  it('reads events with ids, types and multi-line data; skips comments and retry', async () => {
    expect(
      await parse([
        ': hello\n\nretry: 500\nid: 3\nevent: output\ndata: {"a":1}\n\n',
        'data: one\ndata:two\n\n',
      ]),
    ).toEqual([
      { id: '3', event: 'output', data: '{"a":1}' },
      { id: undefined, event: 'message', data: 'one\ntwo' },
    ]);
  });

  it('keeps an event whose data is empty and drops a block without data', async () => {
    expect(await parse(['id: 1\nevent: ping\n\ndata:\n\n'])).toEqual([
      { id: undefined, event: 'message', data: '' },
    ]);
  });

  it('takes events split anywhere, even inside a character or a CRLF', async () => {
    const text = 'id: 7\r\nevent: output\r\ndata: "é"\r\n\r\n';
    const bytes = new TextEncoder().encode(text);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += 3) chunks.push(bytes.subarray(at, at + 3));
    async function* body(): AsyncGenerator<Uint8Array> {
      yield* chunks;
    }
    const events: ServerSentEvent[] = [];
    for await (const event of parseSse(body())) events.push(event);
    expect(events).toEqual([{ id: '7', event: 'output', data: '"é"' }]);
  });

  it('takes lone CR line endings, as the SSE format allows', async () => {
    expect(await parse(['id: 1\revent: output\rdata: x\r\r'])).toEqual([
      { id: '1', event: 'output', data: 'x' },
    ]);
  });
});
