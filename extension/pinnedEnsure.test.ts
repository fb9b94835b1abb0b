import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../protocol/platform';
import type { PinnedAgent } from '../protocol/pinned';
import { startPlatformTestServer, type PlatformTestServer } from '../test/fixtures/platformServer';
import { PlatformClient } from './platformClient';
import { desiredBody, ensureAgent, planEnsure, type EnsureQuestions } from './pinnedEnsure';

const pinned: PinnedAgent = {
  name: 'reviewer',
  harness: 'claude-code',
  model: 'claude-sonnet-4-5',
  repo_url: 'https://github.com/acme/app',
  branch: 'main',
  allow_out: ['api.github.com'],
  env: { LOG_LEVEL: 'debug', GH: { secret: 'GITHUB_TOKEN' } },
  secrets: { GITHUB_TOKEN: ['api.github.com'], NPM_TOKEN: ['registry.npmjs.org'] },
};
const resolved = { prompt: 'Review carefully.', secretValues: { GITHUB_TOKEN: 'ghp_real', NPM_TOKEN: 'npm_real' } };

test('desiredBody: secrets become env vars bound to their hosts; references use the secret under the env name', () => {
  const body = desiredBody(pinned, resolved, 'platform');
  assert.deepEqual(body.env_vars, { LOG_LEVEL: 'debug', GH: 'ghp_real', NPM_TOKEN: 'npm_real' });
  assert.deepEqual(body.env_var_hosts, { GH: ['api.github.com'], NPM_TOKEN: ['registry.npmjs.org'] });
  assert.deepEqual(body.allow_out, ['api.github.com', 'registry.npmjs.org'], 'secret hosts join the allow list');
  assert.equal(body.harness_id, 'claude-code');
  assert.equal(body.prompt, 'Review carefully.');
  assert.equal(body.workspace_mode, undefined, 'local-only fields stay off platform agents');
  const local = desiredBody({ name: 's', harness: 'shell', workspace: 'worktree', resources: { cpus: 2 } }, { secretValues: {}, workspacePath: '/w' }, 'local');
  assert.equal(local.model, 'none');
  assert.equal(local.workspace_mode, 'worktree');
  assert.equal(local.workspace_path, '/w');
  assert.deepEqual(local.resources, { cpus: 2 });
  assert.throws(() => desiredBody(pinned, { secretValues: {} }, 'platform'), /No value for the secret GITHUB_TOKEN/);
});

const existing = (over: Partial<Agent> = {}): Agent =>
  ({ id: 'agent_1', name: 'reviewer', harness_id: 'claude-code', model: 'claude-sonnet-4-5', prompt: 'Review carefully.', repo_url: 'https://github.com/acme/app', branch: 'main', mcp_servers: [], allow_out: ['api.github.com', 'registry.npmjs.org'], deny_out: null, env_vars: { LOG_LEVEL: 'debug', GH: 'ghp_real', NPM_TOKEN: 'npm_real' }, env_var_hosts: { NPM_TOKEN: ['registry.npmjs.org'], GH: ['api.github.com'] }, ...over }) as Agent;

test('planEnsure: create when missing, none when equal (nulls and key order aside), patch only what differs, recreate on harness or repo', () => {
  const body = desiredBody(pinned, resolved, 'platform');
  assert.equal(planEnsure(body, undefined).action, 'create');
  assert.equal(planEnsure(body, existing()).action, 'none');

  const p = planEnsure(body, existing({ model: 'gpt-5', env_vars: { LOG_LEVEL: 'info', GH: 'ghp_old', NPM_TOKEN: 'npm_real' } }));
  assert.equal(p.action, 'patch');
  if (p.action !== 'patch') return;
  assert.deepEqual(Object.keys(p.patch).sort(), ['env_vars', 'model']);
  assert.deepEqual(p.changes.find((c) => c.field === 'model'), { field: 'model', from: 'gpt-5', to: 'claude-sonnet-4-5' });
  const env = p.changes.find((c) => c.field === 'env_vars')!;
  assert.equal(env.to, 'GH changed, LOG_LEVEL changed');
  assert.ok(!JSON.stringify(p.changes).includes('ghp_'), 'no secret value in what is shown');

  const r = planEnsure(body, existing({ harness_id: 'codex', branch: 'dev' }));
  assert.equal(r.action, 'recreate');
  if (r.action !== 'recreate') return;
  assert.deepEqual(r.immutable.map((c) => c.field), ['harness_id']);
  assert.ok(r.changes.some((c) => c.field === 'branch'));
  assert.equal(planEnsure(body, existing({ repo_url: 'https://github.com/acme/other' })).action, 'recreate');
});

describe('ensureAgent against the platform test server', () => {
  let server: PlatformTestServer;
  let client: PlatformClient;
  const asked: string[] = [];
  let answer = true;
  const questions: EnsureQuestions = {
    confirmRecreate: async (plan) => (asked.push(`recreate:${plan.immutable.map((c) => c.field).join(',')}`), answer),
    confirmChange: async (plan) => (asked.push(`change:${plan.changes.map((c) => c.field).join(',')}`), answer),
  };
  before(async () => {
    server = await startPlatformTestServer({ phaseDelayMs: 5 });
    client = new PlatformClient({ baseUrl: server.url, apiKey: server.masterKey, retries: 0 });
  });
  after(() => server.close());

  test('create, then unchanged, then patch after asking, then recreate only when allowed', async () => {
    const body = desiredBody(pinned, resolved, 'platform');
    const created = await ensureAgent(client, body, questions, true);
    assert.equal(created.outcome, 'created');
    const id = 'agent' in created ? created.agent.id : '';
    assert.equal((await ensureAgent(client, body, questions, true)).outcome, 'unchanged');
    assert.deepEqual(asked, []);

    const changed = desiredBody({ ...pinned, model: 'claude-opus-4-1', deny_out: ['example.com'] }, resolved, 'platform');
    answer = false;
    assert.equal((await ensureAgent(client, changed, questions, true)).outcome, 'declined');
    assert.equal((await client.getAgent(id)).model, 'claude-sonnet-4-5', 'nothing changed when declined');
    answer = true;
    const patched = await ensureAgent(client, changed, questions, true);
    assert.equal(patched.outcome, 'patched');
    assert.deepEqual(asked, ['change:model,deny_out', 'change:model,deny_out']);
    const after = await client.getAgent(id);
    assert.equal(after.model, 'claude-opus-4-1');
    assert.deepEqual(after.deny_out, ['example.com']);
    assert.equal(after.env_vars?.GH, 'ghp_real');
    assert.deepEqual(after.env_var_hosts?.GH, ['api.github.com']);

    const otherHarness = desiredBody({ ...pinned, model: 'claude-opus-4-1', deny_out: ['example.com'], harness: 'codex' }, resolved, 'platform');
    answer = false;
    assert.equal((await ensureAgent(client, otherHarness, questions, true)).outcome, 'declined');
    assert.equal((await client.getAgent(id)).harness_id, 'claude-code');
    answer = true;
    const recreated = await ensureAgent(client, otherHarness, questions, true);
    assert.equal(recreated.outcome, 'recreated');
    assert.equal(asked.at(-1), 'recreate:harness_id');
    const now = await client.findAgentByName('reviewer');
    assert.equal(now?.harness_id, 'codex');
    assert.notEqual(now?.id, id);
    assert.equal((await client.listAllAgents()).filter((a) => a.name === 'reviewer').length, 1);
  });
});
