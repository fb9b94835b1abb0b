// Builds the production bundles and packs dist/ and runtime assets (see .vscodeignore) into
// dist-vsix/sandbox-agents.vsix, with the parts of harness-containers/ the bridge builds the sandbox
// images from (each image's build context as bridge/images.ts defines it, the READMEs and
// versions.json; not our TypeScript, which is bundled into dist/sandbox/).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
// The bridge's host runtime loads node-pty (native, N-API) at run time: the wrapper and this
// platform's prebuilt binary go next to the bundle (dist/node_modules). The .vsix is therefore
// per platform (pack on each target, or with vsce's --target).
const ptyPackages = readdirSync('node_modules/@lydell').filter((n) => n === 'node-pty' || n.startsWith('node-pty-'));
if (!ptyPackages.includes('node-pty') || ptyPackages.length < 2) {
  console.error('[package] @lydell/node-pty and its prebuilt binary for this platform are missing: run npm ci');
  process.exit(1);
}
for (const name of ptyPackages) cpSync(join('node_modules/@lydell', name), join('dist/node_modules/@lydell', name), { recursive: true });
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
if (!listed.has('dist/node_modules/@lydell/node-pty/package.json')) {
  console.error('[package] node-pty would not be packed');
  process.exit(1);
}
console.log(`[package] with ${harnessFiles.length} files of harness-containers/ and ${ptyPackages.join(', ')}`);
