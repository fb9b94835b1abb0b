/**
 * The Agents view and its commands in a real VS Code, against the platform test server (started
 * here, inside the extension host). Commands are driven through `vscode.commands` with the same
 * arguments the tree passes; what a person would see is read from the tree and the messages shown.
 */
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as vscode from 'vscode';
import type { SandboxAgentsApi } from '../../../extension/extension';
import type { ShownMessage } from '../../../extension/commands';
import type { TreeNode } from '../../../extension/agentsTree';
import { startPlatformTestServer, type PlatformTestServer } from '../../fixtures/platformServer';

const EXTENSION_ID = 'sandbox-agents.sandbox-agents';

describe('Agents view and commands (platform test server)', function () {
  this.timeout(60_000);
  let server: PlatformTestServer;
  let api: SandboxAgentsApi;
  const messages: ShownMessage[] = [];
  const extras: { close(): unknown }[] = [];

  const run = <T = unknown>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(`sandboxAgents.${command}`, ...args);
  const lastMessage = () => messages.at(-1);
  async function messageAfter(fn: () => Thenable<unknown> | Promise<unknown>): Promise<ShownMessage> {
    const before = messages.length;
    await fn();
    assert.ok(messages.length > before, 'expected a message to be shown');
    return messages.at(-1)!;
  }
  async function children(node?: TreeNode): Promise<TreeNode[]> {
    return api.tree.getChildren(node);
  }
  function label(node: TreeNode): string {
    const item = api.tree.getTreeItem(node);
    return typeof item.label === 'string' ? item.label : (item.label?.label ?? '');
  }
  /** The root nodes for the platform (the Local group and the sign-in row aside). */
  async function platformRoots(): Promise<TreeNode[]> {
    return (await children()).filter((n) => n.kind === 'backend' && n.backend.kind === 'platform');
  }
  async function agentNode(name: string): Promise<TreeNode | undefined> {
    const [group] = await platformRoots();
    return (await children(group)).find((n) => n.kind === 'agent' && n.agent.name === name);
  }

  before(async () => {
    server = await startPlatformTestServer({ phaseDelayMs: 60 });
    await vscode.workspace.getConfiguration('sandboxAgents').update('platform.url', server.url, vscode.ConfigurationTarget.Global);
    const ext = vscode.extensions.getExtension<SandboxAgentsApi>(EXTENSION_ID);
    assert.ok(ext, 'extension is installed');
    api = await ext.activate();
    api.onDidShowMessage((m) => messages.push(m));
  });

  after(async () => {
    await run('signOut');
    await vscode.workspace.getConfiguration('sandboxAgents').update('platform.url', undefined, vscode.ConfigurationTarget.Global);
    for (const e of extras) await e.close();
    await server?.close();
  });

  it('activation makes no network request, even with a platform URL configured', async () => {
    await api.backends.ready();
    assert.equal(server.requests.length, 0);
  });

  it('signed out: no platform group, and a row offers to sign in', async () => {
    assert.deepEqual(await platformRoots(), []);
    const signIn = (await children()).find((n) => n.kind === 'message' && n.id === 'sign-in');
    assert.ok(signIn, 'a sign-in row');
    assert.equal(api.tree.getTreeItem(signIn).command?.command, 'sandboxAgents.signIn');
  });

  it('sign in with a wrong key says the key was rejected and saves nothing', async () => {
    const host = new URL(server.url).host;
    const m = await messageAfter(() => run('signIn', { url: server.url, masterKey: 'wrong-key-value' }));
    assert.equal(m.severity, 'error');
    assert.equal(m.message, `The master key was rejected by ${host}.`);
    assert.ok(!m.message.includes('wrong-key-value'));
    assert.equal(api.backends.all().filter((b) => b.kind === 'platform').length, 0);
  });

  it('sign in to an unreachable URL names the URL and the reason', async () => {
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((r) => dead.close(() => r()));
    const m = await messageAfter(() => run('signIn', { url, masterKey: server.masterKey }));
    assert.equal(m.message, `Cannot reach ${url}: connection refused (is it running, and is the port right?)`);
  });

  it('sign in to a URL without a scheme says how to fix it', async () => {
    const m = await messageAfter(() => run('signIn', { url: 'agents.example.com', masterKey: 'k' }));
    assert.match(m.message, /"agents\.example\.com" has no scheme: use https:\/\/agents\.example\.com/);
  });

  it('sign in to something that answers HTML says it is not the platform', async () => {
    const html = http.createServer((_q, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><html><head><title>Router login</title></head></html>');
    });
    await new Promise<void>((r) => html.listen(0, '127.0.0.1', r));
    extras.push({ close: () => new Promise((r) => html.close(r)) });
    const url = `http://127.0.0.1:${(html.address() as AddressInfo).port}`;
    const m = await messageAfter(() => run('signIn', { url, masterKey: 'k' }));
    assert.match(m.message, /HTML page \("Router login"\)/);
    assert.equal(api.backends.all().filter((b) => b.kind === 'platform').length, 0);
  });

  it('sign in with the right key: the platform group appears', async () => {
    const ok = await run<boolean>('signIn', { url: server.url, masterKey: server.masterKey });
    assert.equal(ok, true);
    const roots = await platformRoots();
    assert.equal(roots.length, 1);
    assert.equal(label(roots[0]), `Platform — ${new URL(server.url).host}`);
    assert.equal(vscode.workspace.getConfiguration('sandboxAgents').get('platform.url'), server.url);
    const empty = await children(roots[0]);
    assert.equal(empty[0].kind, 'message');
    assert.match(label(empty[0]), /No agents yet/);
  });

  it('create agent: it is listed with its harness and model', async () => {
    const agent = await run<{ id: string; name: string }>('createAgent', { backendId: 'platform', name: 'refactor-bot', harness: 'claude-code', model: 'claude-sonnet-4-5', prompt: 'Be brief.' });
    assert.ok(agent?.id);
    const node = await agentNode('refactor-bot');
    assert.ok(node, 'agent shown in the tree');
    assert.equal(api.tree.getTreeItem(node).description, 'claude-code · claude-sonnet-4-5');
    assert.equal(api.tree.getTreeItem(node).contextValue, 'agent.terminal');
  });

  it('create agent: a duplicate name, a harness the platform lacks and a rejected body each get one clear message', async () => {
    let m = await messageAfter(() => run('createAgent', { backendId: 'platform', name: 'refactor-bot', harness: 'opencode', model: 'gpt-5' }));
    assert.match(m.message, /An agent named "refactor-bot" already exists/);
    m = await messageAfter(() => run('createAgent', { backendId: 'platform', name: 'sh', harness: 'shell', model: 'none' }));
    assert.match(m.message, /does not run the "shell" harness/);
    server.failNext({ method: 'POST', path: '/api/v1/managed_agents/agents' }, { status: 400, body: { error: [{ code: 'invalid_type', path: ['model'], message: 'Required' }] } });
    m = await messageAfter(() => run('createAgent', { backendId: 'platform', name: 'x-bot', harness: 'opencode', model: 'gpt-5' }));
    assert.match(m.message, /rejected the agent: model: Required/);
  });

  it('start session: phases are reported live until ready, and the session shows in the tree', async () => {
    const node = await agentNode('refactor-bot');
    assert.ok(node && node.kind === 'agent');
    const phases: string[] = [];
    const sub = api.sessions.onDidChangeSession(({ session }) => phases.push(`${session.status}/${session.phase ?? ''}`));
    const session = await run<{ id: string; status: string; tty_url?: string }>('startSession', node);
    sub.dispose();
    assert.equal(session?.status, 'ready');
    assert.ok(phases.length >= 3, `phases seen: ${phases.join(', ')}`);
    assert.ok(phases[0].startsWith('creating/'));
    assert.equal(new Set(phases).size, phases.length, 'only changes are reported');
    assert.match(lastMessage()!.message, /refactor-bot is ready/);
    const sessions = await children(node);
    const row = sessions.find((n) => n.kind === 'session' && n.session.id === session!.id);
    assert.ok(row, 'session listed under its agent');
    assert.equal(api.tree.getTreeItem(row).contextValue, 'session.ready.terminal');
  });

  it('a session that fails to start shows its reason with Show Details and Retry', async () => {
    await run('createAgent', { backendId: 'platform', name: 'fail-bot', harness: 'opencode', model: 'gpt-5' });
    const node = await agentNode('fail-bot');
    const m = await messageAfter(() => run('startSession', node));
    assert.equal(m.severity, 'error');
    assert.match(m.message, /^fail-bot failed to start: .+/);
    assert.deepEqual(m.actions, ['Show Details', 'Retry']);
    const rows = await children(node);
    assert.ok(rows.some((n) => n.kind === 'session' && n.session.status === 'failed'), 'failed session stays visible');
  });

  it('stop session: the session is deleted and leaves the tree', async () => {
    const node = await agentNode('refactor-bot');
    const [row] = (await children(node)).filter((n) => n.kind === 'session');
    assert.ok(row && row.kind === 'session');
    const stopped = await run<boolean>('stopSession', { backendId: 'platform', sessionId: row.session.id, confirmed: true });
    assert.equal(stopped, true);
    assert.equal(server.state.sessions.get(row.session.id)?.status, 'dead');
    const rows = (await children(node)).filter((n) => n.kind === 'session');
    assert.ok(!rows.some((n) => n.kind === 'session' && n.session.id === row.session.id));
  });

  it('a platform error while listing shows in the tree with the platform text, for each error shape', async () => {
    const [group] = await platformRoots();
    for (const body of [{ error: 'database is locked' }, { error: { error: 'controller crashed' } }, { error: [{ path: ['limit'], message: 'Too big' }] }]) {
      server.failNext({ method: 'GET', path: '/api/v1/managed_agents/agents' }, { status: 500, body });
      const [node] = await children(group);
      assert.equal(node.kind, 'message');
      const text = label(node);
      assert.match(text, /answered 500: (database is locked|controller crashed|limit: Too big)/);
    }
  });

  it('copy session id puts it on the clipboard', async () => {
    const node = await agentNode('fail-bot');
    const [row] = (await children(node)).filter((n) => n.kind === 'session');
    assert.ok(row && row.kind === 'session');
    const id = await run<string>('copySessionId', row);
    assert.equal(id, row.session.id);
    assert.equal(await vscode.env.clipboard.readText(), row.session.id);
  });

  it('delete agent: gone from the tree and from the platform', async () => {
    for (const name of ['refactor-bot', 'fail-bot']) {
      const node = await agentNode(name);
      assert.ok(node && node.kind === 'agent');
      assert.equal(await run<boolean>('deleteAgent', { backendId: 'platform', agentId: node.agent.id, confirmed: true }), true);
      assert.equal(await agentNode(name), undefined);
      assert.equal(server.state.agents.has(node.agent.id), false);
    }
  });

  it('sign out forgets the key: the backend disappears', async () => {
    await run('signOut');
    assert.deepEqual(await platformRoots(), []);
    assert.equal(api.backends.all().filter((b) => b.kind === 'platform').length, 0);
  });
});
