/**
 * UI end-to-end: the Chat view in a real VS Code against the platform test server's opencode-style
 * harness (scripted, streamed replies): Open Chat on an agent starts its session and shows the view;
 * a message typed in the view streams its reply in; Stop aborts a running reply; after a window
 * reload the view shows the same conversation again (from the backend's history).
 * Screenshots: test-results/screenshots/chat-ui-*.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { startPlatformTestServer } from '../fixtures/platformServer';
import { openWorkbench, skipUnlessVSCode, startVSCodeServer } from '../vscode/server';
import { quickPickSelect, runCommand, screenshot, signInToPlatform, waitForWorkbench } from './workbench';

const REPO = resolve(__dirname, '..', '..');
const GUARD = 60_000;

function chatFrame(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
}

async function send(page: Page, text: string): Promise<void> {
  const frame = chatFrame(page);
  await frame.locator('#input').click();
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

test('the Chat view: open on an agent, stream a reply, stop one, reload and find the conversation', { timeout: 300_000 }, async (t) => {
  if (skipUnlessVSCode(t)) return;
  const platform = await startPlatformTestServer({ phaseDelayMs: 150, streamDelayMs: 80 });
  const host = new URL(platform.url).host;
  const created = await fetch(`${platform.url}/api/v1/managed_agents/agents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${platform.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'chat-ui', model: 'gpt-5', harness_id: 'opencode' }),
  });
  assert.equal(created.status, 200, await created.text());
  const folder = mkdtempSync(join(tmpdir(), 'sa-chat-ui-ws-'));
  const server = await startVSCodeServer();
  const workbench = await openWorkbench(server, { folder, extensionDevelopmentPath: REPO });
  const { page } = workbench;
  try {
    await waitForWorkbench(page);
    await signInToPlatform(page, platform);

    // Open Chat on the agent: its session starts, then the view shows it.
    await runCommand(page, 'Sandbox Agents: Open Chat');
    await quickPickSelect(page, `Platform — ${host}`);
    await quickPickSelect(page, 'chat-ui');
    const frame = chatFrame(page);
    await frame.locator('#input').waitFor({ state: 'visible', timeout: GUARD });

    // A reply streams in: reasoning first, then the text.
    await send(page, 'hello from the UI');
    await frame.locator('article.message.user', { hasText: 'hello from the UI' }).waitFor({ timeout: GUARD });
    await frame.locator('article.message.assistant', { hasText: 'Echo: hello from the UI' }).waitFor({ timeout: GUARD });
    assert.equal(await frame.locator('#stop').isHidden(), true, 'no turn running any more');
    await screenshot(page, 'chat-ui-01-reply');

    // Stop during a long reply: what arrived stays, the view says it stopped.
    const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    await send(page, long);
    await frame.locator('#stop').waitFor({ state: 'visible', timeout: GUARD });
    await frame.locator('article.message.assistant', { hasText: 'Echo: word0' }).waitFor({ timeout: GUARD });
    await frame.locator('#stop').click();
    await frame.locator('#status', { hasText: 'Stopped.' }).waitFor({ timeout: GUARD });
    assert.ok(platform.requests.some((r) => r.method === 'POST' && r.path.endsWith('/abort')), 'the backend was asked to abort the turn');
    assert.equal(await frame.locator('#stop').isHidden(), true, 'no turn running any more');
    await screenshot(page, 'chat-ui-02-stopped');

    // Reload the window: the view comes back with the same conversation.
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForTimeout(1000);
    await waitForWorkbench(page);
    // This test's web VS Code may keep no secrets across a reload: then the platform key is asked again.
    const restored = () => chatFrame(page).locator('article.message.assistant', { hasText: 'Echo: hello from the UI' });
    const shown = await restored().waitFor({ timeout: 20_000 }).then(() => true, () => false);
    if (!shown) {
      await signInToPlatform(page, platform);
      await restored().waitFor({ timeout: GUARD });
    }
    await screenshot(page, 'chat-ui-03-after-reload');
  } catch (err) {
    await screenshot(page, 'chat-ui-failure').catch(() => undefined);
    throw err;
  } finally {
    await workbench.close();
    await server.stop();
    await platform.close();
    rmSync(folder, { recursive: true, force: true });
  }
});
