// The UI end-to-end harness shows a real VS Code: an "[Extension Development Host]" window with this
// extension loaded, whose command palette and Explorer work. Screenshot:
// test-results/screenshots/smoke-explorer.png.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { openWorkbench, skipUnlessVSCode, startVSCodeServer } from '../vscode/server';
import { runCommand, screenshot, treeItem, viewContainer, waitForWorkbench } from './workbench';

const REPO_ROOT = resolve(__dirname, '..', '..');

test('the workbench opens the Explorer on the workspace from the command palette', { timeout: 180_000 }, async (t) => {
  if (skipUnlessVSCode(t)) return;
  const folder = mkdtempSync(join(tmpdir(), 'sa-workspace-'));
  writeFileSync(join(folder, 'notes.md'), '# notes\n');
  const server = await startVSCodeServer();
  try {
    const workbench = await openWorkbench(server, { folder, extensionDevelopmentPath: REPO_ROOT });
    const { page } = workbench;
    try {
      await waitForWorkbench(page);
      assert.match(await page.title(), /^\[Extension Development Host\]/);

      const sideBar = await viewContainer(page, 'Search');
      await runCommand(page, 'View: Show Explorer');
      await sideBar.locator('.composite.title', { hasText: /explorer/i }).waitFor();
      await treeItem(sideBar, 'notes.md').waitFor();
      await screenshot(page, 'smoke-explorer');
    } catch (err) {
      await screenshot(page, 'smoke-explorer-failure').catch(() => undefined);
      throw err;
    } finally {
      await workbench.close();
    }
  } finally {
    await server.stop();
    rmSync(folder, { recursive: true, force: true });
  }
});
