/** One Server-Sent Event as the stream carried it. */
export interface ServerSentEvent {
  id?: string;
  event: string;
  data: string;
}

/** Parses an SSE byte stream (text/event-stream) into events; comments and `retry:` are skipped. */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let current: Partial<ServerSentEvent> & { data?: string } = {};
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (current.data !== undefined) {
          yield { id: current.id, event: current.event ?? 'message', data: current.data };
        }
        current = {};
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') current.data = current.data === undefined ? value : `${current.data}\n${value}`;
      else if (field === 'event') current.event = value;
      else if (field === 'id') current.id = value;
    }
  }
}
