/**
 * UI end-to-end: a person signs in, creates an agent, starts a session (watching its phases), stops
 * it and deletes the agent, all through the command palette, quick inputs, notifications, dialogs
 * and the Agents view of a real VS Code. Screenshots land in test-results/screenshots/ui-*.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { skipUnlessVSCode, startVSCodeServer, openWorkbench } from '../vscode/server';
import { startPlatformTestServer } from '../fixtures/platformServer';
import { quickInputType, quickPickSelect, runCommand, screenshot, treeItem, viewContainer, waitForNotification, waitForWorkbench } from './workbench';

const REPO = resolve(__dirname, '..', '..');
const GUARD = 30_000;

async function dialogButton(page: Page, label: string): Promise<void> {
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ state: 'visible', timeout: GUARD });
  await dialog.locator('.dialog-buttons .monaco-button', { hasText: new RegExp(`^\\s*${label}\\s*$`) }).click();
  await dialog.waitFor({ state: 'hidden', timeout: GUARD });
}

async function expand(item: Locator): Promise<void> {
  if ((await item.getAttribute('aria-expanded')) === 'false') await item.click();
}

test('sign in → create agent → start session (phases) → stop → delete, through the UI', { timeout: 240_000 }, async (t) => {
  if (skipUnlessVSCode(t)) return;
  const platform = await startPlatformTestServer({ phaseDelayMs: 900, models: ['claude-sonnet-4-5', 'gpt-5'] });
  const host = new URL(platform.url).host;
  const folder = mkdtempSync(join(tmpdir(), 'sa-ui-ws-'));
  const server = await startVSCodeServer();
  const workbench = await openWorkbench(server, { folder, extensionDevelopmentPath: REPO });
  const { page } = workbench;
  try {
    await waitForWorkbench(page);

    // Signed out: Local (collapsed: nothing starts until it is used) and a row offering to sign in.
    const side = await viewContainer(page, 'Sandbox Agents');
    await treeItem(side, 'Local — Docker').waitFor({ state: 'visible', timeout: GUARD });
    await treeItem(side, 'Sign In to Agent Platform…').waitFor({ state: 'visible', timeout: GUARD });
    await screenshot(page, 'ui-01-welcome');

    // A wrong key is refused with a clear message, and nothing is saved.
    await runCommand(page, 'Sandbox Agents: Sign In to Agent Platform');
    await quickInputType(page, platform.url, { password: false });
    await quickInputType(page, 'not-the-key', { password: true });
    assert.equal(await waitForNotification(page, 'The master key was rejected'), `The master key was rejected by ${host}.`);
    await screenshot(page, 'ui-02-wrong-key');

    // The right key: the platform group appears.
    await runCommand(page, 'Sandbox Agents: Sign In to Agent Platform');
    await quickInputType(page, platform.url, { password: false });
    await quickInputType(page, platform.masterKey, { password: true });
    await waitForNotification(page, `Signed in to ${host}`);
    await treeItem(side, `Platform — ${host}`).waitFor({ state: 'visible', timeout: GUARD });
    await treeItem(side, 'No agents yet: Create Agent…').waitFor({ state: 'visible', timeout: GUARD });
    await screenshot(page, 'ui-03-signed-in');

    // Create an agent through the multi-step input.
    await runCommand(page, 'Sandbox Agents: Create Agent');
    await quickPickSelect(page, `Platform — ${host}`);
    await quickInputType(page, 'ui-bot');
    await quickPickSelect(page, 'Claude Code');
    await quickPickSelect(page, 'claude-sonnet-4-5');
    await quickInputType(page, 'You are a careful refactoring assistant.');
    await quickInputType(page, '');
    await waitForNotification(page, 'Agent "ui-bot" created');
    const agent = treeItem(side, 'ui-bot');
    await agent.waitFor({ state: 'visible', timeout: GUARD });
    assert.match(await agent.innerText(), /claude-code · claude-sonnet-4-5/);
    await screenshot(page, 'ui-04-agent-created');

    // Start a session: the progress notification shows the bring-up phases.
    await runCommand(page, 'Sandbox Agents: Start Session');
    await quickPickSelect(page, `Platform — ${host}`);
    await quickPickSelect(page, 'ui-bot');
    const phase = await waitForNotification(page, /Starting ui-bot/);
    assert.match(phase, /Starting ui-bot/);
    await waitForNotification(page, /Starting ui-bot: (Pod|Injecting|Waiting|Harness|Creating)/);
    await screenshot(page, 'ui-05-starting-phase');
    await waitForNotification(page, /ui-bot is ready/);
    await expand(agent);
    const sessionRow = side.locator('.monaco-list-row[role="treeitem"]', { hasText: /ready/ }).first();
    await sessionRow.waitFor({ state: 'visible', timeout: GUARD });
    await screenshot(page, 'ui-06-session-ready');

    // Stop it (confirmed in a dialog): it leaves the tree.
    await runCommand(page, 'Sandbox Agents: Stop Session');
    await quickPickSelect(page, `Platform — ${host}`);
    const sessionId = [...platform.state.sessions.keys()][0];
    await quickPickSelect(page, sessionId);
    await dialogButton(page, 'Stop Session');
    await sessionRow.waitFor({ state: 'hidden', timeout: GUARD });
    assert.equal(platform.state.sessions.get(sessionId)?.status, 'dead');
    await screenshot(page, 'ui-07-session-stopped');

    // Delete the agent (confirmed): the view is empty again.
    await runCommand(page, 'Sandbox Agents: Delete Agent');
    await quickPickSelect(page, `Platform — ${host}`);
    await quickPickSelect(page, 'ui-bot');
    await dialogButton(page, 'Delete');
    await agent.waitFor({ state: 'hidden', timeout: GUARD });
    await treeItem(side, 'No agents yet: Create Agent…').waitFor({ state: 'visible', timeout: GUARD });
    assert.equal(platform.state.agents.size, 0);
    await screenshot(page, 'ui-08-agent-deleted');
  } catch (err) {
    await screenshot(page, 'ui-failure').catch(() => undefined);
    throw err;
  } finally {
    await workbench.close();
    await server.stop();
    await platform.close();
    rmSync(folder, { recursive: true, force: true });
  }
});
