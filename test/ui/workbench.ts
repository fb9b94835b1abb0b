// Helpers for UI end-to-end tests that drive a real VS Code workbench (test/vscode/server.ts
// `openWorkbench`) with Playwright: the command palette, quick inputs, notifications, view
// containers, tree items and screenshots. They wait on what a user would see; timeouts are hang
// guards only.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Locator, Page } from 'playwright-core';

const HANG_GUARD_MS = 30_000;
const REPO_ROOT = resolve(dirname(__filename), '..', '..');
export const SCREENSHOTS_DIR = join(REPO_ROOT, 'test-results', 'screenshots');

const QUICK_INPUT = '.quick-input-widget';
const QUICK_INPUT_BOX = `${QUICK_INPUT} .quick-input-box input`;
const QUICK_INPUT_ROW = `${QUICK_INPUT} .monaco-list-row`;

/** Waits until the workbench has laid out its parts. Extensions may still be loading: helpers that
 *  need their contributions (runCommand) wait for those themselves. */
export async function waitForWorkbench(page: Page): Promise<void> {
  await page.locator('.monaco-workbench .part.activitybar').waitFor({ state: 'visible', timeout: 60_000 });
  await page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible', timeout: 60_000 });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function exactly(text: string): RegExp {
  return new RegExp(`^\\s*${escapeRegExp(text)}\\s*$`);
}

/** Opens the command palette (F1) and waits for its input, pressing F1 again if the first press was
 *  lost (the workbench may still be taking focus). */
async function openCommandPalette(page: Page): Promise<void> {
  const box = page.locator(QUICK_INPUT_BOX);
  // A quick input that is still closing (the previous command's last step) must not pass for the palette.
  await page.locator(`${QUICK_INPUT}.quick-input-widget-closing`).waitFor({ state: 'hidden', timeout: HANG_GUARD_MS }).catch(() => undefined);
  for (let attempt = 1; ; attempt++) {
    const open = (await box.isVisible()) && (await box.getAttribute('aria-label').catch(() => ''))?.startsWith('Type the name of a command');
    if (!open) await page.keyboard.press('F1');
    try {
      await box.waitFor({ state: 'visible', timeout: attempt < 5 ? 2_000 : HANG_GUARD_MS });
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
}

/** Runs a command by its palette title (e.g. "View: Show Explorer"): F1, type, wait until the
 *  highlighted entry is exactly that command, Enter. Commands contributed by extensions appear only
 *  once the extension host has scanned them, so the title is typed again until it shows up. */
export async function runCommand(page: Page, title: string): Promise<void> {
  const box = page.locator(QUICK_INPUT_BOX);
  const wanted = page
    .locator(`${QUICK_INPUT_ROW}.focused`)
    .filter({ has: page.locator('.label-name', { hasText: exactly(title) }) });
  const deadline = Date.now() + HANG_GUARD_MS;
  for (;;) {
    await openCommandPalette(page);
    await box.fill(`>${title}`);
    try {
      await wanted.waitFor({ state: 'visible', timeout: 2_000 });
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        const shown = await page.locator(`${QUICK_INPUT_ROW} .label-name`).allInnerTexts();
        throw new Error(`No command titled "${title}" in the palette (shown: ${shown.join(' | ') || 'none'})`, { cause: err });
      }
      await box.fill('>'); // the palette lists commands afresh on the next change
    }
  }
  await box.press('Enter');
  // Done when the palette closed, or when the command opened an input of its own in its place.
  const deadline2 = Date.now() + HANG_GUARD_MS;
  while (Date.now() < deadline2) {
    const visible = await page.locator(`${QUICK_INPUT}:not(.quick-input-widget-closing)`).isVisible();
    if (!visible) return;
    const value = await box.inputValue().catch(() => '');
    if (!value.startsWith('>')) return;
    await page.waitForTimeout(50);
  }
  throw new Error(`The command palette did not close after running "${title}"`);
}

/** The visible quick input (from `showInputBox`/`createInputBox`): waits for it (masking its text
 *  when `password` is true, not masking it when false), types `text` and accepts with Enter. */
export async function quickInputType(page: Page, text: string, opts: { password?: boolean } = {}): Promise<void> {
  const masked = opts.password === undefined ? '' : opts.password ? '[type="password"]' : ':not([type="password"])';
  const box = page.locator(`${QUICK_INPUT_BOX}${masked}`);
  try {
    await box.waitFor({ state: 'visible', timeout: HANG_GUARD_MS });
  } catch (err) {
    const type = await page.locator(QUICK_INPUT_BOX).getAttribute('type', { timeout: 1_000 }).catch(() => null);
    const what = opts.password === undefined ? '' : opts.password ? ' password' : ' plain (unmasked)';
    throw new Error(`No${what} input box (the quick input's type is ${type ?? 'absent'})`, { cause: err });
  }
  await box.fill(text);
  await box.press('Enter');
}

/** Picks the quick-pick entry whose label is exactly `label`, and waits for the pick to go. */
export async function quickPickSelect(page: Page, label: string): Promise<void> {
  const row = page
    .locator(QUICK_INPUT_ROW)
    .filter({ has: page.locator('.label-name', { hasText: exactly(label) }) })
    .first();
  await row.waitFor({ state: 'visible', timeout: HANG_GUARD_MS });
  await row.click();
  await row.waitFor({ state: 'hidden', timeout: HANG_GUARD_MS });
}

/** Labels of the entries the visible quick pick shows. */
export async function quickPickLabels(page: Page): Promise<string[]> {
  await page.locator(QUICK_INPUT_ROW).first().waitFor({ state: 'visible', timeout: HANG_GUARD_MS });
  return (await page.locator(`${QUICK_INPUT_ROW} .label-name`).allInnerTexts()).map((s) => s.trim());
}

const NOTIFICATION_ITEMS =
  '.notifications-toasts.visible .notification-list-item, .notifications-center.visible .notification-list-item';

/** The notification whose message contains `textOrRegex`, shown as a toast or in the notification
 *  center. (Under the smoke-test driver, which the test server needs, VS Code sends notifications to
 *  the center only, without toasts.) */
export function notification(page: Page, textOrRegex: string | RegExp): Locator {
  return page
    .locator(NOTIFICATION_ITEMS)
    .filter({ has: page.locator('.notification-list-item-message', { hasText: textOrRegex }) })
    .first();
}

/** Opens the notification center (the status-bar bell) unless it is open. */
export async function showNotifications(page: Page): Promise<void> {
  if ((await page.locator('.notifications-center.visible').count()) > 0) return;
  await page.locator('[id="status.notifications"]').click();
  await page.locator('.notifications-center.visible').waitFor({ state: 'visible', timeout: HANG_GUARD_MS });
}

/** Waits for a notification whose message contains `textOrRegex` (opening the notification center
 *  to look there too), and returns its message. */
export async function waitForNotification(page: Page, textOrRegex: string | RegExp): Promise<string> {
  const item = notification(page, textOrRegex);
  const deadline = Date.now() + HANG_GUARD_MS;
  while (!(await item.isVisible())) {
    if (Date.now() > deadline) {
      const shown = await page.locator(NOTIFICATION_ITEMS).locator('.notification-list-item-message').allInnerTexts();
      throw new Error(`No notification matching ${String(textOrRegex)} (shown: ${shown.join(' | ') || 'none'})`);
    }
    await showNotifications(page);
    await item.waitFor({ state: 'visible', timeout: 500 }).catch(() => undefined);
  }
  return (await item.locator('.notification-list-item-message').innerText()).trim();
}

/** Clicks the button labelled `button` on the notification matching `textOrRegex`, expanding the
 *  notification first when its buttons are folded away. */
export async function clickNotificationButton(page: Page, textOrRegex: string | RegExp, button: string): Promise<void> {
  await waitForNotification(page, textOrRegex);
  const item = notification(page, textOrRegex);
  const target = item.locator('.notification-list-item-buttons-container .monaco-button', { hasText: exactly(button) });
  if (!(await target.isVisible())) {
    const expand = item.locator('.codicon-notifications-expand');
    if (await expand.isVisible()) await expand.click();
  }
  await target.click({ timeout: HANG_GUARD_MS });
}

/** Saves a full-window PNG to test-results/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  const path = join(SCREENSHOTS_DIR, `${name.replace(/[^\w.-]+/g, '-')}.png`);
  await page.screenshot({ path });
  return path;
}

/** Opens the activity-bar view container titled `title` (e.g. "Explorer", "Sandbox Agents") unless
 *  it is already open (a second click would close it), and returns the side bar. */
export async function viewContainer(page: Page, title: string): Promise<Locator> {
  const item = page
    .locator('.part.activitybar .action-item')
    .filter({ has: page.locator(`.action-label[aria-label^="${title.replace(/"/g, '\\"')}"]`) })
    .first();
  await item.waitFor({ state: 'visible', timeout: HANG_GUARD_MS });
  if (!(await item.evaluate((el) => el.classList.contains('checked')))) await item.click();
  const sideBar = page.locator('.part.sidebar');
  await sideBar
    .locator('.composite.title .title-label')
    .filter({ hasText: new RegExp(escapeRegExp(title), 'i') })
    .waitFor({ state: 'visible', timeout: HANG_GUARD_MS });
  return sideBar;
}

/** A tree item (explorer, custom tree views) by its exact label, within `scope` (default: the page). */
export function treeItem(scope: Page | Locator, label: string): Locator {
  const page = 'keyboard' in scope ? scope : scope.page();
  const labelled = page.locator('.monaco-icon-label .label-name, .monaco-icon-label .monaco-highlighted-label', {
    hasText: exactly(label),
  });
  return scope.locator('.monaco-list-row[role="treeitem"]').filter({ has: labelled }).first();
}

/** Sign In to Agent Platform through the palette with the right key; waits for the confirmation. */
export async function signInToPlatform(page: Page, platform: { url: string; masterKey: string }): Promise<void> {
  await runCommand(page, 'Sandbox Agents: Sign In to Agent Platform');
  await quickInputType(page, platform.url, { password: false });
  await quickInputType(page, platform.masterKey, { password: true });
  await waitForNotification(page, `Signed in to ${new URL(platform.url).host}`);
}
