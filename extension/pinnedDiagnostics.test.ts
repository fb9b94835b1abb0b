import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LITERAL_SECRET_MESSAGE, pinnedDiagnostics, positionAt } from './pinnedDiagnostics';

/** The [start, end) range of the n-th (0-based) occurrence of `needle` in `text`. */
function at(text: string, needle: string, n = 0): { start: number; end: number } {
  let i = -1;
  for (let k = 0; k <= n; k++) {
    i = text.indexOf(needle, i + 1);
    assert.ok(i >= 0, `${needle} #${n} in the sample`);
  }
  return { start: i, end: i + needle.length };
}

const validSample = `{
  // Pinned for the team; values of secrets live in SecretStorage.
  "$schema": "../dist/sandbox-agents.schema.json",
  "agents": [
    { "name": "shell", "harness": "shell" },
    {
      "name": "reviewer",
      "harness": "claude-code",
      "backend": "staging",
      "env": { "LOG_LEVEL": "debug", "GH_TOKEN": { "secret": "GITHUB_TOKEN" }, "EMPTY_KEY": "" },
      "secrets": { "GITHUB_TOKEN": ["api.github.com"] },
      "mcp_servers": ["github"],
    },
    { "name": "on-platform", "harness": "codex", "backend": "platform" },
    { "name": "local", "harness": "opencode", "backend": "local" }
  ]
}`;

test('a valid file with comments and a trailing comma has no diagnostics', () => {
  assert.deepEqual(pinnedDiagnostics(validSample, ['staging']), []);
});

test('a backend naming no configured platform: error on exactly the value, listing the choices', () => {
  const d = pinnedDiagnostics(validSample, []);
  assert.equal(d.length, 1);
  assert.deepEqual({ start: d[0].start, end: d[0].end }, at(validSample, '"staging"'));
  assert.equal(d[0].severity, 'error');
  assert.match(d[0].message, /Unknown platform "staging".*"local", "platform".*sandboxAgents\.platforms/);
});

test('duplicate names: each later use is an error on its value, pointing at the first', () => {
  const text = `{"agents": [
  {"name": "a", "harness": "shell"},
  {"name": "b", "harness": "shell"},
  {"name": "a", "harness": "codex"},
  {"name": "a", "harness": "opencode"}
]}`;
  const d = pinnedDiagnostics(text, []);
  assert.equal(d.length, 2);
  assert.deepEqual({ start: d[0].start, end: d[0].end }, at(text, '"a"', 1));
  assert.deepEqual({ start: d[1].start, end: d[1].end }, at(text, '"a"', 2));
  for (const x of d) {
    assert.match(x.message, /Duplicate agent name "a"/);
    assert.deepEqual({ start: x.related!.start, end: x.related!.end }, at(text, '"a"', 0));
  }
});

test('literal secret values under *KEY*, *TOKEN*, *SECRET*, *PASSWORD* keys: error on the value, case-insensitive, anywhere in an agent', () => {
  const text = `{
  "agents": [{
    "name": "x", "harness": "shell",
    "env": {
      "OPENAI_API_KEY": "sk-live-123",
      "gh_token": "ghp_abc",
      "DB_PASSWORD": 12345,
      "CLIENT_SECRET": "s3cr3t",
      "SAFE": "plain value",
      "MY_TOKEN": { "secret": "MY_TOKEN" }
    },
    "secrets": { "MY_TOKEN": ["example.com"] },
    "extra": { "nested": { "accessToken": "abc" } }
  }]
}`;
  const d = pinnedDiagnostics(text, []);
  const ranges = d.map((x) => ({ start: x.start, end: x.end }));
  assert.deepEqual(ranges, [
    at(text, '"sk-live-123"'),
    at(text, '"ghp_abc"'),
    at(text, '12345'),
    at(text, '"s3cr3t"'),
    at(text, '"abc"'),
  ]);
  for (const x of d) assert.equal(x.message, LITERAL_SECRET_MESSAGE);
  assert.equal(LITERAL_SECRET_MESSAGE, 'use {"secret": "NAME"}; values live in SecretStorage');
});

test('a secret reference to a name the agent does not declare: error on the name', () => {
  const text = `{"agents": [
  {"name": "a", "harness": "shell", "env": {"T": {"secret": "GITHUB_TOKEN"}}, "secrets": {"OTHER": ["x.com"]}},
  {"name": "b", "harness": "shell", "env": {"T": {"secret": "OTHER"}}}
]}`;
  const d = pinnedDiagnostics(text, []);
  assert.deepEqual(
    d.map((x) => ({ start: x.start, end: x.end })),
    [at(text, '"GITHUB_TOKEN"'), at(text, '"OTHER"', 1)],
  );
  assert.match(d[0].message, /Secret "GITHUB_TOKEN" is not declared.*"secrets"/);
});

test('broken or unexpected text: no crash, no diagnostics beyond what can be located', () => {
  assert.deepEqual(pinnedDiagnostics('', []), []);
  assert.deepEqual(pinnedDiagnostics('{"agents": 3}', []), []);
  assert.deepEqual(pinnedDiagnostics('[1, 2]', []), []);
  // Half-typed: the complete parts are still checked.
  const text = '{"agents": [{"name": "a", "backend": "nowhere"}, {"name": ';
  const d = pinnedDiagnostics(text, []);
  assert.deepEqual(d.map((x) => ({ start: x.start, end: x.end })), [at(text, '"nowhere"')]);
});

test('positionAt maps offsets to zero-based line and character', () => {
  const text = 'ab\ncd\n\nef';
  assert.deepEqual(positionAt(text, 0), { line: 0, character: 0 });
  assert.deepEqual(positionAt(text, 4), { line: 1, character: 1 });
  assert.deepEqual(positionAt(text, 7), { line: 3, character: 0 });
  const r = at(validSample, '"staging"');
  assert.deepEqual(positionAt(validSample, r.start), { line: 8, character: 17 });
});
