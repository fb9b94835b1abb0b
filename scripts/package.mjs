// Builds the production bundles and packs dist/ and runtime assets (see .vscodeignore) into
// dist-vsix/sandbox-agents.vsix, with the parts of harness-containers/ the bridge builds the sandbox
// images from (each image's build context as bridge/images.ts defines it, the READMEs and
// versions.json; not our TypeScript, which is bundled into dist/sandbox/).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tsImport } from 'tsx/esm/api';

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
  return r;
};

const { harnessRootFiles } = await tsImport('../bridge/images.ts', import.meta.url);
const harnessFiles = harnessRootFiles('harness-containers').map((f) => `harness-containers/${f}`);
if (!harnessFiles.some((f) => f === 'harness-containers/base/Dockerfile')) {
  console.error('[package] harness-containers/base/Dockerfile is missing');
  process.exit(1);
}
// vsce keeps a file that a `!pattern` names even when another pattern ignores it.
const tmp = mkdtempSync(join(tmpdir(), 'sa-package-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const ignoreFile = join(tmp, 'vscodeignore');
writeFileSync(ignoreFile, `${readFileSync('.vscodeignore', 'utf8').trimEnd()}\n${harnessFiles.map((f) => `!${f}`).join('\n')}\n`);

run(process.execPath, ['esbuild.config.mjs', '--production']);
mkdirSync('dist-vsix', { recursive: true });
const vsce = ['--no-install', 'vsce'];
const ls = run('npx', [...vsce, 'ls', '--no-dependencies', '--ignoreFile', ignoreFile], { stdio: ['ignore', 'pipe', 'inherit'] });
const listed = new Set(ls.stdout.toString().split('\n').map((l) => l.trim()));
const missing = harnessFiles.filter((f) => !listed.has(f));
if (missing.length) {
  console.error(`[package] these harness files would not be packed: ${missing.join(', ')}`);
  process.exit(1);
}
run('npx', [...vsce, 'package', '--no-dependencies', '--ignoreFile', ignoreFile, '--out', 'dist-vsix/sandbox-agents.vsix']);
console.log(`[package] with ${harnessFiles.length} files of harness-containers/`);
