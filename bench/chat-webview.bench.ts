/**
 * The Chat view's webview in Chromium (the page of test/webview, stub VS Code API): time to draw a
 * 2,000-message transcript, and the cost of one streamed token (one transcript update that grows the
 * last reply) with that thread above it. Baseline in the same run: the naive way, every message's
 * markdown rendered and sanitised again into one `innerHTML` on every update.
 *
 *   node esbuild.config.mjs && node --import tsx bench/chat-webview.bench.ts
 *
 * Times are taken in the page: `performance.now()` around the `message` event's handler, plus the
 * next animation frame (layout and paint of what changed). Prints a Markdown section for
 * BENCHMARKS.md; it reports, never fails.
 */
import { cpus, loadavg } from 'node:os';
import type { Transcript } from '../protocol/chat';
import { launchBrowser, startWebviewServer } from '../test/webview/webviewPage';

const MESSAGES = Number(process.env.MESSAGES ?? 2000);
const TOKENS = Number(process.env.TOKENS ?? 300);
const log = (m: string) => process.stderr.write(`[chat-webview.bench] ${m}\n`);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

function thread(n: number, lastText: string): Transcript {
  const messages = [];
  for (let i = 0; i < n; i++) {
    const user = i % 2 === 0;
    const text = user
      ? `Question ${i}: how does \`parse()\` handle **edge case ${i}**?`
      : `Answer ${i}. It handles it like this:\n\n- first, it checks the input\n- then it *returns* early\n\n\`\`\`ts\nfunction parse(x: string) {\n  return x.trim();\n}\n\`\`\`\n\nSee [the docs](https://example.com/${i}).`;
    messages.push({ info: { id: `m${i}`, role: user ? 'user' : 'assistant', time: { created: i } }, parts: [{ id: `p${i}`, type: 'text', text: i === n - 1 ? lastText : text }] });
  }
  return { busy: true, messages } as Transcript;
}

async function main(): Promise<void> {
  const server = await startWebviewServer({ themeCss: '' });
  const browser = await launchBrowser(server.origin);
  try {
    const page = await browser.context.newPage();
    await page.goto(server.url('dist/webview/chat.js'));
    await page.waitForFunction(() => window.__posted.some((p) => p.message.type === 'ready'));
    // Times one host message: the handler, then the next frame.
    await page.evaluate(() => {
      (window as unknown as { __time: (m: unknown) => Promise<number> }).__time = (m: unknown) =>
        new Promise((resolve) => {
          const t0 = performance.now();
          window.__hostPost(m);
          requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - t0), 0));
        });
    });
    const time = (m: unknown) => page.evaluate((msg) => (window as unknown as { __time: (m: unknown) => Promise<number> }).__time(msg), m);

    const words = Array.from({ length: TOKENS }, (_, i) => `word${i} `);
    const open = await time({ type: 'transcript', key: 'k', transcript: thread(MESSAGES, '') });
    log(`opened ${MESSAGES} messages in ${open.toFixed(0)} ms`);
    const perToken: number[] = [];
    let text = '';
    for (const w of words) {
      text += w;
      perToken.push(await time({ type: 'transcript', key: 'k', transcript: thread(MESSAGES, text) }));
    }

    // Baseline: everything rendered again, on every update.
    await page.goto(server.url('dist/webview/chat.js'));
    await page.waitForFunction(() => window.__posted.some((p) => p.message.type === 'ready'));
    await page.evaluate(() => {
      const w = window as unknown as { __naive: (t: Transcript) => Promise<number>; __render: (s: string) => string };
      const el = document.createElement('div');
      document.body.prepend(el);
      w.__naive = (t) =>
        new Promise((resolve) => {
          const t0 = performance.now();
          el.innerHTML = t.messages.map((m) => `<article>${w.__render(m.parts.map((p) => (p as { text?: string }).text ?? '').join(''))}</article>`).join('');
          requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - t0), 0));
        });
    });
    // The bundle's own marked + DOMPurify are not exported: the baseline uses the same pipeline
    // through the page (render one message with the view, read its HTML back) — equivalent cost per
    // message, so a full re-render costs MESSAGES times that.
    await page.evaluate(() => {
      const w = window as unknown as { __render: (s: string) => string };
      w.__render = (s: string) => {
        window.__hostPost({ type: 'transcript', key: 'r', transcript: { busy: false, messages: [{ info: { id: 'r', role: 'assistant' }, parts: [{ id: 'r', type: 'text', text: s }] }] } });
        return document.querySelector('article[data-id="r"] .part')?.innerHTML ?? '';
      };
    });
    const naiveOpen = await page.evaluate((t) => (window as unknown as { __naive: (t: Transcript) => Promise<number> }).__naive(t), thread(MESSAGES, ''));
    const naivePerToken: number[] = [];
    text = '';
    for (const w of words.slice(0, 20)) {
      text += w;
      naivePerToken.push(await page.evaluate((t) => (window as unknown as { __naive: (t: Transcript) => Promise<number> }).__naive(t), thread(MESSAGES, text)));
    }
    const lines = [
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, headless Chromium, load ${loadavg()[0].toFixed(2)} at the end; ${MESSAGES} messages (half replies with a list, a code block and a link), ${TOKENS} streamed tokens (baseline: 20).`,
      '',
      '| measure | the chat view (incremental) | baseline: re-render everything |',
      '|---|---|---|',
      `| open the transcript (handler + next frame) | ${open.toFixed(0)} ms | ${naiveOpen.toFixed(0)} ms |`,
      `| one streamed token, p50 / p95 | ${pct(perToken, 50).toFixed(1)} / ${pct(perToken, 95).toFixed(1)} ms | ${pct(naivePerToken, 50).toFixed(0)} / ${pct(naivePerToken, 95).toFixed(0)} ms |`,
    ];
    console.log(lines.join('\n'));
  } finally {
    await browser.close();
    await server.close();
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
