import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** One Server-Sent Event as the stream carried it. */
export interface ServerSentEvent {
  id?: string;
  event: string;
  data: string;
}

/** Parses an SSE byte stream (text/event-stream) into events; comments and `retry:` are skipped. */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let parsed: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => parsed.push(message) });
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    const ready = parsed;
    parsed = [];
    for (const { id, event, data } of ready) yield { id, event: event ?? 'message', data };
  }
}
