import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import type Docker from 'dockerode';
import * as tar from 'tar-stream';
import {
  AbortError,
  BoundedLog,
  contextFiles,
  contextHash,
  ERROR_TAIL_LINES,
  harnessRootFiles,
  ImageBuildError,
  ImageBuilder,
  JsonMessageSplitter,
  LineSplitter,
  packContext,
  plainLine,
  readBuildMessage,
  readVersions,
  type BuildProgress,
  type ContextFile,
} from './images';

const REPO = join(__dirname, '..');
const HARNESS_ROOT = join(REPO, 'harness-containers');
const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sa-images-'));
  temps.push(d);
  return d;
}

const file = (path: string, content: string, mode = 0o644): ContextFile => ({ path, mode, content: Buffer.from(content) });

test('a context is every file but docs, our TypeScript and dot files; only the executable bit of a mode counts', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'Dockerfile'), 'FROM x\n');
  writeFileSync(join(dir, 'README.md'), 'what it runs\n');
  writeFileSync(join(dir, 'server.ts'), 'our code, mounted at run time\n');
  writeFileSync(join(dir, '.DS_Store'), '');
  mkdirSync(join(dir, 'node_modules/x'), { recursive: true });
  writeFileSync(join(dir, 'node_modules/x/index.js'), '');
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/setup.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'etc/setup.sh'), 0o775);
  writeFileSync(join(dir, 'etc/a.conf'), 'x=1\n');
  chmodSync(join(dir, 'etc/a.conf'), 0o664);

  const files = contextFiles(dir);
  assert.deepEqual(
    files.map((f) => [f.path, f.mode.toString(8)]),
    [
      ['Dockerfile', '644'],
      ['etc/a.conf', '644'],
      ['etc/setup.sh', '755'],
    ],
  );
  assert.equal(files[2].content.toString(), '#!/bin/sh\n');
});

test('the hash changes with any path, mode, content or build arg, and not with the order files come in', () => {
  const files = [file('Dockerfile', 'FROM ${BASE}\n'), file('a.sh', 'echo a\n', 0o755)];
  const args = { BASE: 'node:20', V: '1' };
  const h = contextHash(files, args);
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.equal(contextHash([...files].reverse(), { V: '1', BASE: 'node:20' }), h);
  const variants = [
    contextHash([files[0], file('b.sh', 'echo a\n', 0o755)], args),
    contextHash([files[0], file('a.sh', 'echo a\n', 0o644)], args),
    contextHash([files[0], file('a.sh', 'echo b\n', 0o755)], args),
    contextHash(files, { ...args, V: '2' }),
    contextHash(files, { BASE: 'node:20' }),
    contextHash([files[0]], args),
    // Content moving between path and body must not collide.
    contextHash([file('Dockerfile', 'FROM ${BASE}\n'), file('a.sh', 'echo a\n\n', 0o755)], args),
  ];
  assert.equal(new Set([h, ...variants]).size, variants.length + 1);
});

test('the context tar holds exactly the files, with their modes, and is the same bytes every time', async () => {
  const files = [file('Dockerfile', 'FROM x\nRUN ./etc/setup.sh\n'), file('etc/setup.sh', '#!/bin/sh\necho é\n', 0o755)];
  const a = await packContext(files);
  const b = await packContext(files);
  assert.ok(a.equals(b));
  const extract = tar.extract();
  const seen: { name: string; mode?: number; content: string }[] = [];
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      seen.push({ name: header.name, mode: header.mode, content: Buffer.concat(chunks).toString() });
      next();
    });
  });
  const finished = new Promise((r) => extract.on('finish', r));
  extract.end(a);
  await finished;
  assert.deepEqual(seen, [
    { name: 'Dockerfile', mode: 0o644, content: 'FROM x\nRUN ./etc/setup.sh\n' },
    { name: 'etc/setup.sh', mode: 0o755, content: '#!/bin/sh\necho é\n' },
  ]);
});

const DAEMON_STREAM =
  '{"stream":"Step 1/3 : FROM sandbox-agents/base:0123456789ab"}\r\n' +
  '{"stream":"\\n"}\r\n' +
  '{"stream":" ---\\u003e 5d0da3dc9764\\n"}\r\n' +
  '{"status":"Downloading","progressDetail":{"current":1024,"total":4096},"progress":"[==>   ]","id":"abc"}\r\n' +
  '{"stream":"Step 2/3 : RUN echo \\"{ not json }\\" \\u0026\\u0026 echo ünïcødé 😀"}{"stream":"\\n"}' +
  '{"stream":" ---\\u003e Running in 8a1b\\n"}\n' +
  '{"errorDetail":{"code":3,"message":"The command \'/bin/sh -c exit 3\' returned a non-zero code: 3"},"error":"The command \'/bin/sh -c exit 3\' returned a non-zero code: 3"}\r\n' +
  '{"aux":{"ID":"sha256:feed"}}\r\n';

test('the daemon\'s JSON stream splits into the same messages wherever the bytes are cut', () => {
  const bytes = Buffer.from(DAEMON_STREAM);
  const whole = new JsonMessageSplitter();
  const expected = [...whole.push(bytes), ...whole.end()];
  assert.equal(expected.length, 9);
  assert.deepEqual(expected[4], { stream: 'Step 2/3 : RUN echo "{ not json }" && echo ünïcødé 😀' });
  for (let cut = 1; cut < bytes.length; cut += 7) {
    const s = new JsonMessageSplitter();
    const got = [...s.push(bytes.subarray(0, cut)), ...s.push(bytes.subarray(cut)), ...s.end()];
    assert.deepEqual(got, expected, `cut at ${cut}`);
  }
  const byteByByte = new JsonMessageSplitter();
  const got: unknown[] = [];
  for (const b of bytes) got.push(...byteByByte.push(Buffer.from([b])));
  got.push(...byteByByte.end());
  assert.deepEqual(got, expected);
});

test('text that is not JSON is kept as output, line by line', () => {
  const s = new JsonMessageSplitter();
  assert.deepEqual(s.push('plain text\n{"stream":"a\\n"}tail'), [{ stream: 'plain text\n' }, { stream: 'a\n' }]);
  assert.deepEqual(s.end(), [{ stream: 'tail' }]);
});

test('messages become log lines, steps, errors and the image id', () => {
  const s = new JsonMessageSplitter();
  const msgs = [...s.push(DAEMON_STREAM), ...s.end()].map(readBuildMessage);
  assert.equal(msgs[0].text, 'Step 1/3 : FROM sandbox-agents/base:0123456789ab');
  assert.deepEqual(msgs[3].status, { line: 'abc: Downloading [==>   ]', transient: true });
  assert.equal(msgs[7].error, "The command '/bin/sh -c exit 3' returned a non-zero code: 3");
  assert.equal(msgs[8].imageId, 'sha256:feed');
  assert.deepEqual(readBuildMessage({ errorDetail: { message: 'only the detail' } }).error, 'only the detail');
  assert.deepEqual(readBuildMessage({ status: 'Pulling from library/node', id: '20-bookworm-slim' }).status, {
    line: '20-bookworm-slim: Pulling from library/node',
    transient: false,
  });
});

test('output cut anywhere becomes whole lines (LF, CRLF, lone CR), without empty ones', () => {
  const text = 'one\r\ntwo\rthree\n\n  \nfour';
  for (let cut = 0; cut <= text.length; cut++) {
    const l = new LineSplitter();
    const got = [...l.push(text.slice(0, cut)), ...l.push(text.slice(cut)), ...l.end()];
    assert.deepEqual(got, ['one', 'two', 'three', 'four'], `cut at ${cut}`);
  }
});

test('terminal colours and titles are taken out of output lines', () => {
  assert.equal(plainLine('\x1b[91mnpm error code E404\x1b[0m  '), 'npm error code E404');
  assert.equal(plainLine('\x1b]0;title\x07\x1b[1;32mok\x1b[m'), 'ok');
  assert.equal(plainLine('plain ünïcødé'), 'plain ünïcødé');
});

test('a build log keeps its newest lines within its limit and says how many it dropped', () => {
  const log = new BoundedLog(100);
  for (let i = 0; i < 50; i++) log.add(`line ${String(i).padStart(2, '0')}`);
  const text = log.text();
  assert.ok(Buffer.byteLength(text) < 140, text);
  assert.match(text, /^\[\d+ earlier lines dropped\]\n/);
  assert.ok(text.endsWith('line 49\n'));
  assert.deepEqual(log.tail(2), ['line 48', 'line 49']);
});

test('versions.json pins each harness CLI once, the same as package.json, and every image folder is complete', () => {
  const versions = readVersions(HARNESS_ROOT);
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  assert.equal(versions['claude-code'].CLAUDE_CODE_VERSION, pkg.devDependencies['@anthropic-ai/claude-code']);
  assert.equal(versions['claude-agent-sdk'].CLAUDE_AGENT_SDK_VERSION, pkg.devDependencies['@anthropic-ai/claude-agent-sdk']);
  for (const v of Object.values(versions).flatMap((a) => Object.values(a))) assert.match(v, /^\d+\.\d+\.\d+$/, 'exact versions only');

  const builder = new ImageBuilder({ docker: new FakeDocker().asDocker(), harnessRoot: HARNESS_ROOT });
  assert.deepEqual(builder.names(), ['base', 'claude-agent-sdk', 'claude-code', 'codex', 'opencode', 'shell']);
  for (const name of builder.names()) {
    const dockerfile = readFileSync(join(HARNESS_ROOT, name, 'Dockerfile'), 'utf8');
    for (const arg of Object.keys(versions[name] ?? {})) assert.match(dockerfile, new RegExp(`^ARG ${arg}$`, 'm'), `${name} declares ${arg}`);
    if (name !== 'base') assert.match(dockerfile, /^ARG BASE_IMAGE\nFROM \$\{BASE_IMAGE\}$/m, `${name} is built on the base`);
    const readme = readFileSync(join(HARNESS_ROOT, name, 'README.md'), 'utf8').trim();
    assert.equal(readme.split('\n').length, 1, `${name}/README.md is one line`);
  }
  assert.match(readFileSync(join(HARNESS_ROOT, 'base', 'Dockerfile'), 'utf8'), /^ARG BASE=node:20-bookworm-slim\nFROM \$\{BASE\}$/m);

  // What the .vsix carries: every context, the READMEs and the pins; never our TypeScript.
  const shipped = harnessRootFiles(HARNESS_ROOT);
  for (const name of builder.names()) assert.ok(shipped.includes(`${name}/Dockerfile`) && shipped.includes(`${name}/README.md`), name);
  assert.ok(shipped.includes('versions.json') && shipped.includes('README.md'));
  assert.deepEqual(shipped.filter((f) => f.endsWith('.ts') || f.startsWith('init/')), []);
});

// ---------------------------------------------------------------------------------------------------
// The builder against a fake daemon (the real one: test/docker/images.test.ts)

interface FakeBuild {
  tag: string;
  args: Record<string, string>;
  labels: Record<string, string>;
  signal?: AbortSignal;
  stream: PassThrough;
  /** Sends the messages, then (unless it failed) makes the image exist and ends the stream. */
  finish(messages?: object[], ok?: boolean): void;
}

class FakeDocker {
  readonly images = new Set<string>();
  readonly builds: FakeBuild[] = [];
  private waiting: ((b: FakeBuild) => void)[] = [];

  asDocker(): Docker {
    return this as unknown as Docker;
  }

  getImage(ref: string) {
    return {
      inspect: async () => {
        if (!this.images.has(ref)) throw Object.assign(new Error(`No such image: ${ref}`), { statusCode: 404 });
        return { Id: `sha256:${ref}` };
      },
    };
  }

  async buildImage(_context: unknown, opts: { t: string; buildargs: Record<string, string>; labels: Record<string, string>; abortSignal?: AbortSignal }) {
    const stream = new PassThrough();
    opts.abortSignal?.addEventListener('abort', () => stream.destroy(new Error('aborted')));
    const build: FakeBuild = {
      tag: opts.t,
      args: opts.buildargs,
      labels: opts.labels,
      signal: opts.abortSignal,
      stream,
      finish: (messages = [{ stream: 'Step 1/1 : FROM x\n' }, { stream: 'Successfully built 123\n' }], ok = true) => {
        for (const m of messages) stream.write(JSON.stringify(m) + '\r\n');
        if (ok) this.images.add(opts.t);
        stream.end();
      },
    };
    this.builds.push(build);
    const w = this.waiting.shift();
    w?.(build);
    return stream;
  }

  /** The next build started (or the one already started and not yet taken). */
  nextBuild(index: number): Promise<FakeBuild> {
    if (this.builds[index]) return Promise.resolve(this.builds[index]);
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

function fixtureRoot(): string {
  const root = tempDir();
  cpSync(HARNESS_ROOT, root, { recursive: true });
  return root;
}

test('an image that is present is not built; one that is missing is built on the base, with its pins and labels', async () => {
  const fake = new FakeDocker();
  const builder = new ImageBuilder({ docker: fake.asDocker(), harnessRoot: fixtureRoot(), baseImage: 'local/node-base', labels: { owner: 'test' } });
  const ref = builder.imageRef('codex');
  assert.match(ref, /^sandbox-agents\/codex:[0-9a-f]{12}$/);
  const baseRef = builder.imageRef('base');

  const events: BuildProgress[] = [];
  const ensuring = builder.ensure('codex', { onProgress: (p) => events.push(p) });
  (await fake.nextBuild(0)).finish([{ stream: 'Step 1/9 : ARG BASE=node:20-bookworm-slim\n' }, { stream: 'base done\n' }]);
  (await fake.nextBuild(1)).finish([{ stream: 'Step 1/5 : ARG BASE_IMAGE\n' }, { stream: 'Step 2/5 : RUN npm install -g @openai/codex@0.169.0\n' }, { stream: 'added 1 package\n' }]);
  assert.equal(await ensuring, ref);

  assert.deepEqual(
    fake.builds.map((b) => b.tag),
    [baseRef, ref],
  );
  assert.deepEqual(fake.builds[0].args, { BASE: 'local/node-base' });
  assert.deepEqual(fake.builds[1].args, { BASE_IMAGE: baseRef, CODEX_VERSION: readVersions(HARNESS_ROOT).codex.CODEX_VERSION });
  assert.equal(fake.builds[1].labels.owner, 'test');
  assert.equal(fake.builds[1].labels['sandbox-agents.image'], 'codex');

  const added = events.find((e) => e.line === 'added 1 package');
  assert.deepEqual(added, { harness: 'codex', image: ref, step: 'Step 2/5 : RUN npm install -g @openai/codex@0.169.0', line: 'added 1 package' });
  assert.equal(events.find((e) => e.line === 'base done')?.image, baseRef);
  assert.match(builder.log('codex'), /base done\n[^]*Step 2\/5 : RUN npm install[^]*added 1 package\n$/);

  // Present now: no build, no progress, the same ref.
  events.length = 0;
  assert.equal(await builder.ensure('codex', { onProgress: (p) => events.push(p) }), ref);
  assert.equal(fake.builds.length, 2);
  assert.deepEqual(events, []);
  // Another harness reuses the base.
  const shelling = builder.ensure('shell');
  (await fake.nextBuild(2)).finish();
  await shelling;
  assert.deepEqual(fake.builds.map((b) => b.tag.split(':')[0]), ['sandbox-agents/base', 'sandbox-agents/codex', 'sandbox-agents/shell']);
});

test('a different base image, pin or Dockerfile gives different tags; a README or our TypeScript does not', () => {
  const root = fixtureRoot();
  const fake = new FakeDocker().asDocker();
  const refs = (opts: { baseImage?: string } = {}) => {
    const b = new ImageBuilder({ docker: fake, harnessRoot: root, ...opts });
    return { base: b.imageRef('base'), opencode: b.imageRef('opencode'), shell: b.imageRef('shell') };
  };
  const before = refs();
  writeFileSync(join(root, 'opencode', 'README.md'), 'reworded\n');
  writeFileSync(join(root, 'opencode', 'server.ts'), 'export {};\n');
  assert.deepEqual(refs(), before);

  const other = refs({ baseImage: 'mirror.example/node:20-bookworm-slim' });
  assert.notEqual(other.base, before.base);
  assert.notEqual(other.opencode, before.opencode, 'a new base rebuilds the harnesses on it');

  const versions = JSON.parse(readFileSync(join(root, 'versions.json'), 'utf8'));
  versions.opencode.OPENCODE_VERSION = '0.0.1';
  writeFileSync(join(root, 'versions.json'), JSON.stringify(versions));
  const bumped = refs();
  assert.notEqual(bumped.opencode, before.opencode);
  assert.equal(bumped.shell, before.shell);

  writeFileSync(join(root, 'shell', 'Dockerfile'), readFileSync(join(root, 'shell', 'Dockerfile'), 'utf8') + '# changed\n');
  assert.notEqual(refs().shell, before.shell);
  assert.throws(() => new ImageBuilder({ docker: fake, harnessRoot: root }).imageRef('nope'), /no image "nope"/);
  assert.throws(() => new ImageBuilder({ docker: fake, harnessRoot: root }).imageRef('../etc'), /not an image name/);
});

test('concurrent ensures of one image share one build, and each gets its output', async () => {
  const fake = new FakeDocker();
  fake.images.add(new ImageBuilder({ docker: fake.asDocker(), harnessRoot: fixtureRoot() }).imageRef('base'));
  const builder = new ImageBuilder({ docker: fake.asDocker(), harnessRoot: fixtureRoot() });
  const a: BuildProgress[] = [];
  const b: BuildProgress[] = [];
  const first = builder.ensure('shell', { onProgress: (p) => a.push(p) });
  const build = await fake.nextBuild(0);
  build.stream.write(JSON.stringify({ stream: 'Step 1/4 : ARG BASE_IMAGE\n' }));
  await new Promise((r) => setImmediate(r));
  const second = builder.ensure('shell', { onProgress: (p) => b.push(p) });
  await new Promise((r) => setImmediate(r));
  build.finish([{ stream: 'Step 2/4 : RUN apt-get install tmux\n' }, { stream: 'Setting up tmux\n' }]);
  assert.equal(await first, await second);
  assert.equal(fake.builds.length, 1);
  assert.match(a[0].line, /^Building sandbox-agents\/shell:[0-9a-f]{12} from .*\(BASE_IMAGE=sandbox-agents\/base:[0-9a-f]{12}\)$/);
  assert.deepEqual(a.slice(1).map((e) => e.line), ['Step 1/4 : ARG BASE_IMAGE', 'Step 2/4 : RUN apt-get install tmux', 'Setting up tmux']);
  // The late joiner first hears where the build is, then the rest.
  assert.deepEqual(b[0], { harness: 'shell', image: build.tag, step: 'Step 1/4 : ARG BASE_IMAGE', line: 'Step 1/4 : ARG BASE_IMAGE' });
  assert.deepEqual(b.slice(1).map((e) => e.line), ['Step 2/4 : RUN apt-get install tmux', 'Setting up tmux']);
});

test('a failed build throws an ImageBuildError naming the image and ending with the last lines of its log', async () => {
  const fake = new FakeDocker();
  const builder = new ImageBuilder({ docker: fake.asDocker(), harnessRoot: fixtureRoot() });
  const baseRef = builder.imageRef('base');
  const ensuring = builder.ensure('base');
  const lines = Array.from({ length: 40 }, (_, i) => ({ stream: `output line ${i}\n` }));
  const error = "The command '/bin/sh -c apt-get update' returned a non-zero code: 100";
  (await fake.nextBuild(0)).finish([{ stream: 'Step 3/9 : RUN apt-get update\n' }, ...lines, { errorDetail: { code: 100, message: error }, error }], false);
  const err = await ensuring.then(
    () => assert.fail('should fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ImageBuildError);
  assert.equal(err.image, baseRef);
  assert.ok(err.message.startsWith(`Building the base image ${baseRef} failed: ${error}\n`), err.message);
  const tail = err.message.split('\n').slice(-ERROR_TAIL_LINES);
  assert.equal(tail.at(-1), `error: ${error}`);
  assert.equal(tail.at(-2), 'output line 39');
  assert.equal(tail.length, ERROR_TAIL_LINES);
  assert.match(builder.log('base'), /output line 0\n[^]*output line 39\nerror: /);
});

test('a build Docker refuses outright (a bad Dockerfile) is an ImageBuildError too', async () => {
  const fake = new FakeDocker();
  fake.buildImage = async () => {
    throw Object.assign(new Error('(HTTP code 400) unexpected - dockerfile parse error line 3: unknown instruction: RUNN '), { statusCode: 400 });
  };
  const builder = new ImageBuilder({ docker: fake.asDocker(), harnessRoot: fixtureRoot() });
  await assert.rejects(builder.ensure('base'), (e: unknown) => e instanceof ImageBuildError && /base image .* failed: .*unknown instruction: RUNN/.test(e.message));
});

test('cancelling aborts the build request; one of two waiters cancelling leaves the build running', async () => {
  const fake = new FakeDocker();
  const builder = new ImageBuilder({ docker: fake.asDocker(), harnessRoot: fixtureRoot() });
  const one = new AbortController();
  const two = new AbortController();
  const first = builder.ensure('base', { signal: one.signal });
  const build = await fake.nextBuild(0);
  const second = builder.ensure('base', { signal: two.signal });
  await new Promise((r) => setImmediate(r));
  one.abort();
  await assert.rejects(first, AbortError);
  assert.equal(build.signal?.aborted, false, 'still wanted by the second');
  two.abort();
  await assert.rejects(second, (e: unknown) => e instanceof AbortError && e.name === 'AbortError');
  assert.equal(build.signal?.aborted, true, 'nobody waits: the request is aborted');

  // A new ensure starts afresh, and an already aborted signal builds nothing.
  await assert.rejects(builder.ensure('base', { signal: AbortSignal.abort() }), AbortError);
  assert.equal(fake.builds.length, 1);
  const again = builder.ensure('base');
  (await fake.nextBuild(1)).finish();
  assert.equal(await again, builder.imageRef('base'));
});

test('the default harness root is harness-containers next to the bundle', () => {
  const b = new ImageBuilder({ docker: new FakeDocker().asDocker() });
  assert.equal(b.harnessRoot, HARNESS_ROOT);
  assert.ok(readdirSync(b.harnessRoot).includes('versions.json'));
  assert.equal(b.baseImage, 'node:20-bookworm-slim');
});
