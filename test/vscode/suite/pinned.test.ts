/**
 * Workspace-pinned agents in a real VS Code: the file in the test workspace folder is loaded and watched,
 * its agents are shown first in the Agents view, and an open copy gets both the JSON Schema's errors
 * (contributes.jsonValidation, from the generated dist/sandbox-agents.schema.json) and ours with exact ranges.
 */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { SandboxAgentsApi } from '../../../extension/extension';
import type { TreeNode } from '../../../extension/agentsTree';

const EXTENSION_ID = 'sandbox-agents.sandbox-agents';

/** Polls until `fn` returns a value (the extension reacts to file events asynchronously; the file
 *  watcher of the test VS Code can take many seconds to report a new file on a loaded machine). */
async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 50_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('Workspace-pinned agents', function () {
  this.timeout(120_000);
  let api: SandboxAgentsApi;
  let folder: vscode.WorkspaceFolder;
  let file: vscode.Uri;
  const write = (text: string) => vscode.workspace.fs.writeFile(file, new TextEncoder().encode(text));

  before(async () => {
    const ext = vscode.extensions.getExtension<SandboxAgentsApi>(EXTENSION_ID);
    assert.ok(ext);
    api = await ext.activate();
    folder = vscode.workspace.workspaceFolders![0];
    file = vscode.Uri.joinPath(folder.uri, '.vscode', 'sandbox-agents.json');
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.workspace.fs.delete(file).then(undefined, () => undefined);
  });

  const sample = `{
  // The team's agents.
  "agents": [
    { "name": "shell", "harness": "shell" },
    { "name": "reviewer", "harness": "claude-code", "backend": "nowhere", "env": { "API_KEY": "sk-123" } },
    { "name": "shell", "harness": "codex", "modle": "typo" }
  ]
}
`;

  it('loads the file when it appears, and shows its agents first in the Agents view', async () => {
    await write(sample);
    const names = await until('the pinned agents', () => {
      const n = api.pinned.entries().map((e) => e.agent.name);
      return n.length > 0 ? n : undefined;
    });
    // The third entry has an unknown field: it alone is left out, with the problem shown.
    assert.deepEqual(names, ['shell', 'reviewer']);
    assert.match(api.pinned.all()[0].problem ?? '', /agents\.2/);
    const roots = await api.tree.getChildren();
    assert.equal(roots[0].kind, 'pinnedGroup');
    const kids = await api.tree.getChildren(roots[0]);
    assert.deepEqual(
      kids.filter((k): k is Extract<TreeNode, { kind: 'pinned' }> => k.kind === 'pinned').map((k) => k.agent.name),
      ['shell', 'reviewer'],
    );
    assert.ok(kids.some((k) => k.kind === 'message' && /agents\.2/.test(k.label)));
    const item = api.tree.getTreeItem(kids[0]);
    assert.equal(item.contextValue, vscode.workspace.isTrusted ? 'pinned' : 'pinned.restricted');
  });

  it('reloads on change and drops the group when the file is deleted', async () => {
    await write(sample.replace('"name": "reviewer"', '"name": "critic"'));
    await until('the renamed agent', () => (api.pinned.entries().some((e) => e.agent.name === 'critic') ? true : undefined));
    await vscode.workspace.fs.delete(file);
    await until('the group to go', () => (api.pinned.all().length === 0 ? true : undefined));
    const roots = await api.tree.getChildren();
    assert.ok(!roots.some((r) => r.kind === 'pinnedGroup'));
    await write(sample);
    await until('the file again', () => (api.pinned.entries().length === 2 ? true : undefined));
  });

  it('an open copy gets our diagnostics at exact ranges, and the JSON Schema errors from jsonValidation', async () => {
    const doc = await vscode.workspace.openTextDocument(file);
    await vscode.window.showTextDocument(doc);
    const text = doc.getText();
    const rangeOf = (needle: string, n = 0) => {
      let i = -1;
      for (let k = 0; k <= n; k++) i = text.indexOf(needle, i + 1);
      return new vscode.Range(doc.positionAt(i), doc.positionAt(i + needle.length));
    };
    const ours = await until('our diagnostics', () => {
      const d = vscode.languages.getDiagnostics(file).filter((x) => x.source === 'Sandbox Agents');
      return d.length >= 3 ? d : undefined;
    });
    const find = (re: RegExp) => ours.find((d) => re.test(d.message));
    assert.ok(find(/Unknown platform "nowhere"/)!.range.isEqual(rangeOf('"nowhere"')));
    assert.ok(find(/Duplicate agent name "shell"/)!.range.isEqual(rangeOf('"shell"', 2)));
    assert.ok(find(/use \{"secret": "NAME"\}/)!.range.isEqual(rangeOf('"sk-123"')));

    // The schema, through VS Code's JSON language service: the typo'd field is not allowed.
    const schemaErrors = await until('JSON Schema diagnostics', () => {
      const d = vscode.languages.getDiagnostics(file).filter((x) => x.source !== 'Sandbox Agents' && /modle/.test(x.message));
      return d.length > 0 ? d : undefined;
    });
    assert.ok(schemaErrors[0].range.contains(rangeOf('"modle"').start));

    // Configuring the platform clears that error.
    await vscode.workspace.getConfiguration('sandboxAgents').update('platforms', { nowhere: 'http://127.0.0.1:9' }, vscode.ConfigurationTarget.Global);
    try {
      await until('the platform error to clear', () => (vscode.languages.getDiagnostics(file).some((d) => /Unknown platform/.test(d.message)) ? undefined : true));
    } finally {
      await vscode.workspace.getConfiguration('sandboxAgents').update('platforms', undefined, vscode.ConfigurationTarget.Global);
    }
  });
});
