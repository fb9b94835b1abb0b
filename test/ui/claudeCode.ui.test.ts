/**
 * UI end-to-end, the terminal tab's acceptance test: the real Claude Code CLI (pinned in
 * devDependencies) runs in a Sandbox Agents terminal tab of a real VS Code and shows a fake model's
 * answer. A local `shell` agent (bridge, host runtime: each session has a HOME of its own) is opened
 * as a tab; in its shell we seed `~/.claude.json` so Claude Code skips onboarding, the API-key and
 * the folder-trust prompts (shared/docs/test-environment.md), start `claude` against the fake
 * Anthropic API (test/fixtures/fakeAnthropic.ts), ask a question and wait for the answer on the
 * screen. Screenshots: test-results/screenshots/claude-code-*.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { FAKE_ANSWER_MARKER, startFakeAnthropic } from '../fixtures/fakeAnthropic';
import { skipOrFail } from '../tiers';
import { openWorkbench, skipUnlessVSCode, startVSCodeServer } from '../vscode/server';
import { quickInputType, quickPickSelect, runCommand, screenshot, waitForNotification, waitForWorkbench } from './workbench';
import { createLocalShellAgent, endLocalBridge, terminalFrame, terminalRows as rows, typeInTerminal, waitForTerminalRow } from './terminalTab';

const REPO = resolve(__dirname, '..', '..');
const CLAUDE = join(REPO, 'node_modules', '.bin', 'claude');
const CLAUDE_PACKAGE = join(REPO, 'node_modules', '@anthropic-ai', 'claude-code', 'package.json');
/** A test key, never a real one. Claude Code remembers an approved key by its last 20 characters. */
const TEST_KEY = 'sk-ant-api03-e2e-test-key-0123456789-ABCDEFGHIJ';
const QUESTION = 'What does the fake model say?';
/** Hang guards only. */
const GUARD = 30_000;
const CLI_GUARD = 60_000;

async function waitForRow(page: Page, re: RegExp, timeoutMs = GUARD): Promise<string> {
  return waitForTerminalRow(page, re, timeoutMs);
}

async function waitForScreen(page: Page, ok: (lines: string[]) => boolean, what: string, timeoutMs = GUARD): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = await rows(page).catch(() => [] as string[]);
    if (ok(lines)) return;
    if (Date.now() > deadline) throw new Error(`the terminal never showed ${what}:\n${lines.filter((l) => l.trim()).slice(-20).join('\n')}`);
    await page.waitForTimeout(100);
  }
}

/** Bash lines that seed `$HOME/.claude.json` as a user who finished onboarding, approved this key
 *  and trusted the current directory would have it (printf, so the JSON is exact). The path is the
 *  physical one (`pwd -P`), which is what the CLI's `process.cwd()` reports. */
function seedClaudeConfig(key: string): string {
  const approved = key.slice(-20);
  assert.match(approved, /^[\w-]+$/, 'the key tail is safe inside a printf format');
  const json =
    `{"hasCompletedOnboarding":true,"theme":"dark",` +
    `"customApiKeyResponses":{"approved":["${approved}"],"rejected":[]},` +
    `"projects":{"%s":{"hasTrustDialogAccepted":true}}}`;
  return `printf '${json}\\n' "$(pwd -P)" > "$HOME/.claude.json"`;
}

/** Pids of Claude Code processes talking to this fake (found by the base URL in their environment). */
function claudePidsFor(baseUrl: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.includes(`ANTHROPIC_BASE_URL=${baseUrl}`)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return pids;
}

test('Claude Code runs in a terminal tab and shows the fake model’s answer', { timeout: 300_000 }, async (t) => {
  if (skipUnlessVSCode(t)) return;
  if (skipOrFail(t, existsSync(CLAUDE) ? undefined : `Claude Code is not installed at ${CLAUDE} (run npm ci).`)) return;
  const version = (JSON.parse(readFileSync(CLAUDE_PACKAGE, 'utf8')) as { version: string }).version;
  const fake = await startFakeAnthropic();
  const stateBase = mkdtempSync(join(tmpdir(), 'sa-cc-state-'));
  const folder = mkdtempSync(join(tmpdir(), 'sa-cc-ws-'));
  const server = await startVSCodeServer({
    userSettings: {
      'sandboxAgents.local.runtime': 'host',
      'sandboxAgents.local.stateDir': stateBase,
      // A dark workbench, so the tab's terminal is dark like the theme Claude Code is told to use
      // (its white answer bullet vanishes on a light background).
      'workbench.colorTheme': 'Dark Modern',
    },
  });
  const workbench = await openWorkbench(server, { folder, extensionDevelopmentPath: REPO });
  const page = workbench.page;
  try {
    await waitForWorkbench(page);
    await createLocalShellAgent(page, 'cc-shell');
    await runCommand(page, 'Notifications: Hide Notifications'); // off the terminal, for the screenshots

    await runCommand(page, 'Sandbox Agents: Open Terminal');
    await quickPickSelect(page, 'cc-shell');
    await terminalFrame(page).locator('.xterm-rows').waitFor({ state: 'visible', timeout: GUARD });
    await waitForRow(page, /[#$] *$/);

    // The session's own HOME (not the user's), seeded; then Claude Code against the fake.
    await typeInTerminal(page, seedClaudeConfig(TEST_KEY));
    await typeInTerminal(page, 'echo "home=$HOME"; echo "cwd=$(pwd -P)"');
    const home = (await waitForRow(page, /^home=\/\S+\s*$/)).trim().slice('home='.length);
    const cwd = (await waitForRow(page, /^cwd=\/\S+\s*$/)).trim().slice('cwd='.length);
    assert.ok(home.startsWith(realpathSync(stateBase)) || home.startsWith(stateBase), `the session has a HOME of its own under the state dir (${home})`);
    assert.deepEqual(JSON.parse(readFileSync(join(home, '.claude.json'), 'utf8')), {
      hasCompletedOnboarding: true,
      theme: 'dark',
      customApiKeyResponses: { approved: [TEST_KEY.slice(-20)], rejected: [] },
      projects: { [cwd]: { hasTrustDialogAccepted: true } },
    });
    await typeInTerminal(
      page,
      `clear; ANTHROPIC_BASE_URL=${fake.url} ANTHROPIC_API_KEY=${TEST_KEY} DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 ${CLAUDE}`,
    );

    // Its TUI: the banner with the pinned version, and the input prompt between two rules.
    await waitForRow(page, new RegExp(`Claude Code v${version.replace(/\./g, '\\.')}`), CLI_GUARD);
    await waitForRow(page, /^\s*❯\s*$/, CLI_GUARD);
    await waitForRow(page, /^─{20,}\s*$/);
    await waitForRow(page, /shift\+tab to cycle/); // the footer: the first paint is complete
    const onboarding = (await rows(page)).find((l) => /Choose the text style|Do you trust the files|Detected a custom API key|Select login method/i.test(l));
    assert.equal(onboarding, undefined, 'no onboarding, trust or API-key prompt');
    // The mascot beside the title plays an intro animation: let it finish for the picture (not asserted).
    await waitForRow(page, /[▐▛▜▌▝▘▀▄█]{5,}\s+Claude Code v/, 10_000).catch(() => undefined);
    await screenshot(page, 'claude-code-01-ready');

    // Ask; the question is on its input line before Enter.
    await typeInTerminal(page, QUESTION, false);
    await waitForRow(page, new RegExp(`❯ ${QUESTION.replace(/[?]/g, '\\?')}`));
    await screenshot(page, 'claude-code-02-question');
    await page.keyboard.press('Enter');

    // The answer, on the screen, from the fake.
    const answerRow = await waitForRow(page, new RegExp(FAKE_ANSWER_MARKER), CLI_GUARD);
    assert.match(answerRow, /^\s*● The fake model says FAKE-ANSWER-42/, 'the answer is shown as an assistant message');
    await waitForRow(page, /^\s*❯\s*$/); // ready for the next question
    await screenshot(page, 'claude-code-03-answer');

    const turns = fake.requests.filter((r) => r.path === '/v1/messages');
    assert.ok(turns.length >= 1, 'Claude Code called /v1/messages');
    for (const r of turns) assert.equal(r.apiKey, TEST_KEY, `${r.path}?${r.query} carried the test key`);
    assert.ok(
      turns.some((r) => r.stream && r.lastUserText === QUESTION && r.toolCount > 0),
      `the turn streamed the question with tools: ${JSON.stringify(turns.map(({ stream, toolCount, lastUserText }) => ({ stream, toolCount, lastUserText })))}`,
    );
    // The terminal shows colour, not just text.
    const coloured = await terminalFrame(page).locator('.xterm-rows span[class*="xterm-fg-"], .xterm-rows span[style*="color"]').count();
    assert.ok(coloured > 0, 'the TUI is drawn in colour');

    // Leave Claude Code with /exit (two Ctrl+C only exit when the second comes within the CLI's
    // short "Press Ctrl-C again" window) and find the shell again. Keys typed while the CLI winds
    // down are lost, so wait for its goodbye and the shell prompt first.
    await typeInTerminal(page, '/exit', false);
    await waitForRow(page, /^\s*❯ \/exit\s*$/);
    await page.keyboard.press('Enter');
    await waitForRow(page, /claude --resume [0-9a-f-]{36}/, CLI_GUARD);
    await waitForScreen(page, (lines) => /[#$] *$/.test(lines.filter((l) => l.trim()).at(-1) ?? ''), 'the shell prompt last');
    await typeInTerminal(page, 'echo claude-exited-$((3*5))');
    await waitForRow(page, /^claude-exited-15\s*$/);
    assert.deepEqual(claudePidsFor(fake.url), [], 'Claude Code exited');
    await screenshot(page, 'claude-code-04-exited');
  } catch (err) {
    await screenshot(page, 'claude-code-failure').catch(() => undefined);
    throw err;
  } finally {
    await workbench.close();
    await server.stop();
    endLocalBridge(stateBase);
    // A Claude Code the test could not exit (the holder's SIGHUP normally ends it).
    for (const pid of claudePidsFor(fake.url)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await fake.close();
    if (!process.env.SA_KEEP) rmSync(stateBase, { recursive: true, force: true });
    else console.log(`kept ${stateBase}`);
    rmSync(folder, { recursive: true, force: true });
  }
});
