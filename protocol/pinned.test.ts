import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PINNED_FILE, PINNED_SCHEMA_OUT, PinnedFile, pinnedJsonSchema } from './pinned';

const valid = {
  $schema: '../dist/sandbox-agents.schema.json',
  agents: [
    { name: 'shell', harness: 'shell' },
    {
      name: 'reviewer',
      harness: 'claude-code',
      backend: 'staging',
      model: 'claude-sonnet-4-5',
      prompt: { file: '.vscode/prompts/review.md' },
      repo_url: 'https://github.com/acme/app',
      branch: 'main',
      workspace: 'worktree',
      resources: { cpus: 2, memory_mb: 4096 },
      allow_out: ['api.github.com'],
      deny_out: ['example.com'],
      env: { LOG_LEVEL: 'debug', GH_TOKEN: { secret: 'GITHUB_TOKEN' } },
      secrets: { GITHUB_TOKEN: ['api.github.com', 'github.com'] },
      mcp_servers: ['github'],
    },
  ],
};

test('a full valid file parses, keeping every field', () => {
  const r = PinnedFile.safeParse(valid);
  assert.ok(r.success, r.success ? '' : JSON.stringify(r.error.issues));
  assert.deepEqual(r.data, valid);
});

const invalid: [string, unknown, (string | number)[]][] = [
  ['agents missing', {}, ['agents']],
  ['unknown harness', { agents: [{ name: 'a', harness: 'vim' }] }, ['agents', 0, 'harness']],
  ['empty name', { agents: [{ name: '', harness: 'shell' }] }, ['agents', 0, 'name']],
  ['unknown field (typo)', { agents: [{ name: 'a', harness: 'shell', modle: 'x' }] }, ['agents', 0]],
  ['bad workspace mode', { agents: [{ name: 'a', harness: 'shell', workspace: 'copy' }] }, ['agents', 0, 'workspace']],
  ['bad env name', { agents: [{ name: 'a', harness: 'shell', env: { 'A-B': 'x' } }] }, ['agents', 0, 'env', 'A-B']],
  ['secret ref with extra key', { agents: [{ name: 'a', harness: 'shell', env: { T: { secret: 'T', value: 'x' } } }] }, ['agents', 0, 'env', 'T']],
  ['secret hosts not a list', { agents: [{ name: 'a', harness: 'shell', secrets: { T: 'api.example.com' } }] }, ['agents', 0, 'secrets', 'T']],
  ['negative cpus', { agents: [{ name: 'a', harness: 'shell', resources: { cpus: -1 } }] }, ['agents', 0, 'resources', 'cpus']],
  ['prompt file empty', { agents: [{ name: 'a', harness: 'shell', prompt: { file: '' } }] }, ['agents', 0, 'prompt']],
];

for (const [label, sample, path] of invalid) {
  test(`invalid: ${label} is rejected at ${path.join('.')}`, () => {
    const r = PinnedFile.safeParse(sample);
    assert.equal(r.success, false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    assert.ok(
      paths.some((p) => p === path.join('.') || p.startsWith(`${path.join('.')}.`)),
      `issues at ${JSON.stringify(paths)}`,
    );
  });
}

test('the JSON Schema says what the zod schema says: closed objects, enums, secret references, descriptions', () => {
  const s = pinnedJsonSchema() as any;
  assert.equal(s.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.deepEqual(s.required, ['agents']);
  const agent = s.properties.agents.items;
  assert.equal(agent.additionalProperties, false);
  assert.deepEqual(agent.required, ['name', 'harness']);
  assert.ok(agent.properties.harness.enum.includes('shell') && agent.properties.harness.enum.includes('claude-code'));
  assert.deepEqual(agent.properties.workspace.enum, ['mount', 'worktree', 'clone', 'none']);
  const envValue = agent.properties.env.additionalProperties;
  assert.equal(envValue.anyOf.length, 2);
  assert.deepEqual(envValue.anyOf[1].required, ['secret']);
  assert.equal(agent.properties.secrets.additionalProperties.type, 'array');
  assert.match(agent.properties.backend.description, /sandboxAgents\.platforms/);
});

test('package.json contributes the generated schema for the pinned file, and the build step writes it there', async () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
  const entry = pkg.contributes.jsonValidation.find((v: { fileMatch: string }) => v.fileMatch === `/${PINNED_FILE}`);
  assert.ok(entry, 'a jsonValidation entry for the pinned file');
  assert.equal(entry.url, `./${PINNED_SCHEMA_OUT}`);
  // The build step (scripts/pinnedSchema.mjs, run by esbuild.config.mjs) writes the same schema, relative
  // to the working directory: run it in a scratch directory holding only a link to protocol/.
  const dir = mkdtempSync(join(tmpdir(), 'pinned-schema-'));
  const cwd = process.cwd();
  try {
    const { symlinkSync } = await import('node:fs');
    symlinkSync(join(cwd, 'protocol'), join(dir, 'protocol'));
    symlinkSync(join(cwd, 'node_modules'), join(dir, 'node_modules'));
    process.chdir(dir);
    const { writePinnedSchema } = await import(join(cwd, 'scripts/pinnedSchema.mjs'));
    const out = await writePinnedSchema();
    assert.equal(out, PINNED_SCHEMA_OUT);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, out), 'utf8')), pinnedJsonSchema());
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});
