/**
 * Secrets in a Docker sandbox, end to end: a shell session of an agent with MY_TOKEN bound to
 * `localhost` calls the model gateway and two local HTTPS upstreams (a test CA of their own, given to
 * the bridge with `--extra-ca-file`) with curl through HTTPS_PROXY. The bound upstream gets the real
 * value, the other the stub; a direct connection to a host port fails; and afterwards the real key and
 * MY_TOKEN's value appear nowhere: container metadata, every process environment, the sandbox's home
 * and /work, the bridge's log and state.
 */
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CertificateAuthority } from '../../bridge/ca';
import { dockerOk, dockerPrerequisites, NODE_BASE_IMAGE, requireAllTiers, sharedTestDockerd } from '../docker/dockerd';
import { skipOrFail } from '../tiers';
import { ensureHarnessImages } from '../docker/harnessImages';
import { startFakeAnthropic, type FakeAnthropic } from '../fixtures/fakeAnthropic';
import { FAKE_USER, gitLog, startFakeGitHub } from '../fixtures/fakeGitHub';
import { attach, removeStateDir, settle, setProvider, shutDown, startBridge, type RunningBridge } from './harness';

const REAL_KEY = 'sk-ant-real-docker-secrets-key-0123456789';
const MY_TOKEN = 'ghp_realDockerTokenValue_0123456789';
const OTHER = 'other-real-docker-secret-value-77';
const missing = dockerPrerequisites();
if (missing && requireAllTiers()) throw new Error(missing);

const dir = mkdtempSync(join(tmpdir(), 'sa-docker-secrets-'));
const received: { host: string; authorization?: string; body: string }[] = [];
const servers: https.Server[] = [];

async function upstream(ca: CertificateAuthority, host: string): Promise<number> {
  const server = https.createServer(await ca.leaf(host), (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ host, authorization: req.headers.authorization, body });
      res.end('ok');
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
    else if (st.isFile()) out.push(p);
  };
  walk(root);
  return out;
}

describe('secrets in a Docker sandbox (stubs, interception, isolation, secrecy scan)', { skip: missing, timeout: 45 * 60_000 }, () => {
  let daemon: { host: string; release(): Promise<void> };
  let bridge: RunningBridge;
  let fake: FakeAnthropic;
  const ports = { bound: 0, other: 0 };
  let upstreamCa: CertificateAuthority;

  before(async () => {
    daemon = await sharedTestDockerd();
    await ensureHarnessImages(daemon.host);
    const ca = (upstreamCa = await CertificateAuthority.loadOrCreate(mkdtempSync(join(dir, 'upstream-ca-'))));
    const caFile = join(dir, 'upstream-ca.pem');
    writeFileSync(caFile, ca.certPem);
    ports.bound = await upstream(ca, 'localhost');
    ports.other = await upstream(ca, '127.0.0.1');
    fake = await startFakeAnthropic({ apiKey: REAL_KEY });
    bridge = await startBridge({ runtime: 'docker', dockerHost: daemon.host, extraArgs: ['--base-image', NODE_BASE_IMAGE, '--build-network', 'host', '--extra-ca-file', caFile] });
    assert.equal(await setProvider(bridge, 'anthropic', { base_url: fake.url, api_key: REAL_KEY }), 204);
  });

  after(async () => {
    if (bridge) {
      await shutDown(bridge);
    }
    await fake?.close();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
    await daemon?.release();
  });

  /**
   * Container metadata, every process's environment and command line, every readable file under
   * /home /work /tmp /run — as the sandbox's user and as root in the container (which has no
   * capabilities) — and the bridge's state and log: no real secret anywhere. `seen` proves the
   * scan looked where the stubs are.
   */
  async function secrecyScan(sessionId: string, seen: RegExp): Promise<void> {
    const ids = (await dockerOk(daemon.host, ['ps', '-q', '--filter', `label=sandbox-agents.session=${sessionId}`])).trim().split('\n').filter(Boolean);
    assert.equal(ids.length, 1);
    const inspect = await dockerOk(daemon.host, ['inspect', ids[0]]);
    const script = 'env; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do cat "$f" 2>/dev/null; echo; done; find /home /work /tmp /run /opt -type f -readable -size -20M -exec cat {} + 2>/dev/null; echo SCAN-END';
    const asUser = await dockerOk(daemon.host, ['exec', ids[0], 'sh', '-c', script], { timeoutMs: 120_000 });
    const asRoot = await dockerOk(daemon.host, ['exec', '-u', '0', ids[0], 'sh', '-c', script], { timeoutMs: 120_000 });
    for (const [who, text] of [['the sandbox user', asUser], ['root', asRoot]] as const) {
      assert.match(text, /SCAN-END/, who);
      assert.match(text, seen, `${who}'s scan saw the stub (it looked in the right places)`);
    }
    for (const [where, text] of [['docker inspect', inspect], ['inside the sandbox (its user)', asUser], ['inside the sandbox (root)', asRoot]] as const) {
      for (const secret of [REAL_KEY, MY_TOKEN, OTHER]) assert.ok(!text.includes(secret), `${where} holds a real secret`);
    }
    for (const f of filesUnder(bridge.stateDir)) {
      let text: string;
      try {
        text = readFileSync(f, 'latin1');
      } catch {
        continue;
      }
      for (const secret of [REAL_KEY, MY_TOKEN, OTHER]) assert.ok(!text.includes(secret), `${f} holds a real secret`);
    }
  }

  it('the sandbox holds stubs only; its stub becomes the real value only toward the bound host; no direct way out; no real secret anywhere', async () => {
    const agent = await bridge.client.createAgent({
      name: 'secrets-docker',
      model: 'claude-sonnet-4-5',
      harness_id: 'shell',
      env_vars: { MY_TOKEN, OTHER },
      env_var_hosts: { MY_TOKEN: ['localhost'], OTHER: ['127.0.0.1'] },
      allow_out: ['localhost', '127.0.0.1'],
    });
    const session = await settle(bridge.client, (await bridge.client.createSession(agent.id, { title: 'secrets' })).id);
    assert.equal(session.status, 'ready', `${session.failure_reason}\n${bridge.stderr.slice(-20).join('\n')}`);
    const tty = await attach(bridge, session, { cols: 200, rows: 50 });
    try {
      // The upstreams are on the host's loopback, which NO_PROXY sends direct: name the proxy explicitly.
      const post = (port: number, tag: string) =>
        `curl -sS --noproxy '' -x http://127.0.0.1:3128 -o /dev/null -w "${tag}=%{http_code}\\n" -X POST -H "Authorization: token $MY_TOKEN" -H 'content-type: application/json' -d "{\\"token\\":\\"$MY_TOKEN\\"}" https://${tag === 'bound' ? 'localhost' : '127.0.0.1'}:${port}/\r`;
      tty.type(post(ports.bound, 'bound'));
      await tty.waitFor(/^bound=\d+/m, 60_000);
      tty.type(post(ports.other, 'other'));
      await tty.waitFor(/^other=\d+/m, 60_000);
      // A model call through the gateway with the session's stub (read from the init config the sandbox has).
      tty.type(
        `curl -sS -o /dev/null -w "model=%{http_code}\\n" http://127.0.0.1:3128/anthropic/v1/messages -H "x-api-key: $(grep -o 'stub_anthropic_[0-9a-f]*' /run/sandbox/init.json | head -1)" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' -d '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'\r`,
      );
      await tty.waitFor(/^model=\d+/m, 60_000);
      // A direct connection, bypassing the proxy: there is no network but loopback.
      tty.type(`node -e "require('net').connect(${ports.bound}, '10.0.2.2').on('connect', () => console.log('direct=connected')).on('error', (e) => console.log('direct=' + e.code))"\r`);
      const screen = await tty.waitFor(/^direct=\w+/m, 60_000);
      const text = screen.join('\n');
      assert.match(text, /^bound=200/m);
      assert.match(text, /^other=200/m);
      assert.match(text, /^model=200/m);
      assert.match(text, /^direct=(ENETUNREACH|EHOSTUNREACH|ECONNREFUSED|EACCES)/m);
    } finally {
      await tty.close();
    }
    const bound = received.find((r) => r.host === 'localhost')!;
    assert.equal(bound.authorization, `token ${MY_TOKEN}`);
    assert.equal(bound.body, JSON.stringify({ token: MY_TOKEN }));
    const other = received.find((r) => r.host === '127.0.0.1')!;
    assert.match(other.authorization ?? '', /^token stub_MY_TOKEN_[0-9a-f]{8}$/);
    assert.ok(fake.requests.some((r) => r.apiKey === REAL_KEY), 'the fake upstream got the real key');

    await secrecyScan(session.id, /stub_MY_TOKEN_[0-9a-f]{8}/);
    await bridge.client.deleteSession(session.id);
  });

  it('a real agent (claude-agent-sdk running Claude Code) answers through the gateway; afterwards no real secret in its sandbox', async () => {
    const before = fake.requests.length;
    const agent = await bridge.client.createAgent({
      name: 'secrets-sdk',
      model: 'claude-sonnet-4-5',
      harness_id: 'claude-agent-sdk',
      env_vars: { MY_TOKEN },
      env_var_hosts: { MY_TOKEN: ['localhost'] },
      allow_out: ['localhost'],
    });
    const session = await settle(bridge.client, (await bridge.client.createSession(agent.id, { title: 'secrets-sdk' })).id);
    assert.equal(session.status, 'ready', `${session.failure_reason}\n${bridge.stderr.slice(-20).join('\n')}`);
    const reply = await bridge.client.message(session.id, { text: 'hello from the secrecy test' });
    assert.equal(reply.info.role, 'assistant', JSON.stringify(reply).slice(0, 400));
    const calls = fake.requests.slice(before).filter((r) => r.path === '/v1/messages');
    assert.ok(calls.length >= 1, 'the agent called its model');
    for (const r of calls) assert.equal(r.apiKey, REAL_KEY, 'the upstream got the real key');
    // Claude Code's own files (~/.claude.json, ~/.claude/, session transcripts) are scanned too.
    await secrecyScan(session.id, /stub_(anthropic|MY_TOKEN)_[0-9a-f]{8}/);
    await bridge.client.deleteSession(session.id);
  });

  it('a GitHub-style token bound to the git host: clone and push over HTTPS through the proxy; the server sees the value, the sandbox only the stub', async () => {
    const TOKEN = 'ghp_realGitTokenForTheSandbox_0123456789';
    const server = await startFakeGitHub({ certs: { localhost: await upstreamCa.leaf('localhost') }, token: TOKEN });
    try {
      const agent = await bridge.client.createAgent({
        name: 'secrets-git',
        model: 'none',
        harness_id: 'shell',
        env_vars: { GITHUB_TOKEN: TOKEN },
        env_var_hosts: { GITHUB_TOKEN: ['localhost'] },
        allow_out: ['localhost'],
      });
      const session = await settle(bridge.client, (await bridge.client.createSession(agent.id, { title: 'git' })).id);
      assert.equal(session.status, 'ready', `${session.failure_reason}\n${bridge.stderr.slice(-20).join('\n')}`);
      const tty = await attach(bridge, session, { cols: 200, rows: 50 });
      try {
        // The server is on loopback, which NO_PROXY sends direct: clear it so git takes HTTPS_PROXY (as for github.com).
        tty.type(
          `cd /tmp && export NO_PROXY= no_proxy= && git clone -q https://x-access-token:$GITHUB_TOKEN@localhost:${server.port}/repo.git r && cd r && cat README.md && ` +
            `git -c user.name=sandbox -c user.email=sandbox@example.com commit -q --allow-empty -m from-the-sandbox && git push -q origin main && printf "git=%s\\n" ok || printf "git=%s\\n" failed\r`,
        );
        const screen = (await tty.waitFor(/^git=(ok|failed)/m, 120_000)).join('\n');
        const seen = `the server saw: ${server.auth.map((a) => a.replace(TOKEN, '<value>')).join(', ') || 'no credentials'}`;
        assert.match(screen, /^git=ok/m, `${screen.split('\n').filter((l) => l.trim()).slice(-15).join('\n')}\n${seen}`);
        assert.match(screen, /hello from the git server/);
        assert.ok(!tty.received().includes(TOKEN), 'the value never reached the sandbox');
      } finally {
        await tty.close();
      }
      assert.deepEqual(gitLog(server), ['from-the-sandbox', 'first'], 'the push landed');
      assert.ok(server.auth.length > 0 && server.auth.every((a) => a === `x-access-token:${TOKEN}`), `the server saw the value only: ${server.auth.map((a) => a.replace(TOKEN, '<value>')).join(', ')}`);
      await bridge.client.deleteSession(session.id);
    } finally {
      await server.close();
    }
  });

  it('GitHub under its real names: gh api and git clone/push with GH_TOKEN bound to github.com and api.github.com', async (t) => {
    const gh = ['/usr/bin/gh', '/usr/local/bin/gh'].find((p) => existsSync(p));
    if (skipOrFail(t, gh ? undefined : 'the GitHub CLI is not installed (apt install gh)')) return;
    const TOKEN = 'ghp_realGitHubTokenUnderRealNames_0123456789';
    // A local GitHub on 127.0.0.1:443; only this test's bridge resolves github.com and api.github.com there.
    const server = await startFakeGitHub({
      certs: { 'github.com': await upstreamCa.leaf('github.com'), 'api.github.com': await upstreamCa.leaf('api.github.com') },
      token: TOKEN,
      port: 443,
      apiHost: 'api.github.com',
    }).catch((err: Error) => {
      throw new Error(`the fake GitHub needs 127.0.0.1:443 (${err.message})`);
    });
    const local = await startBridge({
      runtime: 'docker',
      dockerHost: daemon.host,
      extraArgs: ['--base-image', NODE_BASE_IMAGE, '--build-network', 'host', '--extra-ca-file', join(dir, 'upstream-ca.pem')],
      env: { NODE_OPTIONS: `--require ${join(__dirname, '..', 'fixtures', 'resolveHosts.cjs')}`, SANDBOX_AGENTS_TEST_HOSTS: 'github.com=127.0.0.1,api.github.com=127.0.0.1' },
    });
    try {
      const agent = await local.client.createAgent({
        name: 'secrets-github',
        model: 'none',
        harness_id: 'shell',
        env_vars: { GH_TOKEN: TOKEN },
        env_var_hosts: { GH_TOKEN: ['github.com', 'api.github.com'] },
        allow_out: ['github.com', 'api.github.com'],
      });
      const session = await settle(local.client, (await local.client.createSession(agent.id, { title: 'github' })).id);
      assert.equal(session.status, 'ready', `${session.failure_reason}\n${local.stderr.slice(-20).join('\n')}`);
      const [id] = (await dockerOk(daemon.host, ['ps', '-q', '--filter', `label=sandbox-agents.session=${session.id}`])).trim().split('\n');
      await dockerOk(daemon.host, ['cp', gh!, `${id}:/tmp/gh`]);
      const tty = await attach(local, session, { cols: 200, rows: 50 });
      try {
        tty.type('export GH_NO_UPDATE_NOTIFIER=1 GH_PROMPT_DISABLED=1 PATH=/tmp:$PATH; gh api user --jq .login && printf "gh=%s\\n" ok || printf "gh=%s\\n" failed\r');
        let screen = (await tty.waitFor(/^gh=(ok|failed)/m, 60_000)).join('\n');
        assert.match(screen, /^gh=ok/m, `${screen.split('\n').filter((l) => l.trim()).slice(-10).join('\n')}\napi saw: ${server.apiAuth.map((a) => a.replace(TOKEN, '<value>')).join(', ')}`);
        assert.match(screen, new RegExp(`^${FAKE_USER.login}$`, 'm'));
        // git takes its credentials from gh (`gh auth setup-git`), which hands over the stub.
        tty.type('gh auth setup-git && cd /tmp && git clone -q https://github.com/sandbox-agents/demo.git demo && cd demo && git -c user.name=sandbox -c user.email=sandbox@example.com commit -q --allow-empty -m pushed-by-the-agent && git push -q origin main && printf "ghgit=%s\\n" ok || printf "ghgit=%s\\n" failed\r');
        screen = (await tty.waitFor(/^ghgit=(ok|failed)/m, 120_000)).join('\n');
        assert.match(screen, /^ghgit=ok/m, `${screen.split('\n').filter((l) => l.trim()).slice(-10).join('\n')}\ngit saw: ${server.auth.map((a) => a.replace(TOKEN, '<value>')).join(', ')}`);
        assert.ok(!tty.received().includes(TOKEN), 'the value never reached the sandbox');
      } finally {
        await tty.close();
      }
      assert.deepEqual(gitLog(server, 'sandbox-agents/demo.git'), ['pushed-by-the-agent', 'first']);
      assert.ok(server.apiAuth.length > 0 && server.apiAuth.every((a) => a === `token ${TOKEN}` || a === `Bearer ${TOKEN}`), 'the API saw the value only');
      assert.ok(server.auth.length > 0 && server.auth.every((a) => a.endsWith(`:${TOKEN}`)), 'git saw the value only');
      await local.client.deleteSession(session.id);
    } finally {
      await local.stop();
      removeStateDir(local.stateDir);
      await server.close();
    }
  });
});
