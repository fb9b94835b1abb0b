// Makes a fresh clone runnable: npm dependencies (when missing or older than the lockfile) and,
// when asked, the cached VS Code server. Uses only Node built-ins, so it runs before `npm ci`.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

const repo = resolve(new URL('.', import.meta.url).pathname, '..');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: repo, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`[bootstrap] ${cmd} ${args.join(' ')} failed (exit ${r.status}).`);
    process.exit(r.status ?? 1);
  }
  return r;
}

/** Returns the VS Code server's cache directory when `vscodeServer` is true. */
export function bootstrap({ vscodeServer }) {
  const marker = resolve(repo, 'node_modules/.package-lock.json');
  const lock = resolve(repo, 'package-lock.json');
  if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
    console.log('[bootstrap] npm ci');
    run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error']);
  }
  if (!vscodeServer) return undefined;
  const r = run('bash', ['scripts/ensure-vscode-server.sh'], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  return r.stdout.trim().split('\n').at(-1);
}
