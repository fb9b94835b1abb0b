import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSse, type SseEvent } from './sse';

const STREAM =
  ': opening comment\r\n\r\n' +
  'event: message\r\ndata: {"type":"ready"}\r\n\r\n' +
  'data: line one\ndata: line two\n\n' +
  'id: 7\rdata: é and 😀 split anywhere\r\r' +
  'data: {"type":"done"}\n\n' +
  'data: unterminated';

async function collect(chunks: Uint8Array[]): Promise<SseEvent[]> {
  async function* gen() {
    yield* chunks;
  }
  const out: SseEvent[] = [];
  for await (const e of readSse(gen())) out.push(e);
  return out;
}

test('the same events come out wherever the byte stream is cut (CR, LF, CRLF, comments, multi-byte UTF-8)', async () => {
  const bytes = new TextEncoder().encode(STREAM);
  const whole = await collect([bytes]);
  assert.deepEqual(
    whole.map((e) => e.data),
    ['{"type":"ready"}', 'line one\nline two', 'é and 😀 split anywhere', '{"type":"done"}'],
  );
  assert.equal(whole[0].event, 'message');
  assert.equal(whole[2].id, '7');
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(await collect([bytes.slice(0, cut), bytes.slice(cut)]), whole, `cut at byte ${cut}`);
  }
  // One byte at a time.
  assert.deepEqual(await collect([...bytes].map((b) => Uint8Array.of(b))), whole);
});
