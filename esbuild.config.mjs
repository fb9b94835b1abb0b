// One table of bundles. `node esbuild.config.mjs [--watch] [--production] [--tests]`.
// Product bundles go to dist/ (shipped); test bundles go to dist-test/ (never shipped).
import * as esbuild from 'esbuild';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writePinnedSchema } from './scripts/pinnedSchema.mjs';

const args = new Set(process.argv.slice(2));
const production = args.has('--production');
const watch = args.has('--watch');
const withTests = args.has('--tests') || watch;

const node = { platform: 'node', format: 'cjs', target: 'node20' };
const browser = { platform: 'browser', format: 'iife', target: 'es2022' };

/** Each entry: name, entry point, output file, runtime, externals. Later entries (bridge, webviews,
 *  harness init) join this table as their folders land. */
export const entries = [
  { name: 'extension', in: 'extension/extension.ts', out: 'dist/extension.js', ...node, external: ['vscode'] },
  // The bridge loads node-pty (native, N-API prebuilds) at run time; ssh2's optional native parts stay out.
  { name: 'bridge', in: 'bridge/main.ts', out: 'dist/bridge.js', ...node, external: ['@lydell/node-pty', 'cpu-features', '*.node'] },
  // The bridge's terminal mirrors (headless xterm) parse in a worker thread it loads from beside itself.
  { name: 'bridge-mirror', in: 'bridge/mirrorWorker.ts', out: 'dist/bridge-mirror.js', ...node },
  // In-sandbox init: bind-mounted read-only into every container at /opt/sandbox-agents (never baked
  // into images, so changing it never forces a rebuild); the host runtime runs it directly.
  { name: 'sandbox-init', in: 'harness-containers/init/init.ts', out: 'dist/sandbox/init.js', ...node },
  // The claude-agent-sdk harness server; the SDK (ESM, with its Claude Code binary) is installed beside it, not bundled.
  { name: 'claude-agent-sdk-server', in: 'harness-containers/claude-agent-sdk/server.ts', out: 'dist/sandbox/claude-agent-sdk-server.js', ...node, external: ['@anthropic-ai/claude-agent-sdk'] },
  // The agent terminal panel: xterm.js and its addons; its CSS (xterm's + ours) lands in dist/webview/terminal.css.
  { name: 'webview-terminal', in: 'webview/terminal/main.ts', out: 'dist/webview/terminal.js', ...browser },
  // The Chat view: marked + DOMPurify, @vscode-elements controls; its CSS lands in dist/webview/chat.css.
  { name: 'webview-chat', in: 'webview/chat/main.ts', out: 'dist/webview/chat.js', ...browser },
];

/** Extension-host test suites: one bundle per suite file plus the mocha entry, `vscode` and mocha external. */
function testEntries() {
  const dir = 'test/vscode/suite';
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  return files.map((f) => ({
    name: `vscode-test:${f}`,
    in: join(dir, f),
    out: join('dist-test/vscode', f.replace(/\.ts$/, '.js')),
    ...node,
    external: ['vscode', 'mocha', '@lydell/node-pty'],
  }));
}

function options(e) {
  return {
    entryPoints: [e.in],
    outfile: e.out,
    bundle: true,
    platform: e.platform,
    format: e.format,
    target: e.target,
    external: e.external ?? [],
    // jsonc-parser's `main` is a UMD build that requires its parts at run time (not bundled): use its ESM build.
    alias: { 'jsonc-parser': 'jsonc-parser/lib/esm/main.js' },
    sourcemap: production ? false : 'linked',
    minify: production,
    legalComments: production ? 'none' : 'inline',
    logLevel: 'warning',
    metafile: true,
  };
}

// Imported by bench/ for the entry table: build only when run as a script.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const all = [...entries, ...(withTests ? testEntries() : [])];
  if (!watch) rmSync('dist', { recursive: true, force: true });
  // A suite file removed from test/vscode/suite/ must not leave a stale bundle that still runs.
  if (!watch && withTests) rmSync('dist-test', { recursive: true, force: true });

  if (watch) {
    for (const e of all) {
      const ctx = await esbuild.context(options(e));
      await ctx.watch();
    }
    await writePinnedSchema();
    console.log(`[esbuild] watching ${all.length} bundles`);
  } else {
    const t0 = Date.now();
    await Promise.all(all.map((e) => esbuild.build(options(e))));
    // The JSON Schema of .vscode/sandbox-agents.json, from its zod schema (contributes.jsonValidation).
    await writePinnedSchema();
    const sizes = entries.map((e) => `${e.out} ${(statSync(e.out).size / 1024).toFixed(1)} KiB`).join(', ');
    console.log(`[esbuild] built ${all.length} bundles in ${Date.now() - t0} ms (${sizes})`);
  }
}
