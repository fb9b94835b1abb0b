// The whole test suite: build, type-check, then every tier under node's test runner.
//   node scripts/test.mjs                 all tiers
//   node scripts/test.mjs unit contract   only these tiers (unit, contract, bridge, docker, webview, vscode, ui)
// With CI=true (or SANDBOX_AGENTS_REQUIRE_ALL_TIERS=1) a tier whose system dependency is missing
// fails instead of being skipped.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { bootstrap } from './bootstrap.mjs';

const TIERS = {
  unit: () => [...find('protocol', /\.test\.ts$/), ...find('extension', /\.test\.ts$/), ...find('bridge', /\.test\.ts$/), ...find('harness-containers', /\.test\.ts$/)],
  contract: () => [...find('test/fixtures', /\.test\.ts$/), ...find('test/contract', /\.test\.ts$/)],
  bridge: () => find('test/bridge', /\.test\.ts$/).filter((f) => !f.includes('/docker.')),
  docker: () => [...find('test/docker', /\.test\.ts$/), ...find('test/bridge', /^docker\..*\.test\.ts$/)],
  webview: () => find('test/webview', /\.test\.ts$/),
  vscode: () => find('test/vscode', /\.test\.ts$/).filter((f) => !f.includes('/suite/')),
  ui: () => find('test/ui', /\.test\.ts$/),
};

function find(dir, re) {
  let out = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(find(p, re));
    else if (re.test(name)) out.push(p);
  }
  return out.sort();
}

const asked = process.argv.slice(2);
const unknown = asked.filter((t) => !(t in TIERS));
if (unknown.length) {
  console.error(`Unknown tier(s): ${unknown.join(', ')}. Tiers: ${Object.keys(TIERS).join(', ')}`);
  process.exit(2);
}
const tiers = asked.length ? asked : Object.keys(TIERS);
if (process.env.CI === 'true' || process.env.CI === '1') process.env.SANDBOX_AGENTS_REQUIRE_ALL_TIERS = '1';

function step(label, cmd, args) {
  console.log(`\n== ${label}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    console.log(`\n0 passed, 1 failed\n(${label} failed)`);
    process.exit(1);
  }
}

bootstrap({ vscodeServer: false });
if (tiers.some((t) => t === 'vscode' || t === 'ui')) {
  console.log('\n== VS Code server (installed once into a cache)');
  const r = spawnSync('bash', ['scripts/ensure-vscode-server.sh'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) console.log('[test] the VS Code server could not be installed: the vscode and ui tiers will report it');
}
step('build', process.execPath, ['esbuild.config.mjs', '--tests']);
step('typecheck', process.execPath, ['scripts/typecheck.mjs']);

const files = tiers.flatMap((t) => TIERS[t]());

// One test Docker engine (isolated, no bridge network) with the base image, shared by every Docker test.
let dockerd;
if (tiers.includes('docker')) {
  console.log('\n== test Docker engine');
  const { tsImport } = await import('tsx/esm/api');
  const m = await tsImport('../test/docker/dockerd.ts', import.meta.url);
  const missing = m.dockerPrerequisites();
  if (missing) console.log(`[test] ${missing} The Docker tests will report it.`);
  else {
    try {
      dockerd = await m.startForTestRun();
    } catch (err) {
      console.log(`[test] the test Docker engine could not start: ${err.message}`);
      if (process.env.SANDBOX_AGENTS_REQUIRE_ALL_TIERS === '1') {
        console.log('\n0 passed, 1 failed');
        process.exit(1);
      }
    }
  }
}

console.log(`\n== tests: ${tiers.join(', ')} (${files.length} files)`);
// The summary line goes to a file and is printed last, after every cleanup message.
const summaryFile = join(mkdtempSync(join(tmpdir(), 'sa-test-')), 'summary.txt');
const r = spawnSync(
  process.execPath,
  [
    '--import', 'tsx',
    '--test',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=./scripts/summary-reporter.mjs', `--test-reporter-destination=${summaryFile}`,
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, ...dockerd?.env, FORCE_COLOR: '0' } },
);
await dockerd?.stop();
let summary = '';
try {
  summary = readFileSync(summaryFile, 'utf8').trim();
} catch {
  summary = '';
}
rmSync(dirname(summaryFile), { recursive: true, force: true });
console.log(`\n${summary || `0 passed, 1 failed\n(the test runner exited ${r.status ?? r.signal} without a summary)`}`);
process.exit(summary ? (r.status ?? 1) : 1);
