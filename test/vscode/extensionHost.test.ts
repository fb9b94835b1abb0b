// Runs the extension-host suite (test/vscode/suite/, compiled by `node esbuild.config.mjs --tests`
// into dist-test/vscode/) inside a real VS Code, and reports each of its mocha tests as a node:test
// subtest, so the test runner's summary counts them. Without the VS Code server or Chromium the test
// is skipped, or fails on CI (see requireAllTiers).
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { runExtensionTests, skipUnlessVSCode } from './server';

const REPO_ROOT = resolve(__dirname, '..', '..');
const TESTS_ENTRY = join(REPO_ROOT, 'dist-test', 'vscode', 'index.js');

test('extension-host suite in a real VS Code', { timeout: 300_000 }, async (t) => {
  if (skipUnlessVSCode(t)) return;
  assert.ok(existsSync(TESTS_ENTRY), `${TESTS_ENTRY} is missing: run \`node esbuild.config.mjs --tests\` first`);

  const folder = mkdtempSync(join(tmpdir(), 'sa-workspace-'));
  try {
    const { exitCode, results, log } = await runExtensionTests({
      extensionDevelopmentPath: REPO_ROOT,
      extensionTestsPath: TESTS_ENTRY,
      folder,
    });
    const tail = () => log.slice(-60).join('\n');
    assert.ok(results.length > 0, `The suite reported no tests (exit code ${exitCode}). Log:\n${tail()}`);

    for (const r of results) {
      await t.test(r.fullTitle, { skip: r.state === 'pending' ? 'pending in the suite' : false }, () => {
        if (r.state === 'failed') throw new Error(r.error ?? 'failed');
      });
    }
    const failed = results.filter((r) => r.state === 'failed').length;
    if (failed === 0) assert.equal(exitCode, 0, `The suite's run() failed outside any test. Log:\n${tail()}`);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
