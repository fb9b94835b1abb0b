// For @vscode/test-cli (`npx vscode-test`) on machines that can download VS Code: runs the same
// compiled extension-host suite (`node esbuild.config.mjs --tests` → dist-test/vscode/) in VS Code
// desktop. On machines that cannot, test/vscode/extensionHost.test.ts runs it in the VS Code server
// instead, through dist-test/vscode/index.js (the @vscode/test-electron `run()` entry).
import { defineConfig } from '@vscode/test-cli';

export default defineConfig({
  label: 'extension-host',
  files: 'dist-test/vscode/*.test.js',
  extensionDevelopmentPath: '.',
  mocha: { ui: 'bdd', timeout: 60_000, color: true },
  launchArgs: ['--disable-extensions', '--disable-workspace-trust'],
});
