/**
 * Harness sessions through the in-sandbox init on the host runtime (no Docker): the real Claude Code
 * CLI (the pinned devDependency) seeded by init, talking to a fake Anthropic API through the bridge's
 * model gateway — the sandbox holds a stub key, the fake sees the real one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FAKE_ANSWER_MARKER, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fakeAnthropic';
import { attach, settle, setProvider, shutDown, startBridge, type RunningBridge } from './harness';

const REAL_KEY = 'sk-ant-real-key-never-in-the-sandbox-0123456789';

function onSocket(socketPath: string, o: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: o.method, path: o.path, headers: o.headers });
    req.on('connect', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('harness sessions on the host runtime (init, gateway, seeded CLI)', { timeout: 180_000 }, () => {
  let bridge: RunningBridge;
  let fake: FakeAnthropic;

  before(async () => {
    fake = await startFakeAnthropic({ apiKey: REAL_KEY });
    bridge = await startBridge({ runtime: 'host' });
  });

  after(async () => {
    await shutDown(bridge);
    await fake.close();
  });

  it('rejects a provider body without a key and an unknown provider', async () => {
    assert.equal(await setProvider(bridge, 'anthropic', { base_url: fake.url }), 400);
    assert.equal(await setProvider(bridge, 'gemini', { api_key: 'x' }), 404);
    assert.equal(await setProvider(bridge, 'anthropic', { base_url: 'ftp://x', api_key: 'x' }), 400);
  });

  it('runs Claude Code seeded by init: no onboarding, the fake model answers, only the stub is in the sandbox', async () => {
    assert.equal(await setProvider(bridge, 'anthropic', { base_url: fake.url, api_key: REAL_KEY }), 204);
    const agent = await bridge.client.createAgent({ name: 'cc-host', model: 'claude-sonnet-4-5', harness_id: 'claude-code', prompt: 'Answer briefly.' });
    const created = await bridge.client.createSession(agent.id, { title: 'test' });
    const session = await settle(bridge.client, created.id);
    assert.equal(session.status, 'ready', `${session.failure_reason}\n${bridge.stderr.slice(-20).join('\n')}`);
    assert.equal(session.supports_tui, true);
    const tty = await attach(bridge, session, { cols: 120, rows: 36 });
    try {
      // The prompt box shows once Claude Code is past every first-run screen.
      await tty.waitFor(/for shortcuts|Try "|╭|>/, 60_000);
      tty.type('hello');
      await new Promise((r) => setTimeout(r, 300));
      tty.type('\r');
      await tty.waitFor(FAKE_ANSWER_MARKER, 60_000);
    } finally {
      await tty.close();
    }
    const turns = fake.requests.filter((r) => r.path.startsWith('/v1/messages') && !r.path.includes('count_tokens'));
    assert.ok(turns.length > 0, 'the fake saw the turn');
    for (const r of turns) assert.equal(r.apiKey, REAL_KEY, 'the gateway swapped the stub for the real key');
    assert.ok(turns.some((r) => r.model === 'claude-sonnet-4-5'));
    // What the sandbox holds: the stub, never the key.
    const dir = join(bridge.stateDir, 'sessions', session.id);
    const config = JSON.parse(readFileSync(join(dir, 'egress', 'init.json'), 'utf8')) as { credentials: Record<string, string> };
    assert.match(config.credentials.anthropic, /^stub_anthropic_[0-9a-f]{8}$/);
    const seeded = readFileSync(join(dir, 'home', '.claude.json'), 'utf8');
    assert.ok(seeded.includes(config.credentials.anthropic.slice(-20)));
    for (const f of [join(dir, 'egress', 'init.json'), join(dir, 'home', '.claude.json')]) assert.ok(!readFileSync(f, 'utf8').includes(REAL_KEY), `${f} has no real key`);
    assert.ok(!readdirSync(join(dir, 'home')).some((f) => f.includes(REAL_KEY)));

    // The egress socket, as the sandbox reaches it.
    const sock = join(dir, 'egress', 'egress.sock');
    const stub = config.credentials.anthropic;
    const wrongKey = await onSocket(sock, { method: 'POST', path: '/anthropic/v1/messages', headers: { 'x-api-key': 'sk-guess', 'content-type': 'application/json' }, body: '{}' });
    assert.equal(wrongKey.status, 401, 'only the session stub unlocks the key');
    const loopback = await onSocket(sock, { method: 'CONNECT', path: `127.0.0.1:${new URL(fake.url).port}` });
    assert.equal(loopback.status, 403, 'the proxy refuses the host loopback');
    assert.equal(loopback.headers['x-vault-blocked'], 'egress-policy');
    const before = fake.requests.length;
    assert.equal((await fetch(`${bridge.url}/bridge/v1/providers/anthropic`, { method: 'DELETE', headers: { authorization: `Bearer ${bridge.masterKey}` } })).status, 204);
    const noKey = await onSocket(sock, { method: 'POST', path: '/anthropic/v1/messages', headers: { 'x-api-key': stub, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(noKey.status, 401);
    const err = JSON.parse(noKey.body) as { type: string; error: { type: string; message: string } };
    assert.equal(err.type, 'error');
    assert.match(err.error.message, /Set Model Provider Key/);
    assert.equal(fake.requests.length, before, 'nothing reached the upstream');
    await bridge.client.deleteSession(session.id);
  });

  it('runs the claude-agent-sdk server through init: the platform message API answers from the fake model', async () => {
    assert.equal(await setProvider(bridge, 'anthropic', { base_url: fake.url, api_key: REAL_KEY }), 204);
    const agent = await bridge.client.createAgent({ name: 'sdk-host', model: 'claude-sonnet-4-5', harness_id: 'claude-agent-sdk' });
    const session = await settle(bridge.client, (await bridge.client.createSession(agent.id, { initial_prompt: 'first words' })).id);
    assert.equal(session.status, 'ready', session.failure_reason ?? '');
    const reply = await bridge.client.message(session.id, { text: 'hello' });
    assert.ok(reply.parts.some((p) => p.type === 'text' && (p as { text?: string }).text?.includes(FAKE_ANSWER_MARKER)));
    const thread = await bridge.client.messages(session.id);
    const userTexts = thread.filter((m) => m.info.role === 'user').flatMap((m) => m.parts.map((p) => (p as { text?: string }).text ?? ''));
    assert.ok(userTexts.includes('first words'), 'the initial prompt went first');
    assert.ok(userTexts.includes('hello'));
    await bridge.client.deleteSession(session.id);
  });

  it('fails with a precise reason when the harness CLI is missing', async () => {
    const agent = await bridge.client.createAgent({ name: 'codex-host', model: 'gpt-5-codex', harness_id: 'codex' });
    const created = await bridge.client.createSession(agent.id, {});
    const session = await settle(bridge.client, created.id);
    assert.equal(session.status, 'failed');
    assert.match(session.failure_reason ?? '', /codex is not installed/);
  });

  it('lists configured providers without their keys', async () => {
    assert.equal(await setProvider(bridge, 'openai', { api_key: 'sk-openai-real' }), 204);
    const res = await fetch(`${bridge.url}/bridge/v1/providers`, { headers: { authorization: `Bearer ${bridge.masterKey}` } });
    const text = await res.text();
    assert.ok((JSON.parse(text) as { configured: string[] }).configured.includes('openai'));
    assert.ok(!text.includes('sk-openai-real'));
  });
});

describe('workspace modes on the host runtime', { timeout: 120_000 }, () => {
  let bridge: RunningBridge;
  let repo: string;

  before(async () => {
    repo = mkdtempSync(join(tmpdir(), 'sa-repo-'));
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' } });
    git('init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'README.md'), 'hello\n');
    git('add', 'README.md');
    git('commit', '-qm', 'init');
    bridge = await startBridge({ runtime: 'host' });
  });

  after(async () => {
    await shutDown(bridge);
    rmSync(repo, { recursive: true, force: true });
  });

  it('worktree: what the agent writes and commits lands on the session branch, not in the checkout', async () => {
    const agent = await bridge.client.createAgent({ name: 'wt', model: 'none', harness_id: 'shell', workspace_path: repo, workspace_mode: 'worktree' });
    const created = await bridge.client.createSession(agent.id, {});
    const session = await settle(bridge.client, created.id);
    assert.equal(session.status, 'ready', session.failure_reason ?? '');
    const tty = await attach(bridge, session);
    try {
      tty.type('git config user.email a@b; git config user.name agent; echo from-agent > agent.txt && git add agent.txt && git commit -qm agent && echo "done-$((6*7))"\r');
      await tty.waitFor('done-42', 30_000);
    } finally {
      await tty.close();
    }
    const branch = `sandbox-agents/${session.id.slice(0, 8)}`;
    assert.ok(!existsSync(join(repo, 'agent.txt')), 'the checkout is untouched');
    assert.equal(execFileSync('git', ['show', `${branch}:agent.txt`], { cwd: repo }).toString(), 'from-agent\n');
    assert.equal(execFileSync('git', ['rev-parse', '--abbrev-ref', 'HEAD'], { cwd: repo }).toString().trim(), 'main');
    await bridge.client.deleteSession(session.id);
  });

  it('clone: init clones the agent\'s repository at its branch into a folder kept for the session', async () => {
    const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
    execFileSync('git', ['checkout', '-q', '-b', 'feature'], { cwd: repo, env });
    writeFileSync(join(repo, 'feature.txt'), 'on the branch\n');
    execFileSync('git', ['add', 'feature.txt'], { cwd: repo, env });
    execFileSync('git', ['commit', '-qm', 'feature'], { cwd: repo, env });
    execFileSync('git', ['checkout', '-q', 'main'], { cwd: repo, env });
    const agent = await bridge.client.createAgent({ name: 'cl', model: 'none', harness_id: 'shell', repo_url: `file://${repo}`, branch: 'feature', workspace_mode: 'clone' });
    const session = await settle(bridge.client, (await bridge.client.createSession(agent.id, {})).id);
    assert.equal(session.status, 'ready', session.failure_reason ?? '');
    const tty = await attach(bridge, session);
    try {
      tty.type('cat feature.txt; git rev-parse --abbrev-ref HEAD; echo "cloned-$((6*7))"\r');
      const lines = await tty.waitFor('cloned-42', 30_000);
      assert.ok(lines.some((l) => l === 'on the branch'), lines.join('\n'));
      assert.ok(lines.some((l) => l === 'feature'));
    } finally {
      await tty.close();
    }
    assert.ok(existsSync(join(bridge.stateDir, 'sessions', session.id, 'repo', 'feature.txt')));
    await bridge.client.deleteSession(session.id);
    assert.ok(existsSync(join(bridge.stateDir, 'sessions', session.id, 'repo', 'feature.txt')), 'the clone outlives the session');
  });

  it('worktree of a folder that is not a git repository fails with a precise reason', async () => {
    const plain = mkdtempSync(join(tmpdir(), 'sa-plain-'));
    try {
      const agent = await bridge.client.createAgent({ name: 'wt-bad', model: 'none', harness_id: 'shell', workspace_path: plain, workspace_mode: 'worktree' });
      const session = await settle(bridge.client, (await bridge.client.createSession(agent.id, {})).id);
      assert.equal(session.status, 'failed');
      assert.match(session.failure_reason ?? '', /needs a git repository/);
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });
});
