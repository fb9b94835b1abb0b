import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attachmentProblem, emptyTranscript, reduceTranscript, type Transcript, type TranscriptAction } from './chat';
import type { Message } from './platform';

const S = 'ses_1';
const ev = (type: string, properties: Record<string, unknown>): TranscriptAction => ({ type: 'event', event: { type, properties } });
const info = (id: string, role: string, created: number, extra: Record<string, unknown> = {}) => ev('message.updated', { sessionID: S, info: { id, role, sessionID: S, time: { created }, ...extra } });
const part = (messageID: string, id: string, p: Record<string, unknown>) => ev('message.part.updated', { sessionID: S, part: { id, messageID, sessionID: S, ...p } });
const delta = (messageID: string, partID: string, d: string) => ev('message.part.delta', { sessionID: S, messageID, partID, field: 'text', delta: d });
const run = (actions: TranscriptAction[], from: Transcript = emptyTranscript()) => actions.reduce(reduceTranscript, from);
const texts = (t: Transcript) => t.messages.map((m) => `${m.info.role}:${m.parts.map((p) => (p as { text?: string }).text ?? `[${p.type}]`).join('|')}`);

describe('transcript reducer', () => {
  const turn: TranscriptAction[] = [
    { type: 'sent' },
    info('u1', 'user', 1),
    part('u1', 'p0', { type: 'text', text: 'hello' }),
    info('a1', 'assistant', 2),
    part('a1', 'p1', { type: 'reasoning', text: '' }),
    delta('a1', 'p1', 'think'),
    delta('a1', 'p1', 'ing'),
    part('a1', 'p2', { type: 'text', text: '' }),
    delta('a1', 'p2', 'Hi '),
    delta('a1', 'p2', 'there'),
    part('a1', 'p3', { type: 'tool', tool: 'bash', callID: 'c1', state: { status: 'running', input: { command: 'ls' } } }),
    part('a1', 'p3', { type: 'tool', tool: 'bash', callID: 'c1', state: { status: 'completed', input: { command: 'ls' }, output: 'a\nb' } }),
    part('a1', 'p2', { type: 'text', text: 'Hi there' }),
    info('a1', 'assistant', 2, { tokens: { input: 10, output: 5 }, cost: 0.001, time: { created: 2, completed: 3 } }),
    ev('session.idle', { sessionID: S }),
  ];

  it('deltas grow parts, part updates replace them, tools move through their states, idle ends the turn', () => {
    const t = run(turn);
    assert.deepEqual(texts(t), ['user:hello', 'assistant:thinking|Hi there|[tool]']);
    const tool = t.messages[1].parts[2] as { state: { status: string; output: string } };
    assert.equal(tool.state.status, 'completed');
    assert.equal(tool.state.output, 'a\nb');
    assert.equal(t.messages[1].info.cost, 0.001);
    assert.equal(t.busy, false);
  });

  it('repeated events converge on the same transcript', () => {
    const repeated = turn.flatMap((a) => (a.type === 'event' && (a.event as { type: string }).type !== 'message.part.delta' ? [a, a] : [a]));
    assert.deepEqual(run(repeated).messages, run(turn).messages);
  });

  it('out of order: a delta before its part, a part before its message, an older update after newer deltas', () => {
    const t = run([
      { type: 'sent' },
      delta('a1', 'p2', 'Hel'),
      part('a1', 'p2', { type: 'text', text: 'H' }), // older than the delta already shown
      delta('a1', 'p2', 'lo'),
      info('a1', 'assistant', 5),
      info('u1', 'user', 4),
      part('u1', 'p0', { type: 'text', text: 'hi' }),
    ]);
    assert.deepEqual(texts(t), ['user:hi', 'assistant:Hello'], 'sorted by creation time; the text not cut short');
    assert.equal(t.busy, true);
  });

  it('abort mid-stream keeps what arrived; the harness\'s abort error is not shown as an error', () => {
    let t = run(turn.slice(0, 9));
    t = reduceTranscript(t, { type: 'aborted' });
    assert.equal(t.busy, false);
    assert.equal(t.aborted, true);
    assert.deepEqual(texts(t), ['user:hello', 'assistant:thinking|Hi ']);
    t = reduceTranscript(t, ev('session.error', { sessionID: S, error: { name: 'MessageAbortedError', data: { message: 'aborted' } } }));
    assert.equal(t.error, undefined);
  });

  it('error events end the turn with their message; a new send clears it', () => {
    let t = run([{ type: 'sent' }, ev('session.error', { sessionID: S, error: { name: 'UnknownError', data: { message: 'model overloaded' } } })]);
    assert.equal(t.busy, false);
    assert.equal(t.error, 'model overloaded');
    t = reduceTranscript(t, { type: 'sent' });
    assert.equal(t.error, undefined);
    assert.equal(reduceTranscript(t, { type: 'failed', message: 'HTTP 502' }).error, 'HTTP 502');
  });

  it('unknown and malformed events change nothing', () => {
    const t = run(turn);
    for (const e of [null, 42, 'x', {}, { type: 'message.part.updated', properties: { part: { id: 'x' } } }, { type: 'message.updated', properties: { info: { role: 'user' } } }, { type: 'server.heartbeat', properties: {} }, { type: 'message.part.delta', properties: { messageID: 'a1' } }]) {
      assert.equal(reduceTranscript(t, { type: 'event', event: e }), t, JSON.stringify(e));
    }
  });

  it('history is the truth for the ids it has; live messages it does not have yet stay', () => {
    const live = run([{ type: 'sent' }, info('a2', 'assistant', 9), delta('a2', 'p9', 'streaming')]);
    const history: Message[] = [
      { info: { id: 'u1', role: 'user', time: { created: 1 } }, parts: [{ id: 'p0', type: 'text', text: 'hello' }] },
      { info: { id: 'a1', role: 'assistant', time: { created: 2 } }, parts: [{ id: 'p1', type: 'text', text: 'done' }] },
    ] as Message[];
    const t = reduceTranscript(live, { type: 'history', messages: history });
    assert.deepEqual(texts(t), ['user:hello', 'assistant:done', 'assistant:streaming']);
  });
});

describe('attachment checks', () => {
  const png = (name: string, bytes = 1000) => ({ name, mimeType: 'image/png', bytes });
  it('accepts up to 10 images of the four types, each up to 5 MiB', () => {
    assert.equal(attachmentProblem([png('a.png'), { name: 'b.jpg', mimeType: 'image/jpeg', bytes: 5 * 1024 * 1024 }, { name: 'c.gif', mimeType: 'image/gif', bytes: 1 }, { name: 'd.webp', mimeType: 'image/webp', bytes: 1 }]), null);
    assert.equal(attachmentProblem(Array.from({ length: 10 }, (_, i) => png(`${i}.png`))), null);
  });
  it('refuses with a precise message: too many, wrong type, too large, empty', () => {
    assert.match(attachmentProblem(Array.from({ length: 11 }, (_, i) => png(`${i}.png`)))!, /At most 10 images per message \(11 given\)/);
    assert.match(attachmentProblem([png('a.png')], 10)!, /At most 10/);
    assert.match(attachmentProblem([{ name: 'notes.pdf', mimeType: 'application/pdf', bytes: 10 }])!, /notes\.pdf is application\/pdf: only PNG, JPEG, GIF and WebP/);
    assert.match(attachmentProblem([png('big.png', 6 * 1024 * 1024)])!, /big\.png is 6\.0 MiB: at most 5 MiB/);
    assert.match(attachmentProblem([png('zero.png', 0)])!, /zero\.png is empty/);
  });
});
