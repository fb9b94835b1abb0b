/**
 * Starting a pinned agent in a real VS Code, on the local bridge (host runtime): "Start" creates the agent
 * as pinned and starts a session; after an edit of the file a sync patches it; a harness change recreates
 * it (confirmed), leaving one agent of that name.
 */
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { SandboxAgentsApi } from '../../../extension/extension';
import type { ShownMessage } from '../../../extension/commands';

describe('Pinned agents: start and sync on the local bridge (host runtime)', function () {
  this.timeout(90_000);
  let api: SandboxAgentsApi;
  let stateBase: string;
  let file: vscode.Uri;
  const messages: ShownMessage[] = [];
  const config = () => vscode.workspace.getConfiguration('sandboxAgents');
  const run = <T = unknown>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(`sandboxAgents.${command}`, ...args);
  const write = (text: string) => vscode.workspace.fs.writeFile(file, new TextEncoder().encode(text));
  async function until<T>(what: string, fn: () => T | undefined): Promise<T> {
    for (const end = Date.now() + 20_000; ; ) {
      const v = fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  before(async () => {
    stateBase = mkdtempSync(join(tmpdir(), 'sa-pinned-'));
    await config().update('local.stateDir', stateBase, vscode.ConfigurationTarget.Global);
    await config().update('local.runtime', 'host', vscode.ConfigurationTarget.Global);
    api = await vscode.extensions.getExtension<SandboxAgentsApi>('sandbox-agents.sandbox-agents')!.activate();
    api.onDidShowMessage((m) => messages.push(m));
    file = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, '.vscode', 'sandbox-agents.json');
  });

  after(async () => {
    await vscode.workspace.fs.delete(file).then(undefined, () => undefined);
    const info = join(stateBase, 'host', 'bridge.json');
    if (existsSync(info)) {
      for (const s of await api.local.client.listSessions({ limit: 200 }).catch(() => [])) await api.local.client.deleteSession(s.id).catch(() => undefined);
      try {
        process.kill((JSON.parse(readFileSync(info, 'utf8')) as { pid: number }).pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    for (const k of ['local.stateDir', 'local.runtime']) await config().update(k, undefined, vscode.ConfigurationTarget.Global);
    await new Promise((r) => setTimeout(r, 300));
    rmSync(stateBase, { recursive: true, force: true });
  });

  it('Start creates the agent as pinned and starts a session; sync patches after an edit; a harness change recreates', async () => {
    await write(`{
  // a comment
  "agents": [{ "name": "pinned-shell", "harness": "shell", "env": { "GREETING": "hello" } }]
}`);
    await until('the pinned agent', () => (api.pinned.entries().some((e) => e.agent.name === 'pinned-shell') ? true : undefined));
    const session = await run<{ id: string; status: string; agent_id?: string }>('startPinnedAgent', { name: 'pinned-shell' });
    assert.equal(session?.status, 'ready', `start failed: ${messages.at(-1)?.message}`);
    const agent = await api.local.client.findAgentByName('pinned-shell');
    assert.ok(agent);
    assert.equal(agent.id, session.agent_id);
    assert.equal(agent.harness_id, 'shell');
    assert.deepEqual(agent.env_vars, { GREETING: 'hello' });
    assert.equal(agent.workspace_path, vscode.workspace.workspaceFolders![0].uri.fsPath, 'mounts the workspace folder');

    await write(`{
  // a comment
  "agents": [{ "name": "pinned-shell", "harness": "shell", "env": { "GREETING": "bonjour" }, "workspace": "none" }]
}`);
    await until('the edit', () => (api.pinned.entries().some((e) => e.agent.workspace === 'none') ? true : undefined));
    const synced = await run<{ id: string; env_vars?: Record<string, string>; workspace_mode?: string }>('syncPinnedAgent', { name: 'pinned-shell' });
    assert.equal(synced?.id, agent.id, `sync failed: ${messages.at(-1)?.message}`);
    assert.deepEqual((await api.local.client.getAgent(agent.id)).env_vars, { GREETING: 'bonjour' });

    // Rejected in place by the rules (harness is immutable): recreated when confirmed.
    await write(`{"agents": [{ "name": "pinned-shell", "harness": "opencode", "workspace": "none" }]}`);
    await until('the harness change', () => (api.pinned.entries().some((e) => e.agent.harness === 'opencode') ? true : undefined));
    const recreated = await run<{ id: string; harness_id: string }>('syncPinnedAgent', { name: 'pinned-shell', confirmed: true });
    assert.equal(recreated?.harness_id, 'opencode', `recreate failed: ${messages.at(-1)?.message}`);
    assert.notEqual(recreated.id, agent.id);
    assert.equal((await api.local.client.listAllAgents()).filter((a) => a.name === 'pinned-shell').length, 1);
  });

  it('Pin Agent to Workspace writes the entry into the file, keeping its comments and other entries', async () => {
    const original = `{
  // Our agents: this comment stays.
  "agents": [
    /* first */ { "name": "pinned-shell", "harness": "opencode", "workspace": "none" }
  ]
}
`;
    await write(original);
    await until('the file', () => (api.pinned.entries().length === 1 ? true : undefined));
    const created = await run<{ id: string }>('createAgent', { backendId: 'local', name: 'to-pin', harness: 'shell', model: 'none' });
    assert.ok(created?.id, `create failed: ${messages.at(-1)?.message}`);
    const uri = await run<vscode.Uri>('pinAgent', { backendId: 'local', agentId: created.id });
    assert.equal(uri?.toString(), file.toString(), `pin failed: ${messages.at(-1)?.message}`);
    const text = new TextDecoder().decode(await vscode.workspace.fs.readFile(file));
    assert.ok(text.startsWith(original.slice(0, original.indexOf(' }') + 2)), `the start of the file is unchanged:\n${text}`);
    assert.ok(text.includes('// Our agents: this comment stays.') && text.includes('/* first */'));
    await until('the pinned entry', () => (api.pinned.entries().some((e) => e.agent.name === 'to-pin' && e.agent.harness === 'shell') ? true : undefined));
    const roots = await api.tree.getChildren();
    const pinnedRows = await api.tree.getChildren(roots.find((r) => r.kind === 'pinnedGroup'));
    assert.deepEqual(pinnedRows.map((r) => (r.kind === 'pinned' ? r.agent.name : r.kind)), ['pinned-shell', 'to-pin']);
  });
});
