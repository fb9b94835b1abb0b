/**
 * UI end-to-end: a local `shell` agent (bridge, host runtime) opened as a terminal tab in a real VS
 * Code: type and see the answer, resize the editor and see `stty size` follow, lose the bridge and
 * watch the tab reconnect by itself with the screen restored, reload the window and find the tab back
 * and attached. Screenshots: test-results/screenshots/term-*.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openWorkbench, skipUnlessVSCode, startVSCodeServer } from '../vscode/server';
import { quickInputType, quickPickSelect, runCommand, screenshot, signInToPlatform, waitForNotification, waitForWorkbench } from './workbench';
import { createLocalShellAgent, endLocalBridge, terminalFrame, terminalRows as rows, typeInTerminal as typeLine, waitForTerminalRow as waitForRow } from './terminalTab';
import { startPlatformTestServer } from '../fixtures/platformServer';

const REPO = resolve(__dirname, '..', '..');
const GUARD = 30_000;

test('a local shell session in a terminal tab: type, resize, reconnect after the bridge dies, reload', { timeout: 300_000 }, async (t) => {
  if (skipUnlessVSCode(t)) return;
  const stateBase = mkdtempSync(join(tmpdir(), 'sa-term-state-'));
  const folder = mkdtempSync(join(tmpdir(), 'sa-term-ws-'));
  const server = await startVSCodeServer({ userSettings: { 'sandboxAgents.local.runtime': 'host', 'sandboxAgents.local.stateDir': stateBase } });
  const workbench = await openWorkbench(server, { folder, extensionDevelopmentPath: REPO });
  const page = workbench.page;
  const bridgePid = () => (JSON.parse(readFileSync(join(stateBase, 'host', 'bridge.json'), 'utf8')) as { pid: number }).pid;
  try {
    await waitForWorkbench(page);
    // Local is the only backend (not signed in to a platform), so nothing asks where it runs.
    await createLocalShellAgent(page, 'term-shell');

    await runCommand(page, 'Sandbox Agents: Open Terminal');
    await quickPickSelect(page, 'term-shell');
    await terminalFrame(page).locator('.xterm-rows').waitFor({ state: 'visible', timeout: GUARD });
    await waitForRow(page, /[#$] *$/);
    await typeLine(page, 'export E2E_MARK=kept; echo e2e-$((6*7))');
    await waitForRow(page, /^e2e-42\s*$/);
    await screenshot(page, 'term-01-typed');

    // Resize the editor: the PTY follows.
    await typeLine(page, 'stty size');
    await waitForRow(page, /^\d+ \d+\s*$/);
    const before = (await rows(page)).map((l) => l.trim()).filter((l) => /^\d+ \d+$/.test(l)).at(-1);
    assert.ok(before, 'stty printed a size');
    await page.setViewportSize({ width: 1000, height: 650 });
    await page.waitForTimeout(500);
    await typeLine(page, 'clear; stty size');
    const deadline = Date.now() + GUARD;
    let after: string | undefined;
    while (Date.now() < deadline) {
      after = (await rows(page)).map((l) => l.trim()).filter((l) => /^\d+ \d+$/.test(l)).at(-1);
      if (after && after !== before) break;
      await page.waitForTimeout(200);
    }
    assert.notEqual(after, before, `stty size stayed ${before}`);
    await screenshot(page, 'term-02-resized');

    // A `yes` flood: the window stays usable and Ctrl+C gets through.
    await typeLine(page, 'yes');
    await page.waitForTimeout(1500);
    await terminalFrame(page).locator('.xterm-screen').click();
    await page.keyboard.press('Control+C');
    await page.waitForTimeout(300);
    await typeLine(page, 'clear; echo flood-$((10+1))-over');
    await waitForRow(page, /^flood-11-over\s*$/, 60_000);
    await screenshot(page, 'term-02b-after-flood');

    // The bridge dies: the tab says so, the bridge is started again, and the tab reattaches by itself.
    await typeLine(page, 'echo before-drop-$((2+3))');
    await waitForRow(page, /^before-drop-5\s*$/);
    process.kill(bridgePid(), 'SIGKILL');
    await terminalFrame(page).getByText(/Reconnecting/).waitFor({ state: 'visible', timeout: GUARD });
    await screenshot(page, 'term-03-reconnecting');
    // Attached again when the banner is gone (it says "Connecting…" while the bridge restarts).
    await terminalFrame(page).locator('.connection-banner').waitFor({ state: 'hidden', timeout: 60_000 });
    await waitForRow(page, /^before-drop-5\s*$/);
    await typeLine(page, 'echo "mark=$E2E_MARK"');
    await waitForRow(page, /^mark=kept\s*$/);
    await screenshot(page, 'term-04-reattached');

    // Reload the window: the tab comes back and is attached.
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForTimeout(1000);
    await waitForWorkbench(page);
    await terminalFrame(page).locator('.xterm-rows').waitFor({ state: 'visible', timeout: 60_000 });
    await waitForRow(page, /^mark=kept\s*$/, 60_000);
    await typeLine(page, 'echo after-reload-$((4*4))');
    await waitForRow(page, /^after-reload-16\s*$/);
    await screenshot(page, 'term-05-after-reload');
  } catch (err) {
    await screenshot(page, 'term-failure').catch(() => undefined);
    throw err;
  } finally {
    await workbench.close();
    await server.stop();
    endLocalBridge(stateBase);
    if (!process.env.SA_KEEP) rmSync(stateBase, { recursive: true, force: true });
    else console.log(`kept ${stateBase}`);
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a TUI session on the platform (test server: bash in tmux) in a terminal tab: type, reconnect after a cut', { timeout: 300_000 }, async (t) => {
  if (skipUnlessVSCode(t)) return;
  const platform = await startPlatformTestServer({ phaseDelayMs: 100, terminal: true, models: ['claude-sonnet-4-5'] });
  const folder = mkdtempSync(join(tmpdir(), 'sa-term-ws-'));
  const server = await startVSCodeServer({ userSettings: { 'sandboxAgents.local.enabled': false } });
  const workbench = await openWorkbench(server, { folder, extensionDevelopmentPath: REPO });
  const page = workbench.page;
  try {
    await waitForWorkbench(page);
    await signInToPlatform(page, platform);
    await runCommand(page, 'Sandbox Agents: Create Agent');
    await quickInputType(page, 'tui-on-platform');
    await quickPickSelect(page, 'Claude Code');
    await quickPickSelect(page, 'claude-sonnet-4-5');
    await quickInputType(page, '');
    await quickInputType(page, '');
    await waitForNotification(page, 'Agent "tui-on-platform" created');

    // No ready session yet: Open Terminal starts one first, then attaches.
    await runCommand(page, 'Sandbox Agents: Open Terminal');
    await quickPickSelect(page, 'tui-on-platform');
    await terminalFrame(page).locator('.xterm-rows').waitFor({ state: 'visible', timeout: GUARD });
    await waitForRow(page, /\$ *$/);
    await typeLine(page, 'export P_MARK=kept; echo e2e-$((6*7))');
    await waitForRow(page, /^e2e-42\s*$/);
    await screenshot(page, 'term-platform-01-typed');

    // Resize the editor: the program's terminal follows (tmux keeps one status line).
    await typeLine(page, 'stty size');
    await waitForRow(page, /^\d+ \d+\s*$/);
    const sizes = async () => (await rows(page)).map((l) => l.trim()).filter((l) => /^\d+ \d+$/.test(l));
    const first = (await sizes()).at(-1);
    await page.setViewportSize({ width: 1000, height: 650 });
    await page.waitForTimeout(500);
    const until = Date.now() + GUARD;
    let latest = first;
    while (latest === first && Date.now() < until) {
      await typeLine(page, 'stty size');
      await page.waitForTimeout(500);
      latest = (await sizes()).at(-1);
    }
    assert.notEqual(latest, first, `stty size stayed ${first}`);

    platform.dropTerminalSockets();
    await terminalFrame(page).getByText(/Reconnecting/).waitFor({ state: 'visible', timeout: GUARD });
    await terminalFrame(page).locator('.connection-banner').waitFor({ state: 'hidden', timeout: 60_000 });
    await waitForRow(page, /^e2e-42\s*$/);
    await typeLine(page, 'echo "again=$P_MARK"');
    await waitForRow(page, /^again=kept\s*$/);
    await screenshot(page, 'term-platform-02-reattached');
  } catch (err) {
    await screenshot(page, 'term-platform-failure').catch(() => undefined);
    throw err;
  } finally {
    await workbench.close();
    await server.stop();
    await platform.close();
    rmSync(folder, { recursive: true, force: true });
  }
});
