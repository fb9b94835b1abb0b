/**
 * Local agents in a real VS Code: the bridge starts on first local use (not at activation), is shared
 * by windows, comes back after dying, runs `shell` sessions (host runtime here: Docker is covered by
 * the bridge's own Docker suite), and explains an unreachable Docker with its ways out.
 */
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { layout } from '../../../bridge/sandboxSetup';
import type { TreeNode } from '../../../extension/agentsTree';
import { BridgeSupervisor } from '../../../extension/bridgeSupervisor';
import type { ShownMessage } from '../../../extension/commands';
import type { SandboxAgentsApi } from '../../../extension/extension';
import { nullLogger } from '../../../extension/logger';

describe('Local agents (bridge, host runtime)', function () {
  this.timeout(90_000);
  let api: SandboxAgentsApi;
  let stateBase: string;
  const messages: ShownMessage[] = [];
  const config = () => vscode.workspace.getConfiguration('sandboxAgents');
  const run = <T = unknown>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(`sandboxAgents.${command}`, ...args);

  async function localNode(): Promise<TreeNode> {
    const node = (await api.tree.getChildren()).find((n) => n.kind === 'backend' && n.backend.kind === 'local');
    assert.ok(node, 'the Local group is shown');
    return node;
  }
  const label = (n: TreeNode) => {
    const l = api.tree.getTreeItem(n).label;
    return typeof l === 'string' ? l : (l?.label ?? '');
  };
  const pidOf = (runtime: string) => (JSON.parse(readFileSync(join(stateBase, runtime, 'bridge.json'), 'utf8')) as { pid: number }).pid;

  before(async () => {
    stateBase = mkdtempSync(join(tmpdir(), 'sa-local-'));
    await config().update('local.stateDir', stateBase, vscode.ConfigurationTarget.Global);
    await config().update('local.runtime', 'host', vscode.ConfigurationTarget.Global);
    const ext = vscode.extensions.getExtension<SandboxAgentsApi>('sandbox-agents.sandbox-agents');
    api = await ext!.activate();
    api.onDidShowMessage((m) => messages.push(m));
  });

  after(async () => {
    for (const runtime of ['host', 'docker']) {
      const info = join(stateBase, runtime, 'bridge.json');
      if (existsSync(info)) {
        const pid = pidOf(runtime);
        for (const s of await api.local.client.listSessions({ limit: 200 }).catch(() => [])) await api.local.client.deleteSession(s.id).catch(() => undefined);
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
    }
    for (const k of ['local.stateDir', 'local.runtime', 'local.dockerHost', 'local.baseImage']) await config().update(k, undefined, vscode.ConfigurationTarget.Global);
    await new Promise((r) => setTimeout(r, 300));
    rmSync(stateBase, { recursive: true, force: true });
  });

  it('Local is listed, labelled unsandboxed on the host runtime, and nothing starts before it is used', async () => {
    const node = await localNode();
    assert.equal(label(node), 'Local — host processes (unsandboxed)');
    assert.equal(api.tree.getTreeItem(node).collapsibleState, vscode.TreeItemCollapsibleState.Collapsed);
    assert.equal(existsSync(join(stateBase, 'host', 'bridge.json')), false, 'no bridge yet');
  });

  it('expanding Local starts the bridge once; another window finds the same one', async () => {
    const rows = await api.tree.getChildren(await localNode());
    assert.match(label(rows[0]), /No agents yet/);
    const pid = pidOf('host');
    await api.tree.getChildren(await localNode());
    assert.equal(pidOf('host'), pid, 'not started twice');
    const otherWindow = new BridgeSupervisor(join(__dirname, '..', '..', 'dist', 'bridge.js'), { runtime: 'host', stateBase }, nullLogger);
    assert.equal((await otherWindow.ensure()).pid, pid, 'a second window shares the bridge');
  });

  it('create a shell agent mounting a folder, start a session: ready, flagged unsandboxed; stop; delete', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'sa-mount-'));
    const agent = await run<{ id: string; workspace_path?: string }>('createAgent', { backendId: 'local', name: 'local-shell', harness: 'shell', model: 'none', workspacePath: folder });
    assert.ok(agent?.id, `create failed: ${messages.at(-1)?.message}`);
    assert.equal(agent.workspace_path, folder);
    const [agentRow] = (await api.tree.getChildren(await localNode())).filter((n) => n.kind === 'agent');
    assert.equal(label(agentRow), 'local-shell');
    const session = await run<{ id: string; status: string; unsandboxed?: boolean; tty_url?: string }>('startSession', agentRow);
    assert.equal(session?.status, 'ready', `start failed: ${messages.at(-1)?.message}`);
    assert.equal(session.unsandboxed, true);
    assert.ok(session.tty_url);
    const [sessionRow] = (await api.tree.getChildren(agentRow)).filter((n) => n.kind === 'session');
    assert.match(String(api.tree.getTreeItem(sessionRow).description), /ready.*⚠ unsandboxed/);
    assert.equal(await run('stopSession', { backendId: 'local', sessionId: session.id, confirmed: true }), true);
    assert.equal((await api.local.client.getSession(session.id)).status, 'dead');
    assert.equal(await run('deleteAgent', { backendId: 'local', agentId: agent.id, confirmed: true }), true);
    rmSync(folder, { recursive: true, force: true });
  });

  it('the integrated-terminal renderer runs the session in a VS Code terminal: typing there reaches the sandbox', async () => {
    await config().update('terminal.renderer', 'integrated', vscode.ConfigurationTarget.Global);
    try {
      const agent = await run<{ id: string }>('createAgent', { backendId: 'local', name: 'pty-shell', harness: 'shell', model: 'none' });
      assert.ok(agent?.id, `create failed: ${messages.at(-1)?.message}`);
      const opened = new Promise<vscode.Terminal>((resolve) => {
        const sub = vscode.window.onDidOpenTerminal((t) => {
          if (t.name === 'pty-shell') {
            sub.dispose();
            resolve(t);
          }
        });
      });
      const session = await run<{ id: string; tty_token: string; tty_url: string }>('openTerminal', { backendId: 'local', agentId: agent.id });
      assert.ok(session?.id, `open failed: ${messages.at(-1)?.message}`);
      const terminal = await opened;
      // Keystrokes from VS Code's terminal go through the Pseudoterminal to the session's PTY; another
      // client attached to the same session (fan-out) sees the result.
      const { default: WebSocket } = await import('ws');
      const url = new URL(session.tty_url, api.local.client.baseUrl);
      url.protocol = 'ws:';
      url.searchParams.set('token', session.tty_token);
      let seen = '';
      const ws = new WebSocket(url);
      ws.on('message', (d: Buffer) => (seen += d.toString()));
      await new Promise((r) => ws.once('open', r));
      const deadline = Date.now() + 20_000;
      for (let i = 0; !seen.includes('pty-42') && Date.now() < deadline; i++) {
        if (i % 20 === 0) terminal.sendText('echo pty-$((6*7))');
        await new Promise((r) => setTimeout(r, 100));
      }
      ws.close();
      assert.ok(seen.includes('pty-42'), 'the command typed in the integrated terminal ran in the session');
      terminal.dispose();
      await run('stopSession', { backendId: 'local', sessionId: session.id, confirmed: true });
      await run('deleteAgent', { backendId: 'local', agentId: agent.id, confirmed: true });
    } finally {
      await config().update('terminal.renderer', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  it('a bridge that died is started again on the next use', async () => {
    const pid = pidOf('host');
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    await run('refresh');
    const rows = await api.tree.getChildren(await localNode());
    assert.match(label(rows[0]), /No agents yet|local-shell/);
    assert.notEqual(pidOf('host'), pid);
  });

  it('model provider keys go to the bridge\'s memory, never back out, and a restarted bridge gets them again', async () => {
    const configured = async () => {
      const c = api.local.supervisor.connection!;
      const res = await fetch(`${c.url}/bridge/v1/providers`, { headers: { authorization: `Bearer ${c.masterKey}` } });
      const text = await res.text();
      assert.ok(!text.includes('sk-ant-from-vscode'), 'the key is never read back');
      return (JSON.parse(text) as { configured: string[] }).configured;
    };
    await run('setModelProviderKey', { provider: 'anthropic', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-ant-from-vscode-0123456789' });
    assert.deepEqual(await configured(), ['anthropic']);
    const pid = pidOf('host');
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    await api.local.ready();
    assert.notEqual(pidOf('host'), pid);
    assert.deepEqual(await configured(), ['anthropic'], 'handed over again after the restart');
    const before = messages.length;
    await run('setModelProviderKey', { provider: 'gemini', apiKey: 'x' });
    assert.ok(messages.slice(before).some((m) => /Unknown model provider "gemini"/.test(m.message)), JSON.stringify(messages.slice(before)));
    await run('setModelProviderKey', { provider: 'anthropic', apiKey: '' });
    assert.deepEqual(await configured(), []);
  });

  it('agent secrets: kept in SecretStorage, set on the agent bound to hosts, handed to a restarted bridge; blocked use listed', async () => {
    const TOKEN = 'ghp_fromVsCodeSecretStorage_0123456789';
    const agent = await run<{ id: string }>('createAgent', { backendId: 'local', name: 'secret-shell', harness: 'shell', model: 'none' });
    assert.ok(agent?.id, `create failed: ${messages.at(-1)?.message}`);
    await run('setAgentSecret', { backendId: 'local', agentId: agent.id, name: 'GITHUB_TOKEN', value: TOKEN, hosts: ['github.com', 'api.github.com'] });
    let stored = await api.local.client.getAgent(agent.id);
    assert.equal(stored.env_vars?.GITHUB_TOKEN, TOKEN);
    assert.deepEqual(stored.env_var_hosts?.GITHUB_TOKEN, ['github.com', 'api.github.com']);
    assert.deepEqual(stored.allow_out, ['github.com', 'api.github.com'], 'bound hosts must be inside allow_out (the platform\'s rule): the agent got an allow-list');

    // The bridge keeps values in memory only: a restarted bridge gets them from the extension again.
    const pid = pidOf('host');
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    await api.local.ready();
    assert.notEqual(pidOf('host'), pid);
    stored = await api.local.client.getAgent(agent.id);
    assert.equal(stored.env_vars?.GITHUB_TOKEN, TOKEN, 'handed over again after the restart');

    // Precise errors for bad input, nothing changed.
    const before = messages.length;
    await run('setAgentSecret', { backendId: 'local', agentId: agent.id, name: 'PORT', value: 'x', hosts: ['example.com'] });
    await run('setAgentSecret', { backendId: 'local', agentId: agent.id, name: 'OTHER', value: 'x' });
    await run('setAgentSecret', { backendId: 'local', agentId: agent.id, name: 'OTHER', value: 'x', hosts: ['not a host'] });
    const errors = messages.slice(before).map((m) => m.message);
    assert.match(errors[0], /PORT is reserved/);
    assert.match(errors[1], /needs at least one host/);
    assert.match(errors[2], /"not a host" is not a host name/);
    assert.deepEqual(Object.keys((await api.local.client.getAgent(agent.id)).env_var_hosts ?? {}), ['GITHUB_TOKEN']);

    // A session's stub sent toward a host the secret is not bound to goes out unchanged and is listed.
    await config().update('local.runtime', 'host', vscode.ConfigurationTarget.Global);
    await api.local.client.patchAgent(agent.id, { allow_out: ['127.0.0.1'] });
    const session = await run<{ id: string; status: string }>('startSession', { backendId: 'local', agentId: agent.id });
    assert.equal(session?.status, 'ready', `start failed: ${messages.at(-1)?.message}`);
    // Where the session's sockets are (a short folder when the state dir is deep, as here).
    const egress = layout(join(stateBase, 'host', 'sessions', session.id)).egressDir;
    const stub = (JSON.parse(readFileSync(join(egress, 'init.json'), 'utf8')) as { env: Record<string, string> }).env.GITHUB_TOKEN;
    assert.match(stub, /^stub_GITHUB_TOKEN_[0-9a-f]{8}$/);
    const seen: string[] = [];
    const upstream = http.createServer((req, res) => {
      seen.push(String(req.headers.authorization));
      res.end('ok');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const port = (upstream.address() as AddressInfo).port;
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: join(egress, 'egress.sock'), method: 'GET', path: `http://127.0.0.1:${port}/user`, headers: { host: `127.0.0.1:${port}`, authorization: `token ${stub}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    upstream.close();
    assert.equal(status, 200);
    assert.deepEqual(seen, [`token ${stub}`], 'an unbound host gets the stub, never the value');
    const list = await run<{ blocked: { credential: string; host: string; path: string; where: string }[] }>('showBlockedRequests', { backendId: 'local', sessionId: session.id });
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    assert.deepEqual(list?.blocked.map((b) => [b.credential, b.host, b.path, b.where]), [['GITHUB_TOKEN', '127.0.0.1', '/user', 'header']]);
    const rows = (await api.tree.getChildren(await localNode())).filter((n) => n.kind === 'agent');
    const sessionRow = (await api.tree.getChildren(rows.find((r) => label(r) === 'secret-shell')!)).find((n) => n.kind === 'session');
    assert.match(String(api.tree.getTreeItem(sessionRow!).contextValue), /^session\.ready\.terminal\.local$/);

    await run('setAgentSecret', { backendId: 'local', agentId: agent.id, name: 'GITHUB_TOKEN', value: '' });
    assert.deepEqual((await api.local.client.getAgent(agent.id)).env_var_hosts ?? {}, {});
    await run('stopSession', { backendId: 'local', sessionId: session.id, confirmed: true });
    await run('deleteAgent', { backendId: 'local', agentId: agent.id, confirmed: true });
  });

  it('a changed bridge setting restarts the running bridge with it (sessions survive a bridge restart)', async () => {
    await api.local.ready();
    const pid = pidOf('host');
    await config().update('local.baseImage', 'example.org/base:1', vscode.ConfigurationTarget.Global);
    try {
      await api.local.ready();
      assert.notEqual(pidOf('host'), pid, 'a new bridge');
      const info = JSON.parse(readFileSync(join(stateBase, 'host', 'bridge.json'), 'utf8')) as { settings: { base_image: string } };
      assert.equal(info.settings.base_image, 'example.org/base:1');
    } finally {
      await config().update('local.baseImage', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  it('Docker unreachable: one precise message naming the socket, with Retry, host runtime, sign-in and install', async () => {
    await config().update('local.dockerHost', 'unix:///nonexistent/docker.sock', vscode.ConfigurationTarget.Global);
    await config().update('local.runtime', 'docker', vscode.ConfigurationTarget.Global);
    const before = messages.length;
    const node = await localNode();
    assert.equal(label(node), 'Local — Docker');
    const [row] = await api.tree.getChildren(node);
    assert.equal(row.kind, 'message');
    assert.equal(label(row), 'Docker is not reachable at unix:///nonexistent/docker.sock: no Docker socket there');
    const shown = messages.slice(before).find((m) => m.message.startsWith('Docker is not reachable'));
    assert.ok(shown, 'a message was shown');
    assert.deepEqual(shown.actions, ['Retry', 'Use Host Runtime (Unsandboxed)', 'Sign In to a Platform', 'Install Docker']);
    // Creating an agent there says the same, instead of failing later.
    await run('createAgent', { backendId: 'local', name: 'x', harness: 'shell', model: 'none' });
    assert.match(messages.at(-1)!.message, /^Docker is not reachable/);
  });
});
