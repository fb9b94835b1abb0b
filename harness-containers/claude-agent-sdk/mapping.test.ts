/**
 * The Claude Agent SDK → opencode mapping, on SDK message sequences shaped like those the SDK
 * 0.3.330 (Claude Code 2.1.330) sends against the fake Anthropic API: what the thread holds, what
 * the reply is, and which bus events go out in which order.
 * Run: node --import tsx --test harness-containers/claude-agent-sdk/mapping.test.ts
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadPrompt, TurnMapper, preparePrompt, toolTitle, type SdkMessage } from './mapping';
import type { AssistantMessage, Message, ReasoningPart, TextPart, ToolPart } from './opencode';

interface Emitted {
  type: string;
  properties: Record<string, unknown>;
}

function turn(text = 'hello', costBefore = 0) {
  const events: Emitted[] = [];
  const thread: Message[] = [];
  let clock = 1_000;
  const mapper = new TurnMapper(
    {
      sessionID: 'ses_test',
      modelID: 'claude-sonnet-4-5',
      providerID: 'anthropic',
      cwd: '/work/repo',
      // As the wire sees them: serialized when emitted.
      emit: (type, properties) => events.push({ type, properties: JSON.parse(JSON.stringify(properties)) as Record<string, unknown> }),
      record: (m) => thread.push(m),
      now: () => clock++,
    },
    preparePrompt([{ type: 'text', text }]),
  );
  mapper.start();
  const feed = (...messages: SdkMessage[]) => messages.forEach((m) => mapper.handle(m));
  const finish = (result?: SdkMessage, failure?: string) => mapper.finish(result, failure, costBefore);
  return { mapper, events, thread, feed, finish };
}

// SDK messages, as the SDK sends them (only the fields that matter).
const ev = (event: Record<string, unknown>, parent: string | null = null): SdkMessage => ({ type: 'stream_event', event, parent_tool_use_id: parent });
const start = (id: string, input = 100) => ev({ type: 'message_start', message: { id, role: 'assistant', content: [], usage: { input_tokens: input, output_tokens: 1, cache_read_input_tokens: 5, cache_creation_input_tokens: 0 } } });
const blockStart = (index: number, block: Record<string, unknown>) => ev({ type: 'content_block_start', index, content_block: block });
const delta = (index: number, d: Record<string, unknown>) => ev({ type: 'content_block_delta', index, delta: d });
const blockStop = (index: number) => ev({ type: 'content_block_stop', index });
const messageDelta = (stop: string, output: number) => ev({ type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: output } });
const stop = () => ev({ type: 'message_stop' });
const assistant = (id: string, block: Record<string, unknown>, extra: Record<string, unknown> = {}): SdkMessage => ({
  type: 'assistant',
  message: { id, role: 'assistant', content: [block], stop_reason: null, usage: { input_tokens: 100, output_tokens: 1 } },
  parent_tool_use_id: null,
  ...extra,
});
const toolResult = (id: string, content: unknown, isError = false): SdkMessage => ({
  type: 'user',
  message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content, is_error: isError }] },
  parent_tool_use_id: null,
});
const result = (cost: number, extra: Record<string, unknown> = {}): SdkMessage => ({
  type: 'result',
  subtype: 'success',
  is_error: false,
  result: 'done',
  total_cost_usd: cost,
  usage: { input_tokens: 100, output_tokens: 20 },
  terminal_reason: 'completed',
  ...extra,
});

function textTurn(t: ReturnType<typeof turn>, id: string, pieces: string[]) {
  t.feed(start(id), blockStart(0, { type: 'text', text: '' }), ...pieces.map((p) => delta(0, { type: 'text_delta', text: p })));
  t.feed(assistant(id, { type: 'text', text: pieces.join('') }), blockStop(0), messageDelta('end_turn', 17), stop());
}

const partTypes = (m: Message) => m.parts.map((p) => p.type);
const types = (events: Emitted[]) => events.map((e) => e.type);

describe('TurnMapper: a plain reply', () => {
  it('records the user message and one assistant message with step-start, text and step-finish', () => {
    const t = turn('hi there', 0.25);
    textTurn(t, 'msg_api_1', ['Hello', ' world']);
    const reply = t.finish(result(0.3));

    assert.equal(t.thread.length, 2);
    const [user, answer] = t.thread as [Message, AssistantMessage];
    assert.equal(user.info.role, 'user');
    assert.deepEqual(
      user.parts.map((p) => [p.type, (p as TextPart).text]),
      [['text', 'hi there']],
    );
    assert.equal(reply, answer);
    assert.equal(answer.info.parentID, user.info.id);
    assert.deepEqual(partTypes(answer), ['step-start', 'text', 'step-finish']);
    assert.equal((answer.parts[1] as TextPart).text, 'Hello world');
    assert.equal(answer.info.finish, 'stop');
    assert.deepEqual(answer.info.tokens, { input: 100, output: 17, reasoning: 0, cache: { read: 5, write: 0 } });
    assert.ok(Math.abs(answer.info.cost - 0.05) < 1e-9, 'the cost is this turn’s share of the SDK’s running total');
    assert.ok(answer.info.time.completed! >= answer.info.time.created);
    assert.equal(answer.info.error, undefined);
    for (const m of t.thread) for (const p of m.parts) assert.deepEqual([p.sessionID, p.messageID], ['ses_test', m.info.id]);
    assert.ok(
      t.thread.flatMap((m) => m.parts.map((p) => p.id)).every((id, i, all) => /^prt_[0-9a-f]{12}[0-9A-Za-z]{14}$/.test(id) && all.indexOf(id) === i),
      'part ids are opencode-shaped and unique',
    );
  });

  it('publishes opencode’s events in opencode’s order, with text deltas on the text part', () => {
    const t = turn();
    textTurn(t, 'msg_api_1', ['Hello', ' world']);
    t.finish(result(0.01));
    assert.deepEqual(types(t.events), [
      'message.updated', // user
      'message.part.updated', // its text
      'session.status', // busy
      'message.updated', // assistant
      'message.part.updated', // step-start
      'message.part.updated', // text, empty
      'message.part.delta',
      'message.part.delta',
      'message.part.updated', // text, complete
      'message.part.updated', // step-finish
      'message.updated', // tokens, finish
      'message.updated', // completed, cost
      'session.status', // idle
      'session.idle',
    ]);
    for (const e of t.events) assert.equal(e.properties.sessionID, 'ses_test', e.type);
    const answer = t.thread[1]!;
    const deltas = t.events.filter((e) => e.type === 'message.part.delta').map((e) => e.properties);
    assert.deepEqual(deltas, [
      { sessionID: 'ses_test', messageID: answer.info.id, partID: answer.parts[1]!.id, field: 'text', delta: 'Hello' },
      { sessionID: 'ses_test', messageID: answer.info.id, partID: answer.parts[1]!.id, field: 'text', delta: ' world' },
    ]);
    assert.deepEqual(
      t.events.filter((e) => e.type === 'session.status').map((e) => (e.properties.status as { type: string }).type),
      ['busy', 'idle'],
    );
  });

  it('builds the parts from complete assistant messages when there are no stream events', () => {
    const t = turn();
    t.feed(assistant('msg_api_1', { type: 'thinking', thinking: 'hmm' }), assistant('msg_api_1', { type: 'text', text: 'Hi!' }));
    const reply = t.finish(result(0.01));
    assert.deepEqual(partTypes(reply), ['step-start', 'reasoning', 'text', 'step-finish']);
    assert.equal((reply.parts[1] as ReasoningPart).text, 'hmm');
    assert.equal((reply.parts[2] as TextPart).text, 'Hi!');
  });
});

describe('TurnMapper: thinking and tools', () => {
  function toolTurn() {
    const t = turn('please run it');
    // Call 1: thinking, then a Bash tool call.
    t.feed(start('msg_api_1'), blockStart(0, { type: 'thinking', thinking: '', signature: '' }));
    t.feed(delta(0, { type: 'thinking_delta', thinking: 'Let me' }), delta(0, { type: 'thinking_delta', thinking: ' think.' }), delta(0, { type: 'signature_delta', signature: 'c2ln' }));
    t.feed(assistant('msg_api_1', { type: 'thinking', thinking: 'Let me think.', signature: 'c2ln' }), blockStop(0));
    t.feed(blockStart(1, { type: 'tool_use', id: 'toolu_1', name: 'Bash', input: {} }));
    t.feed(delta(1, { type: 'input_json_delta', partial_json: '{"command":"echo hi",' }), delta(1, { type: 'input_json_delta', partial_json: '"description":"Say hi"}' }));
    t.feed(assistant('msg_api_1', { type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'echo hi', description: 'Say hi' } }), blockStop(1));
    t.feed(messageDelta('tool_use', 40), stop());
    // The tool ran.
    t.feed(toolResult('toolu_1', 'hi'));
    // Call 2: the answer.
    textTurn(t, 'msg_api_2', ['It said ', 'hi.']);
    return t;
  }

  it('makes one assistant message per model call: reasoning and tool in the first, the answer in the last', () => {
    const t = toolTurn();
    const reply = t.finish(result(0.02));
    const [, first, second] = t.thread as [Message, AssistantMessage, AssistantMessage];
    assert.equal(t.thread.length, 3);
    assert.deepEqual(partTypes(first), ['step-start', 'reasoning', 'tool', 'step-finish']);
    assert.equal(first.info.finish, 'tool-calls');
    assert.equal((first.parts[1] as ReasoningPart).text, 'Let me think.');
    const tool = first.parts[2] as ToolPart;
    assert.equal(tool.tool, 'Bash');
    assert.equal(tool.callID, 'toolu_1');
    assert.equal(tool.state.status, 'completed');
    assert.deepEqual(tool.state.input, { command: 'echo hi', description: 'Say hi' });
    assert.equal(tool.state.status === 'completed' && tool.state.output, 'hi');
    assert.equal(tool.state.status === 'completed' && tool.state.title, 'Say hi');
    assert.equal(reply, second);
    assert.deepEqual(partTypes(second), ['step-start', 'text', 'step-finish']);
    assert.equal((second.parts[1] as TextPart).text, 'It said hi.');
    assert.equal(second.info.parentID, t.thread[0]!.info.id);
    assert.equal(first.info.cost, 0);
    assert.ok(second.info.cost > 0);
  });

  it('streams reasoning deltas (field text) and moves the tool part pending → running → completed', () => {
    const t = toolTurn();
    t.finish(result(0.02));
    const reasoningId = t.thread[1]!.parts[1]!.id;
    assert.deepEqual(
      t.events.filter((e) => e.type === 'message.part.delta' && e.properties.partID === reasoningId).map((e) => [e.properties.field, e.properties.delta]),
      [
        ['text', 'Let me'],
        ['text', ' think.'],
      ],
    );
    const toolStates = t.events
      .filter((e) => e.type === 'message.part.updated' && (e.properties.part as ToolPart).type === 'tool')
      .map((e) => (e.properties.part as ToolPart).state.status);
    assert.deepEqual(toolStates, ['pending', 'running', 'completed']);
  });

  it('a tool result with is_error makes an error state; images in a result become attachments', () => {
    const t = turn();
    t.feed(start('msg_api_1'), assistant('msg_api_1', { type: 'tool_use', id: 'toolu_a', name: 'Read', input: { file_path: '/x.png' } }));
    t.feed(assistant('msg_api_1', { type: 'tool_use', id: 'toolu_b', name: 'Bash', input: { command: 'false' } }), messageDelta('tool_use', 5), stop());
    t.feed(toolResult('toolu_a', [{ type: 'text', text: 'an image' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0=' } }]));
    t.feed(toolResult('toolu_b', 'exit code 1', true));
    t.finish(result(0.01));
    const [read, bash] = t.thread[1]!.parts.filter((p): p is ToolPart => p.type === 'tool');
    assert.equal(read!.state.status, 'completed');
    assert.equal(read!.state.status === 'completed' && read!.state.output, 'an image');
    assert.deepEqual(
      read!.state.status === 'completed' && read!.state.attachments?.map((a) => [a.type, a.mime, a.url]),
      [['file', 'image/png', 'data:image/png;base64,iVBORw0=']],
    );
    assert.deepEqual(bash!.state.status === 'error' && bash!.state.error, 'exit code 1');
  });

  it('leaves out what subagents say inside a Task call', () => {
    const t = turn();
    textTurn(t, 'msg_api_1', ['ok']);
    t.feed(ev({ type: 'message_start', message: { id: 'msg_sub' } }, 'toolu_task'), { ...assistant('msg_sub', { type: 'text', text: 'subagent talk' }), parent_tool_use_id: 'toolu_task' });
    t.finish(result(0.01));
    assert.equal(t.thread.length, 2);
    assert.deepEqual(
      t.thread[1]!.parts.map((p) => (p as TextPart).text).filter(Boolean),
      ['ok'],
    );
  });
});

describe('TurnMapper: aborts and failures', () => {
  it('an interrupted turn keeps its partial text and ends as MessageAbortedError, without a step-finish', () => {
    const t = turn('be slow');
    t.feed(start('msg_api_1'), blockStart(0, { type: 'text', text: '' }), delta(0, { type: 'text_delta', text: 'one two' }));
    t.mapper.abortRequested();
    // What the SDK sends after `interrupt()`: the partial message marked aborted, a synthetic user
    // message, the stream's end, and an error result.
    t.feed(assistant('msg_api_1', { type: 'text', text: 'one two' }, { aborted: true }));
    t.feed({ type: 'user', message: { role: 'user', content: [{ type: 'text', text: '[Request interrupted by user]' }] }, parent_tool_use_id: null });
    t.feed(blockStop(0), ev({ type: 'message_delta', delta: { stop_reason: null }, usage: { output_tokens: 3 } }), stop());
    const reply = t.finish(result(0.01, { subtype: 'error_during_execution', is_error: true, errors: ['[ede_diagnostic] result_type=user'], terminal_reason: 'aborted_streaming' }));
    assert.equal(t.thread.length, 2, 'the interrupt notice is not a user message of the thread');
    assert.deepEqual(reply.info.error, { name: 'MessageAbortedError', data: { message: 'The operation was aborted.' } });
    assert.deepEqual(partTypes(reply), ['step-start', 'text']);
    assert.equal((reply.parts[1] as TextPart).text, 'one two');
    assert.ok(reply.info.time.completed);
    const errors = t.events.filter((e) => e.type === 'session.error');
    assert.deepEqual(errors.map((e) => (e.properties.error as { name: string }).name), ['MessageAbortedError']);
    assert.deepEqual(types(t.events).slice(-2), ['session.status', 'session.idle']);
  });

  it('a tool call cut short by an abort ends as an error part', () => {
    const t = turn();
    t.feed(start('msg_api_1'), assistant('msg_api_1', { type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'sleep 100' } }), messageDelta('tool_use', 5), stop());
    t.mapper.abortRequested();
    const reply = t.finish(undefined, 'aborted');
    const tool = t.thread[1]!.parts.find((p): p is ToolPart => p.type === 'tool')!;
    assert.equal(tool.state.status, 'error');
    assert.equal(tool.state.status === 'error' && tool.state.error, 'Tool execution aborted');
    assert.equal(reply.info.error?.name, 'MessageAbortedError');
  });

  it('a failed model call (synthetic API-error message) becomes an APIError, not reply text', () => {
    const t = turn();
    t.feed({ type: 'system', subtype: 'api_retry', attempt: 1, max_retries: 10, retry_delay_ms: 500, error_status: 529, error: 'overloaded' });
    t.feed({ ...assistant('msg_synthetic', { type: 'text', text: 'API Error: 401 invalid x-api-key' }), error: 'authentication_failed' });
    const reply = t.finish(result(0, { is_error: true, result: 'API Error: 401 invalid x-api-key' }));
    assert.deepEqual(reply.info.error, { name: 'APIError', data: { message: 'API Error: 401 invalid x-api-key', isRetryable: false } });
    assert.equal(reply.parts.filter((p) => p.type === 'text').length, 0);
    const retry = t.events.find((e) => e.type === 'session.status' && (e.properties.status as { type: string }).type === 'retry');
    assert.ok(retry, 'a retry shows as session.status retry');
    assert.deepEqual({ ...(retry!.properties.status as object), next: 0 }, { type: 'retry', attempt: 1, message: 'overloaded (HTTP 529)', next: 0 });
  });

  it('a process that ends without a result ends the turn with that reason', () => {
    const t = turn();
    t.feed(start('msg_api_1'), blockStart(0, { type: 'text', text: '' }), delta(0, { type: 'text_delta', text: 'par' }));
    const reply = t.finish(undefined, 'the agent process ended');
    assert.deepEqual(reply.info.error, { name: 'UnknownError', data: { message: 'the agent process ended' } });
    assert.equal((reply.parts[1] as TextPart).text, 'par');
  });

  it('a turn that failed before any model call still has an assistant message to answer with', () => {
    const t = turn();
    const reply = t.finish(undefined, 'Claude Code process exited with code 1');
    assert.equal(t.thread.length, 2);
    assert.equal(reply.info.role, 'assistant');
    assert.deepEqual(reply.parts, []);
    assert.equal(reply.info.error?.data.message, 'Claude Code process exited with code 1');
  });

  it('result subtypes other than success are named', () => {
    const t = turn();
    textTurn(t, 'msg_api_1', ['x']);
    const reply = t.finish(result(0.01, { subtype: 'error_max_turns', is_error: true, errors: [] }));
    assert.deepEqual(reply.info.error, { name: 'UnknownError', data: { message: 'the agent reached its maximum number of turns' } });
  });
});

describe('preparePrompt: opencode prompt parts → SDK content', () => {
  it('text, data-URL images and PDFs, text files, file:// mentions and the platform’s image parts', () => {
    const p = preparePrompt([
      { type: 'text', text: 'look' },
      { type: 'file', mime: 'image/png', filename: 'a.png', url: 'data:image/png;base64,iVBORw0=' },
      { type: 'file', mime: 'application/pdf', url: 'data:application/pdf;base64,JVBERi0=' },
      { type: 'file', mime: 'text/plain', filename: 'n.txt', url: 'data:text/plain;base64,aGVsbG8=' },
      { type: 'file', mime: 'text/plain', url: 'file:///work/repo/src/app.ts' },
      { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4A==' } },
      { type: 'text', text: 'ignored', ignored: true },
    ]);
    assert.deepEqual(p.content, [
      { type: 'text', text: 'look' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0=' } },
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } },
      { type: 'text', text: '<file name="n.txt">\nhello\n</file>' },
      { type: 'text', text: '@/work/repo/src/app.ts' },
      { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4A==' } },
    ]);
    // The thread keeps file parts (the platform's image part as one, with a data URL).
    assert.deepEqual(
      p.parts.map((x) => x.type),
      ['text', 'file', 'file', 'file', 'file', 'file'],
    );
    assert.deepEqual(p.parts[5], { type: 'file', mime: 'image/jpeg', filename: 'image', url: 'data:image/jpeg;base64,/9j/4A==' });
  });

  it('refuses what opencode refuses, saying where', () => {
    const cases: [unknown, RegExp][] = [
      [undefined, /parts: expected an array/],
      [[], /at least one part/],
      [['hi'], /parts\[0\]: expected an object/],
      [[{ type: 'text' }], /parts\[0\]\.text: expected a string/],
      [[{ type: 'file', url: 'data:,x' }], /parts\[0\]\.mime/],
      [[{ type: 'tool' }], /parts\[0\]\.type: expected "text", "file" or "image", got "tool"/],
      [[{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: 'x' } }], /media_type: must be one of/],
      [[{ type: 'text', text: '' }], /nothing to send/],
    ];
    for (const [parts, message] of cases) assert.throws(() => preparePrompt(parts), (err: Error) => err instanceof BadPrompt && message.test(err.message), JSON.stringify(parts));
  });
});

describe('toolTitle', () => {
  it('names the call by what it works on', () => {
    assert.equal(toolTitle('Bash', { command: 'ls -la\necho', description: '' }), 'ls -la');
    assert.equal(toolTitle('Read', { file_path: '/a/b.ts' }), '/a/b.ts');
    assert.equal(toolTitle('Mystery', {}), 'Mystery');
  });
});
