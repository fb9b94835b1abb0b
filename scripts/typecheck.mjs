// Type-checks each root with its own tsconfig (each runtime has its own lib/types).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
const roots = ['protocol', 'extension', 'webview', 'bridge', 'harness-containers', 'test'].filter((r) => existsSync(`${r}/tsconfig.json`));
let failed = 0;
for (const root of roots) {
  const r = spawnSync(process.execPath, [tsc, '-p', `${root}/tsconfig.json`], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
  console.log(`[typecheck] ${root}: ${r.status === 0 ? 'ok' : 'errors'}`);
}
process.exit(failed ? 1 : 0);
