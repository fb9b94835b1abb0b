// Builds the production bundles and packs dist/ and runtime assets (see .vscodeignore) into
// dist-vsix/sandbox-agents.vsix.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
run(process.execPath, ['esbuild.config.mjs', '--production']);
mkdirSync('dist-vsix', { recursive: true });
run('npx', ['--no-install', 'vsce', 'package', '--no-dependencies', '--out', 'dist-vsix/sandbox-agents.vsix']);
