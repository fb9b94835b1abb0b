/**
 * Server-sent events over any byte stream. Parsing (chunk boundaries anywhere, multi-line `data`,
 * comments, CR/LF/CRLF) is eventsource-parser's; this only adapts it to async iteration.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export type SseEvent = Pick<EventSourceMessage, 'event' | 'data' | 'id'>;

export async function* readSse(chunks: AsyncIterable<Uint8Array | string>): AsyncGenerator<SseEvent> {
  const queue: SseEvent[] = [];
  const parser = createParser({ onEvent: (e) => queue.push({ event: e.event, data: e.data, id: e.id }) });
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of chunks) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    while (queue.length) yield queue.shift()!;
  }
  const rest = decoder.decode();
  if (rest) parser.feed(rest);
  // A final event without its blank line is incomplete by the spec and is dropped, as browsers do.
  while (queue.length) yield queue.shift()!;
}
