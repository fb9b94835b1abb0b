import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'jsonc-parser';
import type { Agent } from '../protocol/platform';
import { PinnedFile } from '../protocol/pinned';
import { pinEdit, pinnedFromAgent } from './pinnedEdit';

const file = `{
  // Team agents: keep this comment.
  "$schema": "x",
  "agents": [
    /* the shell */ { "name": "shell", "harness": "shell" }
  ]
}
`;

test('pinning a new agent appends it, keeping comments and the existing entries byte for byte', () => {
  const out = pinEdit(file, { name: 'reviewer', harness: 'codex', model: 'gpt-5-codex' });
  assert.ok(out.includes('// Team agents: keep this comment.'));
  assert.ok(out.includes('/* the shell */ { "name": "shell", "harness": "shell" }'));
  const parsed = PinnedFile.parse(parse(out));
  assert.deepEqual(parsed.agents.map((a) => a.name), ['shell', 'reviewer']);
});

test('pinning an agent of an existing name replaces that entry only', () => {
  const out = pinEdit(pinEdit(file, { name: 'reviewer', harness: 'codex' }), { name: 'shell', harness: 'shell', workspace: 'none' });
  assert.ok(out.includes('// Team agents: keep this comment.'));
  const parsed = PinnedFile.parse(parse(out));
  assert.deepEqual(parsed.agents, [{ name: 'shell', harness: 'shell', workspace: 'none' }, { name: 'reviewer', harness: 'codex' }]);
});

test('a trailing comma after the last entry is kept single', () => {
  const out = pinEdit('{"agents": [\n  {"name": "a", "harness": "shell"},\n]}', { name: 'b', harness: 'shell' });
  assert.deepEqual(PinnedFile.parse(parse(out, [], { allowTrailingComma: true })).agents.map((x) => x.name), ['a', 'b']);
  assert.ok(!out.includes(',,'));
});

test('an empty or missing file, or one without "agents", gets a valid file', () => {
  assert.deepEqual(PinnedFile.parse(parse(pinEdit('', { name: 'a', harness: 'shell' }))).agents, [{ name: 'a', harness: 'shell' }]);
  const out = pinEdit('{\n  // only a comment\n}\n', { name: 'a', harness: 'shell' });
  assert.ok(out.includes('// only a comment'));
  assert.deepEqual(PinnedFile.parse(parse(out)).agents, [{ name: 'a', harness: 'shell' }]);
});

test('pinnedFromAgent: no secret value is written; bound and secret-like env vars become secrets by name', () => {
  const agent = {
    id: 'agent_1',
    name: 'reviewer',
    harness_id: 'claude-code',
    model: 'claude-sonnet-4-5',
    repo_url: 'https://github.com/acme/app',
    allow_out: ['api.github.com'],
    deny_out: [],
    mcp_servers: null,
    env_vars: { LOG_LEVEL: 'debug', GH: 'ghp_real', OPENAI_API_KEY: 'sk-real' },
    env_var_hosts: { GH: ['api.github.com'] },
  } as unknown as Agent;
  const entry = pinnedFromAgent(agent, 'platform');
  assert.ok(!JSON.stringify(entry).includes('ghp_real') && !JSON.stringify(entry).includes('sk-real'));
  assert.deepEqual(entry, {
    name: 'reviewer',
    harness: 'claude-code',
    backend: 'platform',
    model: 'claude-sonnet-4-5',
    repo_url: 'https://github.com/acme/app',
    allow_out: ['api.github.com'],
    env: { LOG_LEVEL: 'debug' },
    secrets: { GH: ['api.github.com'], OPENAI_API_KEY: [] },
  });
  assert.ok(PinnedFile.safeParse({ agents: [entry] }).success);
});
