/**
 * Helpers for UI tests of terminal tabs: reading the tab's xterm rows, typing into it, creating a
 * Local `shell` agent through the palette, and ending what a Local bridge started (the bridge and the
 * holders of its sessions), since sessions outlive VS Code by design.
 */
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { quickInputType, quickPickSelect, runCommand, waitForNotification } from './workbench';

const GUARD = 30_000;

export function terminalFrame(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
}

/** The tab's rows as text (non-breaking spaces as spaces). */
export async function terminalRows(page: Page): Promise<string[]> {
  return (await terminalFrame(page).locator('.xterm-rows > div').allInnerTexts()).map((l) => l.replace(/\u00a0/g, ' '));
}

/** Waits until a row matches; returns it. */
export async function waitForTerminalRow(page: Page, re: RegExp, timeoutMs = GUARD): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = await terminalRows(page).catch(() => [] as string[]);
    const hit = lines.find((l) => re.test(l));
    if (hit !== undefined) return hit;
    if (Date.now() > deadline) throw new Error(`the terminal never showed ${re}:\n${lines.filter((l) => l.trim()).slice(-12).join('\n')}`);
    await page.waitForTimeout(100);
  }
}

/** Clicks into the terminal, types `text` and (by default) Enter. */
export async function typeInTerminal(page: Page, text: string, enter = true): Promise<void> {
  await terminalFrame(page).locator('.xterm-screen').click();
  await page.keyboard.type(text);
  if (enter) await page.keyboard.press('Enter');
}

/** Create Agent → a Local `shell` agent with no folder (Local being the only backend). */
export async function createLocalShellAgent(page: Page, name: string): Promise<void> {
  await runCommand(page, 'Sandbox Agents: Create Agent');
  await quickInputType(page, name);
  await quickPickSelect(page, 'Shell');
  await quickPickSelect(page, 'none');
  await quickInputType(page, '');
  await quickPickSelect(page, 'No folder');
  await quickInputType(page, '');
  await waitForNotification(page, `Agent "${name}" created`);
}

/** Stops the Local bridge of `stateBase` (host runtime) and the holders of the sessions it kept. */
export function endLocalBridge(stateBase: string): void {
  const dir = join(stateBase, 'host');
  try {
    const { pid } = JSON.parse(readFileSync(join(dir, 'bridge.json'), 'utf8')) as { pid: number };
    process.kill(pid, 'SIGTERM');
  } catch {
    /* not running */
  }
  try {
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { sessions: { sandbox_ref: string | null }[] };
    const ps = execSync('ps -eo pid,args', { encoding: 'utf8' }).split('\n');
    for (const s of state.sessions) {
      if (!s.sandbox_ref) continue;
      const line = ps.find((l) => l.includes(' hold ') && l.includes(s.sandbox_ref!));
      if (line) process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGTERM');
    }
  } catch {
    /* nothing to end */
  }
}
