// Size of the shipped extension bundle (production build), against a baseline built in the same run
// with classic zod instead of zod/mini. Prints a Markdown table row set for BENCHMARKS.md.
import * as esbuild from 'esbuild';
import { gzipSync } from 'node:zlib';
import { entries } from '../esbuild.config.mjs';

const ext = entries.find((e) => e.name === 'extension');
async function size(alias) {
  const r = await esbuild.build({
    entryPoints: [ext.in], bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['vscode'],
    minify: true, write: false, logLevel: 'error', alias,
  });
  const bytes = r.outputFiles[0].contents;
  return { raw: bytes.length, gzip: gzipSync(bytes).length };
}
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const ours = await size(undefined);
const classic = await size({ 'zod/mini': 'zod' });
console.log('| bundle | minified | gzip |');
console.log('|---|---|---|');
console.log(`| dist/extension.js (zod/mini, shipped) | ${kib(ours.raw)} | ${kib(ours.gzip)} |`);
console.log(`| baseline: same code with classic zod | ${kib(classic.raw)} | ${kib(classic.gzip)} |`);
