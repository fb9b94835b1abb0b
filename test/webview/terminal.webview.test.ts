// The agent terminal webview (webview/terminal, bundled to dist/webview/terminal.js + .css) in real
// Chromium, under the CSP the extension host sets, with a stub VS Code API: what the user sees in
// the terminal and what the webview tells the host. Build first (`node esbuild.config.mjs`).
//
// Screenshots: test-results/screenshots/terminal-light.png, terminal-dark.png,
// terminal-banner-reconnecting.png, terminal-banner-ended.png.
import * as assert from 'node:assert/strict';
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { skipOrFail } from '../tiers';
import {
  checkBundle,
  launchBrowser,
  missingChromium,
  pixel,
  screenshot,
  startWebviewServer,
  type Browser,
  type PostedMessage,
  type WebviewServer,
} from './webviewPage';

const BUNDLE = 'dist/webview/terminal.js';
const HANG_GUARD_MS = 20_000;

// VS Code's Dark Modern and Light Modern colours, as VS Code hands them to a webview. The light theme
// leaves `terminal.background` unset (the webview falls back to the editor's background).
const THEME_CSS = `
body {
  --vscode-font-family: system-ui, sans-serif;
  --vscode-font-size: 13px;
  --vscode-editor-font-family: "DejaVu Sans Mono", monospace;
  --vscode-editor-font-size: 14px;
}
body.vscode-dark {
  --vscode-foreground: #cccccc;
  --vscode-editor-background: #1f1f1f;
  --vscode-editor-foreground: #cccccc;
  --vscode-terminal-background: #181818;
  --vscode-terminal-foreground: #cccccc;
  --vscode-terminalCursor-foreground: #aeafad;
  --vscode-terminal-selectionBackground: #264f78;
  --vscode-terminal-ansiBlack: #000000; --vscode-terminal-ansiRed: #cd3131;
  --vscode-terminal-ansiGreen: #0dbc79; --vscode-terminal-ansiYellow: #e5e510;
  --vscode-terminal-ansiBlue: #2472c8; --vscode-terminal-ansiMagenta: #bc3fbc;
  --vscode-terminal-ansiCyan: #11a8cd; --vscode-terminal-ansiWhite: #e5e5e5;
  --vscode-terminal-ansiBrightBlack: #666666; --vscode-terminal-ansiBrightRed: #f14c4c;
  --vscode-terminal-ansiBrightGreen: #23d18b; --vscode-terminal-ansiBrightYellow: #f5f543;
  --vscode-terminal-ansiBrightBlue: #3b8eea; --vscode-terminal-ansiBrightMagenta: #d670d6;
  --vscode-terminal-ansiBrightCyan: #29b8db; --vscode-terminal-ansiBrightWhite: #e5e5e5;
  --vscode-inputValidation-infoBackground: #063b49; --vscode-inputValidation-infoBorder: #007acc;
  --vscode-inputValidation-warningBackground: #352a05; --vscode-inputValidation-warningBorder: #b89500;
  --vscode-inputValidation-errorBackground: #5a1d1d; --vscode-inputValidation-errorBorder: #be1100;
  --vscode-button-background: #0078d4; --vscode-button-foreground: #ffffff;
  --vscode-button-hoverBackground: #026ec1; --vscode-button-border: rgba(255, 255, 255, 0.07);
  --vscode-button-secondaryBackground: #313131; --vscode-button-secondaryForeground: #cccccc;
  --vscode-button-secondaryHoverBackground: #3c3c3c; --vscode-focusBorder: #0078d4;
}
body.vscode-light {
  --vscode-foreground: #3b3b3b;
  --vscode-editor-background: #ffffff;
  --vscode-editor-foreground: #3b3b3b;
  --vscode-terminal-foreground: #3b3b3b;
  --vscode-terminalCursor-foreground: #005fb8;
  --vscode-terminal-selectionBackground: #add6ff;
  --vscode-terminal-ansiBlack: #000000; --vscode-terminal-ansiRed: #cd3131;
  --vscode-terminal-ansiGreen: #107c10; --vscode-terminal-ansiYellow: #949800;
  --vscode-terminal-ansiBlue: #0451a5; --vscode-terminal-ansiMagenta: #bc05bc;
  --vscode-terminal-ansiCyan: #0598bc; --vscode-terminal-ansiWhite: #555555;
  --vscode-terminal-ansiBrightBlack: #666666; --vscode-terminal-ansiBrightRed: #cd3131;
  --vscode-terminal-ansiBrightGreen: #14ce14; --vscode-terminal-ansiBrightYellow: #b5ba00;
  --vscode-terminal-ansiBrightBlue: #0451a5; --vscode-terminal-ansiBrightMagenta: #bc05bc;
  --vscode-terminal-ansiBrightCyan: #0598bc; --vscode-terminal-ansiBrightWhite: #a5a5a5;
  --vscode-inputValidation-infoBackground: #d6ecf2; --vscode-inputValidation-infoBorder: #007acc;
  --vscode-inputValidation-warningBackground: #f6f5d2; --vscode-inputValidation-warningBorder: #b89500;
  --vscode-inputValidation-errorBackground: #f2dede; --vscode-inputValidation-errorBorder: #be1100;
  --vscode-button-background: #005fb8; --vscode-button-foreground: #ffffff;
  --vscode-button-hoverBackground: #0258a8; --vscode-button-border: rgba(0, 0, 0, 0.1);
  --vscode-button-secondaryBackground: #e5e5e5; --vscode-button-secondaryForeground: #3b3b3b;
  --vscode-button-secondaryHoverBackground: #cccccc; --vscode-focusBorder: #005fb8;
}
`;

const APPEARANCE = {
  fontFamily: '',
  fontSize: 14,
  lineHeight: 1,
  cursorStyle: 'block',
  cursorBlink: false,
  copyOnSelection: false,
  scrollback: 1000,
} as const;

let server: WebviewServer | undefined;
let browser: Browser | undefined;
let missing: string | undefined;
const pages: Page[] = [];

before(async () => {
  missing = missingChromium();
  if (missing) return;
  checkBundle(BUNDLE, 'webview/terminal');
  server = await startWebviewServer({ themeCss: THEME_CSS });
  browser = await launchBrowser(server.origin);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

// Every page must have run without a single CSP violation (xterm's run-time <style>s included).
afterEach(async () => {
  for (const page of pages.splice(0)) {
    const violations = await page.evaluate(() => window.__violations).catch(() => []);
    await page.close();
    assert.deepEqual(violations, [], 'Content-Security-Policy violations');
  }
});

interface Opened {
  page: Page;
  ready: { cols: number; rows: number };
}

/** A fresh webview page, after its `ready` (the host sends nothing before), then what the host sends
 *  first: appearance and the `open` state. */
async function openTerminal(t: TestContext, opts: { bodyClass?: string; viewport?: { width: number; height: number } } = {}): Promise<Opened | undefined> {
  if (skipOrFail(t, missing)) return undefined;
  const page = await browser!.context.newPage();
  pages.push(page);
  page.on('pageerror', (err) => t.diagnostic(`page error: ${err.message}`));
  await page.setViewportSize(opts.viewport ?? { width: 1000, height: 600 });
  await page.goto(server!.url(BUNDLE, { bodyClass: opts.bodyClass }));
  const first = await waitForMessage(page, (m) => m.type === 'ready');
  const all = await posted(page);
  assert.equal(all[0]?.message.type, 'ready', 'ready is the first message');
  assert.equal(all.filter((p) => p.message.type === 'ready').length, 1, 'ready is posted once');
  const ready = { cols: first.message['cols'] as number, rows: first.message['rows'] as number };
  await hostPost(page, { type: 'appearance', appearance: APPEARANCE });
  await hostPost(page, { type: 'state', state: { kind: 'open' } });
  return { page, ready };
}

async function posted(page: Page): Promise<PostedMessage[]> {
  return page.evaluate(() => window.__posted);
}

async function clearPosted(page: Page): Promise<void> {
  await page.evaluate(() => {
    window.__posted.length = 0;
    window.__forwardedKeys.length = 0;
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = HANG_GUARD_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitForMessage(page: Page, match: (m: PostedMessage['message']) => boolean, what = 'a message'): Promise<PostedMessage> {
  return waitFor(what, async () => (await posted(page)).find((p) => match(p.message)));
}

/** All `input` data posted so far, concatenated. */
async function inputSoFar(page: Page): Promise<string> {
  return (await posted(page))
    .filter((p) => p.message.type === 'input')
    .map((p) => p.message['data'] as string)
    .join('');
}

async function waitForInput(page: Page, expected: string): Promise<void> {
  await waitFor(`input ${JSON.stringify(expected)}`, async () => ((await inputSoFar(page)).includes(expected) ? true : undefined));
}

async function hostPost(page: Page, message: unknown): Promise<void> {
  await page.evaluate((m) => window.__hostPost(m), message);
}

/** Output from the host: the text as UTF-8 bytes, as the host sends it. */
async function output(page: Page, text: string): Promise<void> {
  await page.evaluate((s) => window.__hostPost({ type: 'output', data: new TextEncoder().encode(s) }), text);
}

/** The terminal's visible rows, as the user reads them. */
async function screenRows(page: Page): Promise<string[]> {
  return page.locator('.xterm-rows > div').evaluateAll((rows) => rows.map((r) => (r.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()));
}

async function waitForScreen(page: Page, text: string): Promise<string[]> {
  return waitFor(`"${text}" on the screen`, async () => {
    const rows = await screenRows(page);
    return rows.some((r) => r.includes(text)) ? rows : undefined;
  });
}

/** The container and the terminal screen in CSS px, and the cell size. */
async function geometry(page: Page, size: { cols: number; rows: number }) {
  const g = await page.evaluate(() => {
    const c = document.querySelector('.terminal-container')!.getBoundingClientRect();
    const s = document.querySelector('.xterm-screen')!.getBoundingClientRect();
    return { containerWidth: c.width, containerHeight: c.height, left: s.left, top: s.top, width: s.width, height: s.height };
  });
  return { ...g, cellWidth: g.width / size.cols, cellHeight: g.height / size.rows };
}

/** The size fills the container: one more column (plus the scrollbar) or one more row would not fit. */
async function assertFitted(page: Page, size: { cols: number; rows: number }): Promise<void> {
  const g = await geometry(page, size);
  const scrollbar = 14;
  assert.equal((await screenRows(page)).length, size.rows, 'rows on screen');
  assert.ok(g.width <= g.containerWidth && g.containerWidth - g.width < g.cellWidth + scrollbar + 1, `columns fill the width: ${JSON.stringify(g)} for ${size.cols}×${size.rows}`);
  assert.ok(g.height <= g.containerHeight && g.containerHeight - g.height < g.cellHeight + 1, `rows fill the height: ${JSON.stringify(g)} for ${size.cols}×${size.rows}`);
}

/** Viewport coordinates of the middle of cell (col, row), 0-based. */
async function cellCenter(page: Page, size: { cols: number; rows: number }, col: number, row: number): Promise<{ x: number; y: number }> {
  const g = await geometry(page, size);
  return { x: g.left + (col + 0.5) * g.cellWidth, y: g.top + (row + 0.5) * g.cellHeight };
}

async function focusTerminal(page: Page): Promise<void> {
  await hostPost(page, { type: 'focus' });
  await waitFor('the terminal to have focus', () =>
    page.evaluate(() => (document.activeElement?.classList.contains('xterm-helper-textarea') ? true : undefined)),
  );
}

const SAMPLE =
  '\x1b[1;32magent@sandbox\x1b[0m:\x1b[1;34m~/project\x1b[0m$ claude\r\n' +
  'Hello from the \x1b[31mred\x1b[0m, \x1b[33myellow\x1b[0m and \x1b[36mcyan\x1b[0m agent.\r\n' +
  'Truecolor: \x1b[38;2;255;135;0morange\x1b[0m on \x1b[48;2;0;95;135m teal \x1b[0m\r\n' +
  'Docs: https://example.com/docs\r\n' +
  'Wide: 日本語 👍 ok\r\n';

describe('terminal webview', () => {
  test('says ready with a size that fills the panel, then shows what the host writes', async (t) => {
    const opened = await openTerminal(t);
    if (!opened) return;
    const { page, ready } = opened;
    assert.ok(ready.cols > 20 && ready.rows > 5, `ready ${JSON.stringify(ready)}`);
    await assertFitted(page, ready);

    await output(page, SAMPLE);
    const rows = await waitForScreen(page, 'Hello from the red, yellow and cyan agent.');
    assert.equal(rows[0], 'agent@sandbox:~/project$ claude');
    assert.ok(rows.includes('Docs: https://example.com/docs'));
    // Unicode 11 widths: each CJK character and the emoji take two cells, so "ok" starts at column 17.
    assert.match(rows[4]!, /^Wide: 日本語 👍 ok$/);

    // xterm's own styles apply under the CSP (nonce'd at run time): ANSI red is the theme's red,
    // the rows use the editor's monospace font.
    const red = page.locator('.xterm-rows span', { hasText: /^red$/ });
    assert.equal(await red.evaluate((e) => getComputedStyle(e).color), 'rgb(205, 49, 49)');
    // 24-bit colours, which agents' TUIs use, are style attributes on the cells (style-src-attr).
    const orange = page.locator('.xterm-rows span', { hasText: /^orange$/ });
    assert.equal(await orange.evaluate((e) => getComputedStyle(e).color), 'rgb(255, 135, 0)');
    const teal = page.locator('.xterm-rows span', { hasText: /^ teal $/ });
    assert.equal(await teal.evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(0, 95, 135)');
    assert.match(await page.locator('.xterm-rows').evaluate((e) => getComputedStyle(e).fontFamily), /DejaVu Sans Mono/);

    // Flow control: the parsed bytes are acknowledged.
    const bytes = new TextEncoder().encode(SAMPLE).byteLength;
    const acked = await waitFor('acks', async () => {
      const sum = (await posted(page)).filter((p) => p.message.type === 'ack').reduce((n, p) => n + (p.message['bytes'] as number), 0);
      return sum >= bytes ? sum : undefined;
    });
    assert.equal(acked, bytes);
  });

  test('a new panel size is posted once it settles, only when it changed, and font changes refit', async (t) => {
    const opened = await openTerminal(t);
    if (!opened) return;
    const { page, ready } = opened;
    await clearPosted(page);

    await page.setViewportSize({ width: 700, height: 400 });
    const first = await waitForMessage(page, (m) => m.type === 'resize', 'a resize');
    const smaller = { cols: first.message['cols'] as number, rows: first.message['rows'] as number };
    assert.ok(smaller.cols < ready.cols && smaller.rows < ready.rows, `${JSON.stringify(smaller)} < ${JSON.stringify(ready)}`);
    await assertFitted(page, smaller);

    // A drag: several sizes in a row; the last one is what the host hears last.
    for (const [width, height] of [[800, 500], [820, 510], [900, 520]] as const) await page.setViewportSize({ width, height });
    await page.waitForTimeout(300);
    const resizes = (await posted(page)).filter((p) => p.message.type === 'resize');
    const last = resizes.at(-1)!.message;
    const final = { cols: last['cols'] as number, rows: last['rows'] as number };
    assert.ok(final.cols > smaller.cols, `${JSON.stringify(final)}`);
    await assertFitted(page, final);

    // The same size again: nothing to tell.
    await page.setViewportSize({ width: 900, height: 520 });
    await page.setViewportSize({ width: 901, height: 520 });
    await page.setViewportSize({ width: 900, height: 520 });
    await page.waitForTimeout(300);
    assert.equal((await posted(page)).filter((p) => p.message.type === 'resize').length, resizes.length, 'no resize for an unchanged size');

    // A bigger font from the host's appearance: fewer cells fit, reported once.
    await clearPosted(page);
    await hostPost(page, { type: 'appearance', appearance: { ...APPEARANCE, fontSize: 20, lineHeight: 1.2 } });
    await waitForMessage(page, (m) => m.type === 'resize', 'a resize for the bigger font');
    await page.waitForTimeout(300);
    const afterFont = (await posted(page)).map((p) => p.message);
    assert.equal(afterFont.length, 1, `one resize: ${JSON.stringify(afterFont)}`);
    const sized = { cols: afterFont[0]!['cols'] as number, rows: afterFont[0]!['rows'] as number };
    assert.ok(sized.cols < final.cols && sized.rows < final.rows, JSON.stringify(sized));
    await assertFitted(page, sized);
  });

  test('follows the VS Code theme: light, then dark when body changes class', async (t) => {
    const opened = await openTerminal(t, { bodyClass: 'vscode-light' });
    if (!opened) return;
    const { page, ready } = opened;
    await output(page, SAMPLE);
    await waitForScreen(page, 'Wide:');
    // A point inside the terminal, right of the text, on an empty row: background only.
    const probe = await cellCenter(page, ready, ready.cols - 5, ready.rows - 3);

    // …and the strip below the last row, where the panel is not a whole row high.
    const viewport = page.viewportSize()!;
    const bottom = { x: Math.round(viewport.width / 2), y: viewport.height - 1 };

    const lightShot = await page.screenshot();
    await screenshot(page, 'terminal-light');
    assert.equal(await pixel(browser!.context, lightShot, Math.round(probe.x), Math.round(probe.y)), 'rgb(255, 255, 255)', 'light theme: the editor background (terminal background unset)');
    assert.equal(await pixel(browser!.context, lightShot, bottom.x, bottom.y), 'rgb(255, 255, 255)', 'light theme, bottom edge');

    await page.evaluate(() => document.body.classList.replace('vscode-light', 'vscode-dark'));
    const darkShot = await waitFor('the dark background', async () => {
      const shot = await page.screenshot();
      return (await pixel(browser!.context, shot, Math.round(probe.x), Math.round(probe.y))) === 'rgb(24, 24, 24)' ? shot : undefined;
    });
    await screenshot(page, 'terminal-dark');
    assert.equal(await pixel(browser!.context, darkShot, bottom.x, bottom.y), 'rgb(24, 24, 24)', 'dark theme, bottom edge');
    const red = page.locator('.xterm-rows span', { hasText: /^red$/ });
    assert.equal(await red.evaluate((e) => getComputedStyle(e).color), 'rgb(205, 49, 49)');
  });

  test('typing goes to the agent; Ctrl+C without a selection is ^C; VS Code keeps its shortcuts', async (t) => {
    const opened = await openTerminal(t);
    if (!opened) return;
    const { page } = opened;
    await focusTerminal(page);
    await clearPosted(page);

    await page.keyboard.type('ls -la');
    await page.keyboard.press('Enter');
    await waitForInput(page, 'ls -la\r');

    // Each key alone, then a sentinel: what the key produced is what arrived before the sentinel.
    const pressAlone = async (key: string): Promise<{ input: string; forwarded: string[] }> => {
      await clearPosted(page);
      await page.keyboard.press(key);
      await page.keyboard.press('z');
      await waitForInput(page, 'z');
      const input = (await inputSoFar(page)).replace(/z$/, '');
      const forwarded = (await page.evaluate(() => window.__forwardedKeys)).filter((k) => k !== 'z');
      return { input, forwarded };
    };

    // The agent's keys: bytes to the host, and VS Code never sees them.
    const toAgent: Array<[string, string]> = [
      ['Control+C', '\u0003'],
      ['Control+D', '\u0004'],
      ['Control+R', '\u0012'],
      ['Escape', '\u001b'],
      ['Shift+Tab', '\u001b[Z'],
      ['ArrowUp', '\u001b[A'],
      ['Alt+B', '\u001bb'],
      ['Control+K', '\u000b'],
    ];
    for (const [key, bytes] of toAgent) {
      assert.deepEqual(await pressAlone(key), { input: bytes, forwarded: [] }, key);
    }

    // VS Code's shortcuts: no bytes, and the keydown reaches the window, where VS Code's webview host
    // picks it up and forwards it to the workbench.
    const toVSCode: Array<[string, string]> = [
      ['F1', 'F1'],
      ['Control+Shift+P', 'Control+Shift+P'],
      ['Control+p', 'Control+p'],
      ['Control+w', 'Control+w'],
      ['Control+Tab', 'Control+Tab'],
      ['Control+PageDown', 'Control+PageDown'],
      ['Control+PageUp', 'Control+PageUp'],
    ];
    for (const [key, seen] of toVSCode) {
      const r = await pressAlone(key);
      assert.equal(r.input, '', `${key} sends nothing to the agent`);
      assert.ok(r.forwarded.includes(seen), `${key} reaches VS Code (saw ${JSON.stringify(r.forwarded)})`);
    }

    // Text that is not typed key by key (IME, emoji picker) arrives whole.
    await clearPosted(page);
    await page.keyboard.insertText('héllo 👍 日本');
    await waitForInput(page, 'héllo 👍 日本');
  });

  test('Ctrl+C copies a selection, Ctrl+V pastes it bracketed, copy-on-selection copies', async (t) => {
    const opened = await openTerminal(t);
    if (!opened) return;
    const { page, ready } = opened;
    // The agent asks for bracketed paste (DECSET 2004), as Claude Code and Codex do.
    await output(page, '\x1b[?2004hcopy this: COPYME-123 and that: OTHER-456\r\n');
    await waitForScreen(page, 'COPYME-123');
    await page.evaluate(() => navigator.clipboard.writeText('before'));
    await focusTerminal(page);
    await clearPosted(page);

    const word = await cellCenter(page, ready, 'copy this: '.length + 2, 0);
    await page.mouse.dblclick(word.x, word.y);
    await page.keyboard.press('Control+C');
    const copied = await waitFor('the clipboard', async () => {
      const text = await page.evaluate(() => navigator.clipboard.readText());
      return text !== 'before' ? text : undefined;
    });
    assert.equal(copied, 'COPYME-123');
    await page.keyboard.press('z');
    await waitForInput(page, 'z');
    assert.equal(await inputSoFar(page), 'z', 'Ctrl+C with a selection sends no ^C');

    // The selection went with the copy: Ctrl+C is ^C again.
    await page.keyboard.press('Control+C');
    await waitForInput(page, 'z\u0003');

    await clearPosted(page);
    await page.keyboard.press('Control+V');
    await waitForInput(page, '\u001b[200~COPYME-123\u001b[201~');
    assert.equal(await inputSoFar(page), '\u001b[200~COPYME-123\u001b[201~', 'one paste, no ^V');

    await hostPost(page, { type: 'appearance', appearance: { ...APPEARANCE, copyOnSelection: true } });
    const other = await cellCenter(page, ready, 'copy this: COPYME-123 and that: '.length + 1, 0);
    await page.mouse.dblclick(other.x, other.y);
    const selected = await waitFor('copy on selection', async () => {
      const text = await page.evaluate(() => navigator.clipboard.readText());
      return text === 'OTHER-456' ? text : undefined;
    });
    assert.equal(selected, 'OTHER-456');
  });

  test('the connection banner tells what happens and its buttons ask the host', async (t) => {
    const opened = await openTerminal(t);
    if (!opened) return;
    const { page } = opened;
    await output(page, SAMPLE);
    await waitForScreen(page, 'Wide:');
    const banner = page.getByRole('status');
    assert.equal(await banner.isVisible(), false, 'hidden while open');

    await hostPost(page, { type: 'state', state: { kind: 'connecting', attempt: 1 } });
    await banner.getByText('Connecting…').waitFor();

    await clearPosted(page);
    await hostPost(page, { type: 'state', state: { kind: 'reconnecting', attempt: 2, delayMs: 2000, reason: 'connection lost' } });
    await banner.getByText('Reconnecting… attempt 2').waitFor();
    assert.equal(await banner.getAttribute('aria-live'), 'polite');
    await screenshot(page, 'terminal-banner-reconnecting');
    await banner.getByRole('button', { name: 'Retry Now' }).click();
    await waitForMessage(page, (m) => m.type === 'action' && m['action'] === 'reconnect', 'reconnect');

    await clearPosted(page);
    await hostPost(page, { type: 'state', state: { kind: 'ended', reason: 'the agent exited (code 0)', status: 'dead' } });
    await banner.getByText('Session ended: the agent exited (code 0)').waitFor();
    await screenshot(page, 'terminal-banner-ended');
    await banner.getByRole('button', { name: 'Restart Session' }).click();
    await banner.getByRole('button', { name: 'Close' }).click();
    await waitForMessage(page, (m) => m.type === 'action' && m['action'] === 'close', 'close');
    assert.deepEqual(
      (await posted(page)).map((p) => p.message),
      [{ type: 'action', action: 'restart' }, { type: 'action', action: 'close' }],
    );

    await clearPosted(page);
    await hostPost(page, { type: 'state', state: { kind: 'unauthorized', message: 'The platform rejected the key.' } });
    await banner.getByText('The platform rejected the key.').waitFor();
    await banner.getByRole('button', { name: 'Sign In' }).click();
    await waitForMessage(page, (m) => m.type === 'action' && m['action'] === 'signIn', 'signIn');

    await clearPosted(page);
    await hostPost(page, { type: 'state', state: { kind: 'failed', message: 'Cannot reach the sandbox.' } });
    await banner.getByText('Cannot reach the sandbox.').waitFor();
    await banner.getByRole('button', { name: 'Retry' }).click();
    await waitForMessage(page, (m) => m.type === 'action' && m['action'] === 'reconnect', 'retry');

    await hostPost(page, { type: 'state', state: { kind: 'open' } });
    await banner.waitFor({ state: 'hidden' });
  });

  test('during a 20 MB flood, typing still reaches the host promptly and every byte is acknowledged', async (t) => {
    const opened = await openTerminal(t);
    if (!opened) return;
    const { page } = opened;
    await focusTerminal(page);
    await clearPosted(page);

    // 320 chunks of 64 KB, posted without waiting, as a host ignoring flow control would.
    const total = await page.evaluate(() => {
      let sent = 0;
      for (let c = 0; c < 320; c++) {
        let text = '';
        for (let i = 0; i < 819; i++) text += `flood line ${String(c * 819 + i).padStart(6, '0')} ${'x'.repeat(58)}\r\n`;
        const data = new TextEncoder().encode(text);
        sent += data.byteLength;
        window.__hostPost({ type: 'output', data });
      }
      return sent;
    });
    assert.ok(total >= 20 * 1000 * 1000);

    const acked = async (): Promise<number> =>
      (await posted(page)).filter((p) => p.message.type === 'ack').reduce((n, p) => n + (p.message['bytes'] as number), 0);

    const pressed = Date.now();
    await page.keyboard.press('q');
    await waitForInput(page, 'q');
    const latency = Date.now() - pressed;
    const ackedWhenTyped = await acked();
    t.diagnostic(`input latency during the flood: ${latency} ms; ${ackedWhenTyped} of ${total} bytes acknowledged by then`);
    assert.ok(ackedWhenTyped < total, 'the key was typed while output was still being parsed');
    assert.ok(latency < 1_000, `input took ${latency} ms`);

    const started = Date.now();
    await waitFor('all acks', async () => ((await acked()) >= total ? true : undefined), 120_000);
    assert.equal(await acked(), total);
    const acks = (await posted(page)).filter((p) => p.message.type === 'ack');
    t.diagnostic(`${acks.length} acks; the flood finished ${Date.now() - started} ms after the key`);
    // One ack per parsed output message at most (each is ≥ 16 KB): never one per line or per small write.
    assert.ok(acks.length <= 320 + 5, `acks are batched (${acks.length} for 320 output messages)`);
    await waitForScreen(page, `flood line ${String(320 * 819 - 1).padStart(6, '0')}`);
  });

  test('clicking a link asks the host to open it (plain URLs and OSC 8 hyperlinks)', async (t) => {
    const opened = await openTerminal(t);
    if (!opened) return;
    const { page, ready } = opened;
    await output(page, 'Docs: https://example.com/docs?q=1 end\r\nSee \x1b]8;;https://example.com/osc8\x07the guide\x1b]8;;\x07 here\r\n');
    await waitForScreen(page, 'See the guide here');
    await clearPosted(page);

    const url = await cellCenter(page, ready, 'Docs: '.length + 8, 0);
    await page.mouse.move(url.x - 20, url.y);
    await page.mouse.move(url.x, url.y, { steps: 3 });
    await page.mouse.click(url.x, url.y);
    const plain = await waitForMessage(page, (m) => m.type === 'openLink', 'openLink');
    assert.equal(plain.message['url'], 'https://example.com/docs?q=1');

    await clearPosted(page);
    const label = await cellCenter(page, ready, 'See '.length + 2, 1);
    await page.mouse.move(label.x - 20, label.y);
    await page.mouse.move(label.x, label.y, { steps: 3 });
    await page.mouse.click(label.x, label.y);
    const osc8 = await waitForMessage(page, (m) => m.type === 'openLink', 'openLink (OSC 8)');
    assert.equal(osc8.message['url'], 'https://example.com/osc8');
  });
});
