import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Agent,
  AgentList,
  CreateAgentBody,
  Message,
  MessageBody,
  PatchAgentBody,
  Session,
  SessionList,
  StreamFrame,
  errorText,
  isReasoningPart,
  isTextPart,
  isToolPart,
} from './platform';

// A list item as the platform returns it, including fields we do not model.
const platformAgent = {
  id: 'agent_3f9c1e',
  name: 'refactor-bot',
  model: 'claude-sonnet-4-5',
  prompt: null,
  harness_id: 'claude-code',
  supports_tui: true,
  repo_url: 'https://github.com/acme/app',
  branch: 'main',
  tools: [],
  mcp_servers: [],
  env_vars: { GITHUB_TOKEN: 'ghp_real' },
  env_var_hosts: { GITHUB_TOKEN: ['github.com'] },
  allow_out: ['github.com'],
  deny_out: [],
  created_at: '2026-06-01T10:00:00.000Z',
  template_id: null,
  skill_ids: ['s1'],
  projects: [{ id: 'p1' }],
  session_count: 2,
  has_active_session: true,
};

test('an agent list envelope parses, keeping unknown fields', () => {
  const list = AgentList.parse({ data: [platformAgent], total: 1, limit: 50, offset: 0, extra: 'kept' });
  assert.equal(list.data[0].name, 'refactor-bot');
  assert.equal(list.data[0].harness_id, 'claude-code');
  assert.deepEqual(list.data[0].projects, [{ id: 'p1' }]);
  assert.equal((list as Record<string, unknown>).extra, 'kept');
});

test('an agent with missing optional fields gets usable defaults', () => {
  const agent = Agent.parse({ id: 'a1', model: 'm' });
  assert.equal(agent.name, '');
  assert.equal(agent.harness_id, 'opencode');
});

test('an agent without id is rejected with the field named', () => {
  const r = Agent.safeParse({ name: 'x' });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues[0].path, ['id']);
});

test('sessions: the bare-array list, nulls, numeric times and unknown statuses parse', () => {
  const sessions = SessionList.parse([
    { id: 's2', agent_id: 'a', status: 'creating', phase: 'pod_pending', phase_detail: null, tty_url: null, created_at: 1767225600 },
    { id: 's1', agent_id: 'a', status: 'ready', phase: 'ready', tty_url: '/api/v1/managed_agents/sessions/s1/tty', tty_token: 't', supports_tui: true, idle_timeout_ms: 900000, last_seen_at: '2026-06-01T10:00:00Z' },
    { id: 's0', status: 'hibernating', brand_new_field: { x: 1 } },
  ]);
  assert.equal(sessions.length, 3);
  assert.equal(sessions[1].tty_url, '/api/v1/managed_agents/sessions/s1/tty');
  assert.equal(sessions[2].status, 'hibernating');
  assert.deepEqual((sessions[2] as Record<string, unknown>).brand_new_field, { x: 1 });
  assert.equal(Session.safeParse({ status: 'ready' }).success, false);
});

test('errorText reads the string, nested-object and issue-array error shapes', () => {
  assert.equal(errorText({ error: 'unauthorized' }), 'unauthorized');
  assert.equal(errorText({ error: { error: "unknown harness_id 'nope'" } }), "unknown harness_id 'nope'");
  assert.equal(errorText({ error: { error: { message: 'deeply nested' } } }), 'deeply nested');
  assert.equal(
    errorText({
      error: [
        { code: 'invalid_type', path: ['model'], message: 'Required' },
        { code: 'too_big', path: ['env_vars', 'A'], message: 'Too long' },
      ],
    }),
    'model: Required; env_vars.A: Too long',
  );
  assert.equal(errorText({ error: [{ message: 'no path' }] }), 'no path');
  assert.equal(errorText({ error: '' }), undefined);
  assert.equal(errorText({ nothing: true }), undefined);
  assert.equal(errorText('plain'), 'plain');
  assert.equal(errorText({ message: 'gateway style' }), 'gateway style');
});

test('messages: every part type, unknown part types and malformed known parts survive', () => {
  const msg = Message.parse({
    info: { id: 'm1', role: 'assistant', time: { created: 1, completed: 2 }, tokens: { input: 10, output: 5, cache: { read: 1, write: 0 } }, cost: 0.002 },
    parts: [
      { id: 'p1', type: 'text', text: 'Hello' },
      { id: 'p2', type: 'reasoning', text: 'thinking' },
      { id: 'p3', type: 'tool', tool: 'bash', callID: 'c1', state: { status: 'completed', input: { cmd: 'ls' }, output: 'a\nb' } },
      { id: 'p4', type: 'step-finish', reason: 'stop', tokens: { input: 1 } },
      { id: 'p5', type: 'text', text: 42 },
    ],
  });
  assert.equal(msg.parts.length, 5);
  assert.ok(isTextPart(msg.parts[0]));
  assert.ok(isReasoningPart(msg.parts[1]));
  assert.ok(isToolPart(msg.parts[2]));
  assert.equal(msg.parts[3].type, 'step-finish');
  assert.equal((msg.parts[3] as Record<string, unknown>).reason, 'stop');
  // A text part whose text is not a string is kept, but not treated as text.
  assert.equal(msg.parts[4].type, 'text');
  assert.equal(isTextPart(msg.parts[4]), false);
});

test('an assistant error reply parses', () => {
  const msg = Message.parse({ info: { id: 'm', role: 'assistant', error: { name: 'ProviderAuthError', data: { message: 'bad key' } } } });
  assert.equal(msg.info.error?.data?.message, 'bad key');
  assert.deepEqual(msg.parts, []);
});

test('SSE frames: ready, harness_event, done, error and unknown types', () => {
  assert.equal(StreamFrame.parse({ type: 'ready' }).type, 'ready');
  const ev = StreamFrame.parse({ type: 'harness_event', event: { type: 'message.part.delta', properties: { delta: 'x' } } });
  assert.equal(ev.type, 'harness_event');
  assert.equal(StreamFrame.parse({ type: 'error', message: 'boom' }).type, 'error');
  assert.equal(StreamFrame.parse({ type: 'something_new', x: 1 }).type, 'something_new');
  assert.equal(StreamFrame.safeParse({ no: 'type' }).success, false);
});

test('create body: model required, env var names and reserved names checked', () => {
  assert.equal(CreateAgentBody.safeParse({ name: 'x' }).success, false);
  assert.equal(CreateAgentBody.safeParse({ model: 'm', env_vars: { GOOD_NAME: 'v' } }).success, true);
  const bad = CreateAgentBody.safeParse({ model: 'm', env_vars: { '1BAD': 'v' } });
  assert.equal(bad.success, false);
  assert.match(JSON.stringify(bad.error!.issues), /must match/);
  const reserved = CreateAgentBody.safeParse({ model: 'm', env_vars: { REPO_URL: 'v' } });
  assert.equal(reserved.success, false);
  assert.match(reserved.error!.issues[0].message, /reserved/);
  const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`V${i}`, 'x']));
  assert.equal(CreateAgentBody.safeParse({ model: 'm', env_vars: many }).success, false);
});

test('patch body cannot carry harness_id or repo_url', () => {
  const parsed = PatchAgentBody.parse({ model: 'new', harness_id: 'codex', repo_url: 'x' } as never);
  assert.deepEqual(parsed, { model: 'new' });
});

test('message body needs text, parts or attachments', () => {
  assert.equal(MessageBody.safeParse({}).success, false);
  assert.equal(MessageBody.safeParse({ text: 'hi' }).success, true);
  assert.equal(MessageBody.safeParse({ attachments: [{ mime_type: 'image/png', base64: 'AA==' }] }).success, true);
});
