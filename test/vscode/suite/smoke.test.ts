// The extension is installed in a real VS Code and activates without throwing.
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';

const EXTENSION_ID = 'sandbox-agents.sandbox-agents';

describe('Sandbox Agents in VS Code', () => {
  it('is one of the installed extensions', () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not among ${vscode.extensions.all.length} extensions`);
    assert.equal(ext.packageJSON.name, 'sandbox-agents');
  });

  it('activates without throwing', async function () {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext);
    const main = typeof ext.packageJSON.main === 'string' ? join(ext.extensionPath, ext.packageJSON.main) : undefined;
    if (!main || !existsSync(main)) this.skip(); // the extension bundle is not built yet
    await ext.activate();
    assert.equal(ext.isActive, true);
  });
});
