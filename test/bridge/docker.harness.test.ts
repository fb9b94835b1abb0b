/**
 * Harness sessions in Docker, end to end through the bridge: the images built from
 * harness-containers/ (BASE = the offline local node base), the in-sandbox init (phases, forwarder,
 * CLI seeding), the model gateway (stub in the sandbox, real key upstream) and workspace modes.
 * The TUIs are asserted on screens rendered by @xterm/headless.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dockerOk, dockerPrerequisites, NODE_BASE_IMAGE, requireAllTiers, sharedTestDockerd, SANDBOX_UID } from '../docker/dockerd';
import { ensureHarnessImages } from '../docker/harnessImages';
import { FAKE_ANSWER_MARKER, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fakeAnthropic';
import { OPENAI_ANSWER_MARKER, startFakeOpenAI, type FakeOpenAI } from '../fixtures/fakeOpenAI';
import { attach, removeStateDir, settle, setProvider, shutDown, startBridge, type RunningBridge } from './harness';

const ANTHROPIC_KEY = 'sk-ant-real-docker-key-0123456789abcdef';
const OPENAI_KEY = 'sk-openai-real-docker-key-0123456789';
const missing = dockerPrerequisites();
if (missing && requireAllTiers()) throw new Error(missing);

/** A folder the sandbox (uid 1001 when the bridge runs as root) may write. */
function sandboxFolder(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (process.getuid?.() === 0) chownR(dir, SANDBOX_UID);
  return dir;
}

function chownR(p: string, uid: number): void {
  chownSync(p, uid, uid);
  if (statSync(p).isDirectory()) for (const n of readdirSync(p)) chownR(join(p, n), uid);
}

describe('harness sessions in Docker (images, init, gateway, workspaces)', { skip: missing, timeout: 45 * 60_000 }, () => {
  let daemon: { host: string; release(): Promise<void> };
  let bridge: RunningBridge;
  let anthropic: FakeAnthropic;
  let openai: FakeOpenAI;
  const folders: string[] = [];

  before(async () => {
    daemon = await sharedTestDockerd();
    await ensureHarnessImages(daemon.host);
    anthropic = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
    openai = await startFakeOpenAI({ apiKey: OPENAI_KEY });
    bridge = await startBridge({ runtime: 'docker', dockerHost: daemon.host, extraArgs: ['--base-image', NODE_BASE_IMAGE, '--build-network', 'host'] });
    assert.equal(await setProvider(bridge, 'anthropic', { base_url: anthropic.url, api_key: ANTHROPIC_KEY }), 204);
    assert.equal(await setProvider(bridge, 'openai', { base_url: openai.url, api_key: OPENAI_KEY }), 204);
  });

  after(async () => {
    if (bridge) {
      await shutDown(bridge);
    }
    await anthropic?.close();
    await openai?.close();
    for (const f of folders) rmSync(f, { recursive: true, force: true });
    await daemon?.release();
  });

  async function start(harness: string, model: string, extra: Record<string, unknown> = {}) {
    const agent = await bridge.client.createAgent({ name: `${harness}-${Math.random().toString(36).slice(2, 7)}`, model, harness_id: harness, ...extra });
    const created = await bridge.client.createSession(agent.id, { title: 'test' });
    const session = await settle(bridge.client, created.id);
    assert.equal(session.status, 'ready', `${session.failure_reason}\n${bridge.stderr.slice(-20).join('\n')}`);
    return session;
  }

  it('shell: the built shell image through init, as a non-root user with no network but the bridge, holding no key', async () => {
    const session = await start('shell', 'none');
    const tty = await attach(bridge, session);
    try {
      tty.type('echo "uid=$(id -u) proxy=$HTTPS_PROXY keys=$(env | grep -c sk-) ifaces=$(ls /sys/class/net | tr "\\n" " ")"\r');
      const lines = await tty.waitFor(/uid=\d+ proxy=/, 30_000);
      const line = lines.find((l) => /uid=\d+ proxy=/.test(l) && !l.includes('echo'))!;
      assert.match(line, /uid=1001 /);
      assert.match(line, /proxy=http:\/\/127\.0\.0\.1:3128 /);
      assert.match(line, /keys=0 /);
      assert.match(line, /ifaces=lo $/);
    } finally {
      await tty.close();
    }
    await bridge.client.deleteSession(session.id);
  });

  it('Claude Code: the TUI renders and shows the fake model\'s answer through the gateway', async () => {
    const session = await start('claude-code', 'claude-sonnet-4-5', { prompt: 'Answer briefly.' });
    const tty = await attach(bridge, session, { cols: 120, rows: 36 });
    try {
      await tty.waitFor(/for shortcuts|Try "|╭|>/, 90_000);
      tty.type('hello');
      await new Promise((r) => setTimeout(r, 500));
      tty.type('\r');
      await tty.waitFor(FAKE_ANSWER_MARKER, 90_000);
    } finally {
      await tty.close();
    }
    const turns = anthropic.requests.filter((r) => r.path === '/v1/messages');
    assert.ok(turns.length > 0);
    for (const r of turns) assert.equal(r.apiKey, ANTHROPIC_KEY, 'the upstream saw the real key, swapped in by the gateway');
    await bridge.client.deleteSession(session.id);
  });

  it('Codex: the TUI renders and shows the fake model\'s answer through the gateway', async () => {
    const session = await start('codex', 'gpt-5-codex', { prompt: 'Answer briefly.' });
    const tty = await attach(bridge, session, { cols: 120, rows: 36 });
    try {
      await tty.waitFor(/codex|Codex|›|>_/, 90_000);
      await new Promise((r) => setTimeout(r, 1000));
      tty.type('hello');
      await tty.waitFor(/› hello/, 30_000);
      // Codex takes keys that arrive close together as a paste, where Enter is a newline: on a busy
      // machine an Enter can land in that window. Press it again while the prompt still holds the text.
      for (let attempt = 1; ; attempt++) {
        await new Promise((r) => setTimeout(r, 500));
        tty.type('\r');
        try {
          await tty.waitFor(OPENAI_ANSWER_MARKER, attempt < 3 ? 20_000 : 90_000);
          break;
        } catch (err) {
          if (attempt >= 3 || !(await tty.screen()).some((l) => l.includes('› hello'))) throw err;
        }
      }
    } finally {
      await tty.close();
    }
    const turns = openai.requests.filter((r) => r.path === '/v1/responses');
    assert.ok(turns.length > 0, 'Codex called the Responses API');
    for (const r of turns) assert.equal(r.apiKey, OPENAI_KEY);
    assert.ok(turns.some((r) => r.model === 'gpt-5-codex'));
    await bridge.client.deleteSession(session.id);
  });

  /** An API harness answers the platform's message endpoints: blocking, streamed, and the thread. */
  async function chat(harness: string, model: string, marker: string, upstream: { requests: { path: string; apiKey?: string }[] }, key: string, path: string) {
    const session = await start(harness, model);
    assert.equal(session.supports_tui, false);
    const reply = await bridge.client.message(session.id, { text: 'hello there' });
    assert.equal(reply.info.role, 'assistant');
    const text = reply.parts.filter((p) => p.type === 'text').map((p) => (p as { text?: string }).text ?? '').join('');
    assert.ok(text.includes(marker), `reply: ${JSON.stringify(reply).slice(0, 500)}`);
    const frames: { type: string; event?: { type?: string } }[] = [];
    for await (const f of bridge.client.messageStream(session.id, { text: 'and again' })) frames.push(f as (typeof frames)[number]);
    assert.equal(frames[0]?.type, 'ready', JSON.stringify(frames.slice(0, 5)).slice(0, 800));
    assert.equal(frames.at(-1)?.type, 'done', JSON.stringify(frames.slice(-3)));
    assert.ok(frames.some((f) => f.type === 'harness_event' && /^message\.part\.(updated|delta)$/.test(f.event?.type ?? '')), 'streamed parts');
    const thread = await bridge.client.messages(session.id);
    assert.ok(thread.filter((m) => m.info.role === 'user').length >= 2, 'both user messages in the thread');
    assert.ok(thread.filter((m) => m.info.role === 'assistant').length >= 2);
    const calls = upstream.requests.filter((r) => r.path === path);
    assert.ok(calls.length >= 2);
    for (const r of calls) assert.equal(r.apiKey, key);
    await bridge.client.deleteSession(session.id);
  }

  it('opencode: answers message, message_stream and messages through the bridge (fake OpenAI-compatible model)', async () => {
    await chat('opencode', 'gpt-5', OPENAI_ANSWER_MARKER, openai, OPENAI_KEY, '/v1/chat/completions');
  });

  it('claude-agent-sdk: answers message, message_stream and messages through the bridge (fake Anthropic)', async () => {
    await chat('claude-agent-sdk', 'claude-sonnet-4-5', FAKE_ANSWER_MARKER, anthropic, ANTHROPIC_KEY, '/v1/messages');
  });

  it('mount: a file the agent writes appears in the mounted folder', async () => {
    const folder = sandboxFolder('sa-mount-');
    folders.push(folder);
    const session = await start('shell', 'none', { workspace_path: folder, workspace_mode: 'mount' });
    const tty = await attach(bridge, session);
    try {
      tty.type('echo from-the-sandbox > made-here.txt && echo "ok-$((6*7))"\r');
      await tty.waitFor('ok-42', 30_000);
    } finally {
      await tty.close();
    }
    assert.equal(readFileSync(join(folder, 'made-here.txt'), 'utf8'), 'from-the-sandbox\n');
    await bridge.client.deleteSession(session.id);
  });

  it('worktree: the agent\'s commit lands on the session branch only', async () => {
    const repo = sandboxFolder('sa-wt-');
    folders.push(repo);
    const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
    const git = (...args: string[]) => execFileSync('git', ['-c', 'safe.directory=*', ...args], { cwd: repo, env }).toString();
    git('init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'README.md'), 'hi\n');
    git('add', '.');
    git('commit', '-qm', 'init');
    if (process.getuid?.() === 0) chownR(repo, SANDBOX_UID);
    const session = await start('shell', 'none', { workspace_path: repo, workspace_mode: 'worktree' });
    const tty = await attach(bridge, session);
    try {
      tty.type('git config user.email a@b && git config user.name agent && echo work > agent.txt && git add agent.txt && git commit -qm agent && echo "committed-$((6*7))"\r');
      await tty.waitFor('committed-42', 30_000);
    } finally {
      await tty.close();
    }
    assert.ok(!existsSync(join(repo, 'agent.txt')));
    assert.equal(git('show', `sandbox-agents/${session.id.slice(0, 8)}:agent.txt`), 'work\n');
    assert.equal(git('rev-parse', '--abbrev-ref', 'HEAD').trim(), 'main');
    await bridge.client.deleteSession(session.id);
  });
});

describe('a failed image build', { skip: missing, timeout: 10 * 60_000 }, () => {
  it('fails the session at creating_sandbox with the log tail, and the full log is served', async () => {
    const daemon = await sharedTestDockerd();
    // An empty base (no shell, no apt): the base image's first RUN fails, offline and at once.
    const dir = mkdtempSync(join(tmpdir(), 'sa-empty-'));
    writeFileSync(join(dir, 'empty.tar'), Buffer.alloc(1024));
    await dockerOk(daemon.host, ['import', join(dir, 'empty.tar'), 'sandbox-agents/empty-base:0']);
    rmSync(dir, { recursive: true, force: true });
    const bridge = await startBridge({ runtime: 'docker', dockerHost: daemon.host, extraArgs: ['--base-image', 'sandbox-agents/empty-base:0', '--build-network', 'host'] });
    try {
      const agent = await bridge.client.createAgent({ name: 'doomed', model: 'none', harness_id: 'shell' });
      const session = await settle(bridge.client, (await bridge.client.createSession(agent.id, {})).id);
      assert.equal(session.status, 'failed');
      assert.equal(session.phase, 'creating_sandbox');
      assert.match(session.failure_reason ?? '', /Building the base image sandbox-agents\/base:[0-9a-f]{12} failed/);
      assert.match(session.failure_reason ?? '', /Last lines of the build log/);
      const res = await fetch(`${bridge.url}/bridge/v1/builds/shell/log`, { headers: { authorization: `Bearer ${bridge.masterKey}` } });
      assert.equal(res.status, 200);
      const { log } = (await res.json()) as { log: string };
      assert.match(log, /BASE=sandbox-agents\/empty-base:0/);
      assert.match(log, /Step 2\/\d+ : FROM/);
      const none = await fetch(`${bridge.url}/bridge/v1/builds/codex/log`, { headers: { authorization: `Bearer ${bridge.masterKey}` } });
      assert.equal(none.status, 404);
    } finally {
      await bridge.stop();
      removeStateDir(bridge.stateDir);
      await daemon.release();
    }
  });
});
