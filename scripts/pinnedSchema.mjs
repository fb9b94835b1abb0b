// Generates the JSON Schema for `.vscode/sandbox-agents.json` from the zod schema in protocol/pinned.ts
// (`z.toJSONSchema`), into dist/ beside the bundles: `contributes.jsonValidation` points there. Generated
// at build time rather than committed, so it cannot go stale; the unit test protocol/pinned.test.ts checks
// that package.json points at the path this writes.
import * as esbuild from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Bundles protocol/pinned.ts in memory, loads it, writes the schema; returns the output path. */
export async function writePinnedSchema() {
  const r = await esbuild.build({
    entryPoints: ['protocol/pinned.ts'],
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
  const code = r.outputFiles[0].text;
  const mod = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
  const out = mod.PINNED_SCHEMA_OUT;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(mod.pinnedJsonSchema(), null, 2)}\n`);
  return out;
}
