// A webview bundle in a plain Chromium page, as VS Code would show it but without VS Code: the
// bundle's script and CSS served from a loopback HTTP server (standing in for `webview.cspSource`),
// the CSP the host sets, a stub `acquireVsCodeApi()` that records what the webview posts, and a way
// to post host messages to it (a `message` event on `window`, as VS Code delivers them).
//
// Chromium is Debian's (`apt-get install -y chromium`), driven by playwright-core; missing, the tests
// are skipped locally and fail on CI (test/tiers.ts).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../vscode/server';

export const REPO_ROOT = resolve(dirname(__filename), '..', '..');
export const SCREENSHOTS_DIR = join(REPO_ROOT, 'test-results', 'screenshots');

export function missingChromium(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `Chromium is missing at ${CHROMIUM} (run apt-get install -y chromium).`;
}

/** The Content-Security-Policy the extension host sets on the webview, for a given cspSource and
 *  nonce. Styles xterm creates at run time carry the script's nonce (webview/terminal/styleNonce.ts). */
export function webviewCsp(cspSource: string, nonce: string): string {
  return [
    `default-src 'none'`,
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `style-src-attr 'unsafe-inline'`,
    `font-src ${cspSource}`,
  ].join('; ');
}

/** The bundle must be built (`node esbuild.config.mjs`) and newer than its sources. */
export function checkBundle(bundle: string, sourcesDir: string): void {
  const js = join(REPO_ROOT, bundle);
  if (!existsSync(js)) throw new Error(`${bundle} is missing: build first (node esbuild.config.mjs).`);
  const built = statSync(js).mtimeMs;
  const stale = listFiles(join(REPO_ROOT, sourcesDir)).filter((f) => statSync(f).mtimeMs > built);
  if (stale.length) throw new Error(`${bundle} is older than ${stale.join(', ')}: build first (node esbuild.config.mjs).`);
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? listFiles(join(dir, d.name)) : [join(dir, d.name)]));
}

/** What the stub page exposes to tests (page.evaluate). */
export interface PostedMessage {
  /** `performance.now()` in the page when the webview posted it. */
  at: number;
  message: { type: string; [key: string]: unknown };
}
declare global {
  interface Window {
    __posted: PostedMessage[];
    __violations: string[];
    __forwardedKeys: string[];
    __hostPost(message: unknown): void;
  }
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.map': 'application/json',
  '.html': 'text/html',
};

/** Test-page files (theme variables per `body` class, the `acquireVsCodeApi` stub), served with the
 *  bundle. */
export interface PageFiles {
  themeCss: string;
}

export interface WebviewServer {
  origin: string;
  /** The page for `bundle` (e.g. `dist/webview/terminal.js`) with its CSS and the CSP above. */
  url(bundle: string, opts?: { bodyClass?: string }): string;
  close(): Promise<void>;
}

const STUB = `
// Records what the webview posts, and which keydown events reach the window in the bubble phase
// (VS Code's webview host listens there and forwards those to the workbench).
window.__posted = [];
window.__violations = [];
window.__forwardedKeys = [];
let acquired = false;
window.acquireVsCodeApi = () => {
  if (acquired) throw new Error('acquireVsCodeApi called twice');
  acquired = true;
  return {
    postMessage: (message) => window.__posted.push({ at: performance.now(), message }),
    getState: () => undefined,
    setState: () => undefined,
  };
};
window.__hostPost = (message) => window.dispatchEvent(new MessageEvent('message', { data: message }));
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
window.addEventListener('keydown', (e) => {
  if (['Control', 'Shift', 'Alt', 'Meta'].includes(e.key)) return; // bare modifiers: forwarded, no effect
  const mods = (e.ctrlKey ? 'Control+' : '') + (e.altKey ? 'Alt+' : '') + (e.shiftKey ? 'Shift+' : '') + (e.metaKey ? 'Meta+' : '');
  window.__forwardedKeys.push(mods + e.key);
});
`;

export async function startWebviewServer(files: PageFiles): Promise<WebviewServer> {
  const nonce = randomBytes(16).toString('base64');
  let origin = '';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    const send = (status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
      res.end(body);
    };
    if (url.pathname === '/page') {
      const bundle = url.searchParams.get('bundle') ?? '';
      const css = bundle.replace(/\.js$/, '.css');
      const bodyClass = url.searchParams.get('bodyClass') ?? 'vscode-dark';
      const csp = webviewCsp(origin, nonce);
      // As the extension host's template: CSP meta first, the CSS by <link>, scripts by nonce.
      const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/test/theme.css">
<link rel="stylesheet" href="/${css}">
<title>Webview test</title>
</head>
<body class="${bodyClass}">
<script nonce="${nonce}" src="/test/stub.js"></script>
<script nonce="${nonce}" src="/${bundle}"></script>
</body>
</html>`;
      return send(200, TYPES['.html']!, html);
    }
    if (url.pathname === '/test/stub.js') return send(200, TYPES['.js']!, STUB);
    if (url.pathname === '/test/theme.css') return send(200, TYPES['.css']!, files.themeCss);
    if (url.pathname.startsWith('/dist/webview/')) {
      const file = resolve(REPO_ROOT, `.${url.pathname}`);
      if (file.startsWith(join(REPO_ROOT, 'dist', 'webview')) && existsSync(file)) {
        return send(200, TYPES[extname(file)] ?? 'application/octet-stream', readFileSync(file));
      }
    }
    send(404, 'text/plain', 'not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    url: (bundle, opts = {}) =>
      `${origin}/page?bundle=${encodeURIComponent(bundle)}&bodyClass=${encodeURIComponent(opts.bodyClass ?? 'vscode-dark')}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile; the clipboard is readable and writable for `origin`. */
export async function launchBrowser(origin: string): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'sa-webview-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1000, height: 600 },
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    return {
      context,
      close: async () => {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/** Saves a PNG of the page to test-results/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  const path = join(SCREENSHOTS_DIR, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** The colour of one pixel of a PNG, as `rgb(r, g, b)`: decoded by Chromium in a blank page. */
export async function pixel(context: BrowserContext, png: Buffer, x: number, y: number): Promise<string> {
  const scratch = await context.newPage();
  try {
    return await scratch.evaluate(
      async ({ base64, x, y }) => {
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
        const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(bitmap, 0, 0);
        const [r, g, b] = ctx.getImageData(x, y, 1, 1).data;
        return `rgb(${r}, ${g}, ${b})`;
      },
      { base64: png.toString('base64'), x, y },
    );
  } finally {
    await scratch.close();
  }
}
