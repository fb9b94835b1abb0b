// The Chat view's webview (webview/chat, bundled to dist/webview/chat.js + .css) in real Chromium
// under a webview CSP, with a stub VS Code API: replies are drawn as sanitised markdown (nothing from a
// reply runs), code blocks offer Copy and Insert, Enter sends and Shift+Enter does not, a streaming
// update redraws only its own message, Stop is offered while a turn runs, and attachments are checked
// before they are read. Build first (`node esbuild.config.mjs`).
//
// Screenshots: test-results/screenshots/chat-dark.png, chat-light.png.
import * as assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import type { Transcript } from '../../protocol/chat';
import { skipOrFail } from '../tiers';
import { checkBundle, launchBrowser, missingChromium, screenshot, startWebviewServer, type Browser, type PostedMessage, type WebviewServer } from './webviewPage';

const BUNDLE = 'dist/webview/chat.js';
const THEME_CSS = `
body.vscode-dark {
  --vscode-font-family: system-ui, sans-serif; --vscode-font-size: 13px;
  --vscode-editor-font-family: "DejaVu Sans Mono", monospace; --vscode-editor-font-size: 13px;
  --vscode-foreground: #cccccc; --vscode-sideBar-background: #181818; --vscode-input-background: #313131;
  --vscode-textCodeBlock-background: #2b2b2b; --vscode-textLink-foreground: #4daafc; --vscode-errorForeground: #f85149;
  --vscode-descriptionForeground: #9d9d9d; --vscode-button-background: #0078d4; --vscode-button-foreground: #ffffff;
  --vscode-button-secondaryBackground: #313131; --vscode-button-secondaryForeground: #cccccc;
  --vscode-badge-background: #616161; --vscode-badge-foreground: #f8f8f8;
}
body.vscode-light {
  --vscode-font-family: system-ui, sans-serif; --vscode-font-size: 13px;
  --vscode-editor-font-family: "DejaVu Sans Mono", monospace; --vscode-editor-font-size: 13px;
  --vscode-foreground: #3b3b3b; --vscode-sideBar-background: #f8f8f8; --vscode-input-background: #ffffff;
  --vscode-textCodeBlock-background: #f2f2f2; --vscode-textLink-foreground: #005fb8; --vscode-errorForeground: #f85149;
  --vscode-descriptionForeground: #616161; --vscode-button-background: #005fb8; --vscode-button-foreground: #ffffff;
  --vscode-button-secondaryBackground: #e5e5e5; --vscode-button-secondaryForeground: #3b3b3b;
  --vscode-badge-background: #cccccc; --vscode-badge-foreground: #3b3b3b;
  --vscode-settings-dropdownBackground: #ffffff; --vscode-settings-dropdownForeground: #3b3b3b; --vscode-settings-dropdownBorder: #cecece;
  --vscode-settings-textInputBackground: #ffffff; --vscode-settings-textInputForeground: #3b3b3b; --vscode-settings-textInputBorder: #cecece;
}`;

const KEY = 'local/ses-1';
const MALICIOUS = [
  'Hello **bold** world.',
  '',
  '<img src="x" onerror="window.__pwned = 1">',
  '<script>window.__pwned = 2</script>',
  '[click me](javascript:window.__pwned=3) and <a href="https://example.com" onclick="window.__pwned=4">a link</a>',
  '',
  '```js',
  'const x = 1;',
  '```',
].join('\n');

function transcript(assistantText: string, busy = false): Transcript {
  return {
    busy,
    messages: [
      { info: { id: 'm1', role: 'user', time: { created: 1 } }, parts: [{ id: 'p1', type: 'text', text: 'show me' }] },
      {
        info: { id: 'm2', role: 'assistant', time: { created: 2 }, tokens: { input: 12, output: 34 }, cost: 0.0021 },
        parts: [
          { id: 'p2', type: 'reasoning', text: 'thinking about it' },
          { id: 'p3', type: 'tool', tool: 'bash', state: { status: 'completed', input: { command: 'ls' }, output: 'README.md' } },
          { id: 'p4', type: 'text', text: assistantText },
        ],
      },
    ],
  } as Transcript;
}

describe('chat webview in Chromium', { timeout: 120_000 }, () => {
  let server: WebviewServer;
  let browser: Browser;
  let page: Page;
  let missing: string | undefined;

  before(async () => {
    missing = missingChromium();
    if (missing) return;
    checkBundle(BUNDLE, 'webview/chat');
    server = await startWebviewServer({ themeCss: THEME_CSS });
    browser = await launchBrowser(server.origin);
    page = await browser.context.newPage();
    await page.goto(server.url(BUNDLE));
    await page.waitForFunction(() => window.__posted.some((p) => p.message.type === 'ready'));
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const posted = async (type: string): Promise<PostedMessage['message'][]> => (await page.evaluate(() => window.__posted)).map((p) => p.message).filter((m) => m.type === type);
  const host = (m: unknown) => page.evaluate((msg) => window.__hostPost(msg), m);

  test('draws the transcript as sanitised markdown: nothing from a reply runs or links to javascript:', async (t: TestContext) => {
    if (skipOrFail(t, missing)) return;
    await host({ type: 'sessions', items: [{ key: KEY, label: 'sdk · ses-1', description: 'Local · ready', ready: true }], selected: KEY });
    await host({ type: 'transcript', key: KEY, transcript: transcript(MALICIOUS) });
    await page.waitForSelector('article.message.assistant strong');
    assert.equal(await page.textContent('article.message.assistant strong'), 'bold');
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'a reply ran code');
    assert.equal(await page.locator('#thread script, #thread [onerror], #thread [onclick]').count(), 0);
    const hrefs = await page.$$eval('#thread a', (as) => as.map((a) => a.getAttribute('href')));
    assert.ok(hrefs.every((h) => !h || !/^javascript:/i.test(h)), `hrefs: ${hrefs.join(', ')}`);
    assert.ok(hrefs.includes('https://example.com'));
    // Whatever the sanitiser let through that the CSP still refuses is an image load (the real view
    // allows only its own files and data: images) or an inline attribute it blocked: never a script.
    const violations = await page.evaluate(() => window.__violations);
    assert.ok(violations.every((v) => /^(img-src|script-src-attr) /.test(v)), violations.join(', '));
    // Reasoning and tools are collapsible; tokens and cost under the reply.
    assert.equal(await page.textContent('.part-reasoning summary'), 'Reasoning');
    assert.match((await page.textContent('.part-tool summary')) ?? '', /bash · completed/);
    assert.match((await page.textContent('.meta')) ?? '', /12 in · 34 out tokens · \$0\.0021/);
    await screenshot(page, 'chat-dark');
    // The same transcript in the light theme: the colours follow VS Code's variables.
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(await background(), 'rgb(24, 24, 24)');
    await page.evaluate(() => document.body.classList.replace('vscode-dark', 'vscode-light'));
    assert.equal(await background(), 'rgb(248, 248, 248)');
    await screenshot(page, 'chat-light');
    await page.evaluate(() => document.body.classList.replace('vscode-light', 'vscode-dark'));
  });

  test('code blocks offer Copy and Insert with the code', async (t: TestContext) => {
    if (skipOrFail(t, missing)) return;
    await page.click('.code-actions button:has-text("Copy")');
    await page.click('.code-actions button:has-text("Insert")');
    assert.deepEqual((await posted('copy')).at(-1), { type: 'copy', text: 'const x = 1;\n' });
    assert.deepEqual((await posted('insert')).at(-1), { type: 'insert', text: 'const x = 1;\n' });
  });

  test('a streaming update redraws only its own message', async (t: TestContext) => {
    if (skipOrFail(t, missing)) return;
    await page.evaluate(() => ((document.querySelector('article[data-id="m1"]') as HTMLElement & { __mark?: boolean }).__mark = true));
    await host({ type: 'transcript', key: KEY, transcript: transcript('Streaming more text', true) });
    await page.waitForFunction(() => document.querySelector('article[data-id="m2"]')?.textContent?.includes('Streaming more text'));
    assert.equal(await page.evaluate(() => (document.querySelector('article[data-id="m1"]') as HTMLElement & { __mark?: boolean }).__mark), true, 'the unchanged message was kept');
    // While the turn runs: Stop is shown and sends abort; Send is disabled.
    assert.equal(await page.isVisible('#stop'), true);
    await page.click('#stop');
    assert.equal((await posted('abort')).length, 1);
    assert.match((await page.textContent('#status')) ?? '', /Working/);
  });

  test('Enter sends, Shift+Enter makes a new line, Up recalls the last message; errors show with Retry', async (t: TestContext) => {
    if (skipOrFail(t, missing)) return;
    await host({ type: 'transcript', key: KEY, transcript: transcript('done') });
    await page.click('#input');
    await page.keyboard.type('first line');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('second line');
    assert.equal((await posted('send')).length, 0, 'Shift+Enter did not send');
    await page.keyboard.press('Enter');
    assert.deepEqual((await posted('send')).at(-1), { type: 'send', text: 'first line\nsecond line', attachments: [] });
    assert.equal(await page.evaluate(() => (document.getElementById('input') as HTMLElement & { value: string }).value), '');
    await page.keyboard.press('ArrowUp');
    assert.equal(await page.evaluate(() => (document.getElementById('input') as HTMLElement & { value: string }).value), 'first line\nsecond line');
    await host({ type: 'transcript', key: KEY, transcript: { ...transcript('done'), error: 'model overloaded' } });
    await page.waitForSelector('#status button:has-text("Retry")');
    assert.match((await page.textContent('#status')) ?? '', /Error: model overloaded/);
    await page.click('#status button:has-text("Retry")');
    assert.equal((await posted('retry')).length, 1);
  });

  test('pasted files: a PDF is refused with a precise message; an image is attached and sent as base64', async (t: TestContext) => {
    if (skipOrFail(t, missing)) return;
    await host({ type: 'transcript', key: KEY, transcript: transcript('done') });
    const paste = (name: string, type: string, content: string) =>
      page.evaluate(
        ([n, ty, c]) => {
          const dt = new DataTransfer();
          dt.items.add(new File([c], n, { type: ty }));
          document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
        },
        [name, type, content] as const,
      );
    await paste('notes.pdf', 'application/pdf', '%PDF');
    await page.waitForFunction(() => /only PNG, JPEG, GIF and WebP/.test(document.getElementById('status')?.textContent ?? ''));
    assert.match((await page.textContent('#status')) ?? '', /notes\.pdf is application\/pdf/);
    await paste('dot.png', 'image/png', 'PNGDATA');
    await page.waitForSelector('.chip');
    await page.click('#input');
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('see image');
    await page.keyboard.press('Enter');
    const sent = (await posted("send")).at(-1) as unknown as { text: string; attachments: { name: string; mime_type: string; base64: string }[] };
    assert.equal(sent.text, 'see image');
    assert.deepEqual(sent.attachments, [{ name: 'dot.png', mime_type: 'image/png', base64: Buffer.from('PNGDATA').toString('base64') }]);
  });

  test('a long thread opens with its latest messages; scrolling up shows earlier ones', async (t: TestContext) => {
    if (skipOrFail(t, missing)) return;
    const many = Array.from({ length: 400 }, (_, i) => ({ info: { id: `L${i}`, role: i % 2 ? 'assistant' : 'user', time: { created: i } }, parts: [{ id: `q${i}`, type: 'text', text: `message ${i}` }] }));
    await host({ type: 'transcript', key: 'local/long', transcript: { busy: false, messages: many } });
    await page.waitForSelector('article[data-id="L399"]');
    assert.equal(await page.locator('#thread article').count(), 150);
    assert.equal(await page.isVisible('#thread .earlier'), true);
    await page.click('#thread .earlier');
    const count = await page.locator('#thread article').count();
    assert.ok(count >= 300, `${count} drawn`);
    assert.equal((await page.textContent('#thread article >> nth=0'))?.trim(), `message ${400 - count}`, 'in order, the earliest first');
  });
});
