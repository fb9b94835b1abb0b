/**
 * The Chat view in a real VS Code, against the local bridge (host runtime) running the Claude Agent
 * SDK harness with a fake Anthropic model behind the bridge's gateway: Open Chat on an agent starts
 * a session and selects it; a message streams into the transcript kept in the extension host (the
 * user's text, then the model's answer with tokens); the history comes back from the backend on a
 * reload; bad input from the webview is refused without effect.
 */
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { ShownMessage } from '../../../extension/commands';
import type { SandboxAgentsApi } from '../../../extension/extension';
import { FAKE_ANSWER_MARKER, startFakeAnthropic, type FakeAnthropic } from '../../fixtures/fakeAnthropic';

const KEY = 'sk-ant-chat-view-test-0123456789';

describe('Chat view (local bridge, claude-agent-sdk, fake model)', function () {
  this.timeout(180_000);
  let api: SandboxAgentsApi;
  let stateBase: string;
  let fake: FakeAnthropic;
  const messages: ShownMessage[] = [];
  const config = () => vscode.workspace.getConfiguration('sandboxAgents');
  const run = <T = unknown>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(`sandboxAgents.${command}`, ...args);
  const text = (parts: readonly { type: string; text?: string }[]) => parts.filter((p) => p.type === 'text').map((p) => p.text ?? '').join('');

  before(async () => {
    stateBase = mkdtempSync(join(tmpdir(), 'sa-chat-'));
    await config().update('local.stateDir', stateBase, vscode.ConfigurationTarget.Global);
    await config().update('local.runtime', 'host', vscode.ConfigurationTarget.Global);
    fake = await startFakeAnthropic({ apiKey: KEY, answer: (r) => `${FAKE_ANSWER_MARKER} answer to: ${r.lastUserText}` });
    const ext = vscode.extensions.getExtension<SandboxAgentsApi>('sandbox-agents.sandbox-agents');
    api = await ext!.activate();
    api.onDidShowMessage((m) => messages.push(m));
    await run('setModelProviderKey', { provider: 'anthropic', baseUrl: fake.url, apiKey: KEY });
  });

  after(async () => {
    const info = join(stateBase, 'host', 'bridge.json');
    if (existsSync(info)) {
      for (const s of await api.local.client.listSessions({ limit: 200 }).catch(() => [])) await api.local.client.deleteSession(s.id).catch(() => undefined);
      try {
        process.kill((JSON.parse(readFileSync(info, 'utf8')) as { pid: number }).pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    await run('setModelProviderKey', { provider: 'anthropic', apiKey: '' });
    for (const k of ['local.stateDir', 'local.runtime']) await config().update(k, undefined, vscode.ConfigurationTarget.Global);
    await fake?.close();
    await new Promise((r) => setTimeout(r, 300));
    rmSync(stateBase, { recursive: true, force: true });
  });

  it('Open Chat starts a session; a message streams in; history survives a reload; Open Chat on a terminal agent says to use the terminal', async () => {
    await api.local.ready();
    const agent = await run<{ id: string }>('createAgent', { backendId: 'local', name: 'chat-sdk', harness: 'claude-agent-sdk', model: 'claude-sonnet-4-5' });
    assert.ok(agent?.id, `create failed: ${messages.at(-1)?.message}`);
    const session = await run<{ id: string; status: string }>('openChat', { backendId: 'local', agentId: agent.id });
    assert.equal(session?.status, 'ready', `open failed: ${messages.at(-1)?.message}`);
    const chat = api.chat.current;
    assert.ok(chat, 'the chat view selected the session');
    assert.equal(chat.session.id, session.id);

    const seen: boolean[] = [];
    const sub = chat.onDidChange(() => seen.push(chat.transcript.busy));
    await chat.send('hello chat view');
    sub.dispose();
    assert.ok(seen.includes(true), 'the transcript showed the turn running');
    const t = chat.transcript;
    assert.equal(t.busy, false);
    assert.equal(t.error, undefined, t.error);
    const user = t.messages.find((m) => m.info.role === 'user');
    const reply = t.messages.filter((m) => m.info.role === 'assistant').at(-1);
    assert.equal(text(user!.parts as { type: string; text?: string }[]), 'hello chat view');
    assert.equal(text(reply!.parts as { type: string; text?: string }[]), `${FAKE_ANSWER_MARKER} answer to: hello chat view`);
    assert.ok(fake.requests.some((r) => r.apiKey === KEY), 'the model got the real key through the gateway');

    // The transcript lives in the host; after a reload it comes back from the backend.
    const before = JSON.stringify(t.messages.map((m) => [m.info.id, text(m.parts as { type: string; text?: string }[])]));
    await chat.reload();
    assert.equal(JSON.stringify(chat.transcript.messages.map((m) => [m.info.id, text(m.parts as { type: string; text?: string }[])])), before);

    // Send Selection to Agent: the selected lines with their file and language.
    const doc = await vscode.workspace.openTextDocument({ language: 'python', content: 'def add(a, b):\n    return a + b\nprint(add(1, 2))\n' });
    const editor = await vscode.window.showTextDocument(doc);
    editor.selection = new vscode.Selection(0, 0, 2, 0);
    await run('sendSelection', { backendId: 'local', sessionId: session.id });
    const asked = chat.transcript.messages.filter((m) => m.info.role === 'user').at(-1)!;
    const askedText = text(asked.parts as { type: string; text?: string }[]);
    assert.match(askedText, /^From `Untitled-\d+` \(python\), lines 1–2:/, askedText);
    assert.ok(askedText.includes('```python\ndef add(a, b):\n    return a + b\n```'), askedText);
    assert.match(text(chat.transcript.messages.at(-1)!.parts as { type: string; text?: string }[]), new RegExp(FAKE_ANSWER_MARKER));
    editor.selection = new vscode.Selection(0, 0, 0, 0);
    const before2 = messages.length;
    await run('sendSelection', { backendId: 'local', sessionId: session.id });
    assert.match(messages.slice(before2).map((m) => m.message).join('\n'), /Select some code in an editor first/);
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');

    // A terminal agent has no chat.
    const shell = await run<{ id: string }>('createAgent', { backendId: 'local', name: 'chat-shell', harness: 'shell', model: 'none' });
    const count = messages.length;
    await run('openChat', { backendId: 'local', agentId: shell.id });
    assert.match(messages.slice(count).map((m) => m.message).join('\n'), /a terminal harness: use Open Terminal/);
  });
});
