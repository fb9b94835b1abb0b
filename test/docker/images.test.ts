// The sandbox images, built by the bridge's ImageBuilder in the test Docker engine from
// harness-containers/ with `BASE` = a local stand-in for node:20-bookworm-slim (no registry is
// reachable here), and each started the way sessions start (no network, uid 1001, no capabilities).
// The first run builds everything (~1 GB from npm: minutes); later runs load the images saved under
// ~/.cache/sandbox-agents/images (see harnessImages.ts).
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Docker from 'dockerode';
import { AbortError, ImageBuildError, type BuildProgress } from '../../bridge/images';
import { dockerOptions } from '../../bridge/runtimes/docker';
import { log, sharedTestDockerd, skipUnlessDocker } from './dockerd';
import { ensureHarnessImages, testImageBuilder, type HarnessImages } from './harnessImages';

const HARNESS_ROOT = join(__dirname, '..', '..', 'harness-containers');
const BUILD_TIMEOUT = 40 * 60_000;

let daemon: { host: string; release(): Promise<void> } | undefined;
let images: Promise<HarnessImages> | undefined;
const temps: string[] = [];
after(async () => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
  await daemon?.release();
});

async function setup(t: { skip(message?: string): void }): Promise<{ host: string; docker: Docker; images: HarnessImages } | undefined> {
  if (skipUnlessDocker(t)) return undefined;
  daemon ??= await sharedTestDockerd();
  images ??= ensureHarnessImages(daemon.host);
  return { host: daemon.host, docker: new Docker(dockerOptions(daemon.host)), images: await images };
}

/** A temp folder the sandbox user (uid 1001) can read when it is mounted. */
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(d, 0o755);
  temps.push(d);
  return d;
}

/** A copy of harness-containers/ to change. */
function harnessCopy(): string {
  const root = tempDir('sa-harness-');
  cpSync(HARNESS_ROOT, root, { recursive: true });
  return root;
}

interface RunResult {
  code: number;
  output: string;
}

/** Runs `cmd` in `image` as sessions run: no network, the image's user (sandbox), no capabilities. */
async function runIn(docker: Docker, image: string, cmd: string[], opts: { binds?: string[]; env?: string[]; user?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: cmd,
    Tty: true,
    User: opts.user,
    Env: opts.env,
    Labels: { 'sandbox-agents.test': '1' },
    HostConfig: { NetworkMode: 'none', CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], Binds: opts.binds },
  });
  try {
    await container.start();
    const timeout = opts.timeoutMs ?? 60_000;
    const waited = (await Promise.race([
      container.wait(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${cmd.join(' ')} in ${image} did not end in ${timeout} ms`)), timeout).unref()),
    ])) as { StatusCode: number };
    const logs = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    return { code: waited.StatusCode, output: logs.toString('utf8').replace(/\r/g, '') };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

async function sh(docker: Docker, image: string, script: string, opts: Parameters<typeof runIn>[3] = {}): Promise<string> {
  const r = await runIn(docker, image, ['bash', '-c', script], opts);
  assert.equal(r.code, 0, `in ${image}: ${script}\n${r.output}`);
  return r.output;
}

async function imageId(docker: Docker, ref: string): Promise<string | undefined> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch {
    return undefined;
  }
}

test('every image builds from harness-containers/ on the local base', { timeout: BUILD_TIMEOUT }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  t.diagnostic(`images ${s.images.how}: ${Object.values(s.images.refs).join(', ')}`);
  for (const [name, ref] of Object.entries(s.images.refs)) {
    assert.match(ref, new RegExp(`^sandbox-agents/${name}:[0-9a-f]{12}$`));
    const info: Docker.ImageInspectInfo = await s.docker.getImage(ref).inspect();
    assert.equal(info.Config.Labels?.['sandbox-agents.image'], name);
    assert.equal(info.Config.User, 'sandbox', `${name} runs as sandbox by default`);
    assert.equal(info.Config.WorkingDir, '/work/repo');
  }
});

test('the base image: user sandbox (1001) beside node (1000), tools, UTF-8, tini, an empty /opt/sandbox-agents', { timeout: BUILD_TIMEOUT }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const out = await sh(
    s.docker,
    s.images.refs.base,
    [
      'echo "user=$(id -un):$(id -u):$(id -gn):$(id -g) home=$HOME pwd=$(pwd) repo-owner=$(stat -c %U /work/repo)"',
      'echo "node-user=$(getent passwd node | cut -d: -f3)"',
      'echo "opt=$(ls -A /opt/sandbox-agents | wc -l) tini=$(command -v tini)"',
      'echo "lang=$LANG utf8=$(printf é | wc -m)"',
      'rg --version | head -1; git --version; less --version | head -1; ps -p 1 -o comm=; curl --version | head -1; node --version; npm --version',
      'cd /tmp && git init -q x && echo "git-ok"',
    ].join('; '),
  );
  // The bridge may run a session as the host user's uid: home and work tree are still writable, and
  // git accepts a work tree another uid owns.
  const other = await sh(
    s.docker,
    s.images.refs.base,
    'touch /home/sandbox/x /work/repo/y && cd /work/repo && git init -q && git status --short && echo "uid-$(id -u)-ok"',
    { user: '4242:4242', env: ['HOME=/home/sandbox'] },
  );
  assert.match(other, /^uid-4242-ok$/m);
  assert.match(out, /^user=sandbox:1001:sandbox:1001 home=\/home\/sandbox pwd=\/work\/repo repo-owner=sandbox$/m);
  assert.match(out, /^node-user=1000$/m, 'the base image\'s own user stays');
  assert.match(out, /^opt=0 tini=\/usr\/bin\/tini$/m);
  assert.match(out, /^lang=en_US\.UTF-8 utf8=1$/m, 'a UTF-8 locale that works');
  assert.match(out, /^ripgrep \d+/m);
  assert.match(out, /^git version \d/m);
  assert.match(out, /^git-ok$/m);

  // How the bridge starts every session: tini as PID 1, running our init mounted read-only.
  const programs = tempDir('sa-programs-');
  writeFileSync(join(programs, 'init.js'), 'console.log(`init pid=${process.pid} uid=${process.getuid()} cwd=${process.cwd()}`);\n');
  const r = await runIn(s.docker, s.images.refs.base, ['/usr/bin/tini', '-s', '--', 'node', '/opt/sandbox-agents/init.js'], {
    binds: [`${programs}:/opt/sandbox-agents:ro`],
  });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /^init pid=\d+ uid=1001 cwd=\/work\/repo$/m);
});

test('each harness image starts without network and its CLI answers', { timeout: BUILD_TIMEOUT }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { refs } = s.images;
  const versions = JSON.parse(readFileSync(join(HARNESS_ROOT, 'versions.json'), 'utf8')) as Record<string, Record<string, string>>;
  const checks: [string, string, RegExp][] = [
    ['shell', 'bash -lc "echo shell answers; tmux -V; vi --version | head -1"', /^shell answers\ntmux \d[^\n]*\nVIM - Vi IMproved/m],
    ['claude-code', 'claude --version', new RegExp(`^${versions['claude-code'].CLAUDE_CODE_VERSION.replace(/\./g, '\\.')} \\(Claude Code\\)$`, 'm')],
    ['codex', 'codex --version', new RegExp(`^codex-cli ${versions.codex.CODEX_VERSION.replace(/\./g, '\\.')}$`, 'm')],
    ['opencode', 'opencode --version', new RegExp(`^${versions.opencode.OPENCODE_VERSION.replace(/\./g, '\\.')}$`, 'm')],
    [
      'claude-agent-sdk',
      [
        'cd /opt/claude-agent-sdk',
        'node --input-type=module -e "const sdk = await import(\'@anthropic-ai/claude-agent-sdk\'); console.log(\'query is a\', typeof sdk.query)"',
        'node -p "\'sdk \' + JSON.parse(require(\'fs\').readFileSync(\'node_modules/@anthropic-ai/claude-agent-sdk/package.json\', \'utf8\')).version"',
        'node_modules/@anthropic-ai/claude-agent-sdk-linux-*/claude --version',
      ].join(' && '),
      new RegExp(`^query is a function\\nsdk ${versions['claude-agent-sdk'].CLAUDE_AGENT_SDK_VERSION.replace(/\./g, '\\.')}\\n\\d+\\.\\d+\\.\\d+ \\(Claude Code\\)$`, 'm'),
    ],
  ];
  for (const [name, script, expected] of checks) {
    await t.test(name, async () => {
      const started = Date.now();
      const out = await sh(s.docker, refs[name as keyof typeof refs], script);
      t.diagnostic(`${name}: ${out.trim().split('\n').join(' | ')} (${Date.now() - started} ms)`);
      assert.match(out, expected);
    });
  }
});

interface ProbeResult {
  proxied: string[];
  requests: string[];
  replies: Record<string, string>;
  providers: string[];
  configDir: string[];
  cacheDir: string[];
  cacheBin: string[];
  error?: string;
  output?: string;
}

async function opencodeProbe(docker: Docker, image: string, opts: { env?: string[]; user?: string } = {}): Promise<ProbeResult> {
  const probeDir = tempDir('sa-probe-');
  cpSync(join(__dirname, 'opencodeOffline.probe.mjs'), join(probeDir, 'probe.mjs'));
  const r = await runIn(docker, image, ['node', '/probe/probe.mjs'], { binds: [`${probeDir}:/probe:ro`], env: opts.env, user: opts.user, timeoutMs: 180_000 });
  const line = r.output.split('\n').find((l) => l.startsWith('PROBE-RESULT '));
  assert.ok(line, `the probe printed no result (exit ${r.code}):\n${r.output.slice(-3000)}`);
  return JSON.parse(line.slice('PROBE-RESULT '.length)) as ProbeResult;
}

test('opencode works with no network: its provider packages are there and it installs nothing', { timeout: BUILD_TIMEOUT }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const image = s.images.refs.opencode;
  const started = Date.now();
  const offline = await opencodeProbe(s.docker, image);
  t.diagnostic(`probe: ${JSON.stringify({ ...offline, output: undefined })} (${Date.now() - started} ms)`);
  assert.equal(offline.error, undefined, `${offline.error}\n${offline.output}`);
  assert.deepEqual(offline.providers.sort(), ['claude', 'gateway']);
  assert.equal(offline.replies.gateway, 'hello from the fake OpenAI-compatible server', '@ai-sdk/openai-compatible works');
  assert.equal(offline.replies.claude, 'hello from the fake Anthropic server', '@ai-sdk/anthropic works');
  assert.ok(offline.requests.some((r) => r.endsWith('/v1/chat/completions')) && offline.requests.some((r) => r.includes('/v1/messages')), offline.requests.join(', '));
  const installs = offline.proxied.filter((p) => /registry\.npmjs\.org|github\.com/.test(p));
  assert.deepEqual(installs, [], 'opencode tried to download packages (or ripgrep) at run time');
  assert.deepEqual(offline.cacheBin, [], 'nothing downloaded into ~/.cache/opencode/bin (ripgrep is on PATH)');
  assert.ok(offline.configDir.includes('node_modules') && offline.configDir.includes('package-lock.json'), offline.configDir.join(', '));

  // A session may run as the host user's uid instead of 1001, with HOME=/home/sandbox: the same.
  const otherUid = await opencodeProbe(s.docker, image, { user: '4242:4242', env: ['HOME=/home/sandbox'] });
  t.diagnostic(`as uid 4242: replies ${JSON.stringify(otherUid.replies)}, proxied ${otherUid.proxied.join(', ')}`);
  assert.equal(otherUid.error, undefined, `${otherUid.error}\n${otherUid.output}`);
  assert.equal(otherUid.replies.gateway, 'hello from the fake OpenAI-compatible server');
  assert.deepEqual(otherUid.proxied.filter((p) => /registry\.npmjs\.org|github\.com/.test(p)), []);

  // The control: the same run with a HOME that lacks the install made at build time does reach for
  // the npm registry, so the checks above can fail.
  const control = await opencodeProbe(s.docker, image, { env: ['HOME=/tmp/fresh-home'] });
  t.diagnostic(`control (fresh HOME) proxied: ${control.proxied.join(', ')}`);
  assert.equal(control.error, undefined, `${control.error}\n${control.output}`);
  assert.ok(
    control.proxied.some((p) => p.includes('registry.npmjs.org')),
    `without the pre-installed config folder opencode should try npm: ${control.proxied.join(', ')}`,
  );
});

test('the context hash prevents rebuilds: a second ensure builds nothing', { timeout: BUILD_TIMEOUT }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  // A new builder (nothing in memory) finds every image by its tag.
  const builder = await testImageBuilder(s.host);
  const before = await Promise.all(Object.values(s.images.refs).map((r) => imageId(s.docker, r)));
  const events: BuildProgress[] = [];
  for (const [name, ref] of Object.entries(s.images.refs)) {
    assert.equal(await builder.ensure(name, { onProgress: (p) => events.push(p) }), ref);
    assert.equal(builder.log(name), '', `${name}: no build, no log`);
  }
  assert.deepEqual(events, [], 'no build output at all');
  assert.deepEqual(await Promise.all(Object.values(s.images.refs).map((r) => imageId(s.docker, r))), before);
});

test('a changed context file changes the tag and rebuilds only that image', { timeout: BUILD_TIMEOUT }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const root = harnessCopy();
  writeFileSync(join(root, 'shell', 'README.md'), 'Reworded: docs are not part of the context.\n');
  let builder = await testImageBuilder(s.host, { harnessRoot: root });
  assert.equal(builder.imageRef('shell'), s.images.refs.shell, 'a README change keeps the tag');

  mkdirSync(join(root, 'shell', 'etc'));
  writeFileSync(join(root, 'shell', 'etc', 'motd'), 'changed context\n');
  writeFileSync(join(root, 'shell', 'Dockerfile'), `${readFileSync(join(root, 'shell', 'Dockerfile'), 'utf8')}COPY etc/motd /etc/motd\n`);
  builder = await testImageBuilder(s.host, { harnessRoot: root });
  const ref = builder.imageRef('shell');
  assert.notEqual(ref, s.images.refs.shell);
  assert.equal(builder.imageRef('base'), s.images.refs.base);
  assert.equal(builder.imageRef('codex'), s.images.refs.codex);

  const events: BuildProgress[] = [];
  assert.equal(await builder.ensure('shell', { onProgress: (p) => events.push(p) }), ref);
  assert.ok(events.length > 0);
  assert.deepEqual([...new Set(events.map((e) => e.image))], [ref], 'the base was not rebuilt');
  assert.ok(events.some((e) => e.step?.startsWith('Step ') && e.step.includes('COPY etc/motd /etc/motd')), 'steps are reported');
  assert.match(await sh(s.docker, ref, 'cat /etc/motd'), /^changed context$/m);
  await s.docker.getImage(ref).remove().catch(() => undefined);
});

test('a broken Dockerfile gives an ImageBuildError naming the image and carrying the end of the log', { timeout: BUILD_TIMEOUT }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const root = harnessCopy();
  mkdirSync(join(root, 'broken'));
  writeFileSync(join(root, 'broken', 'Dockerfile'), 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo "about to fail" && exit 7\n');
  const builder = await testImageBuilder(s.host, { harnessRoot: root });
  const ref = builder.imageRef('broken');
  const err = await builder.ensure('broken').then(
    () => assert.fail('the build should fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ImageBuildError, String(err));
  t.diagnostic(err.message);
  assert.equal(err.image, ref);
  assert.ok(err.message.startsWith(`Building the broken image ${ref} failed: `), err.message);
  assert.match(err.message, /returned a non-zero code: 7/);
  assert.match(err.message, /^about to fail$/m, 'the output of the failing step is in the tail');
  assert.match(err.message, /\nerror: [^\n]*non-zero code: 7$/, 'ends with the log\'s last line');
  assert.match(builder.log('broken'), /Step 3\/\d+ : RUN echo "about to fail" && exit 7\n[^]*about to fail\n/);
  assert.equal(await imageId(s.docker, ref), undefined, 'no image under the tag');

  writeFileSync(join(root, 'broken', 'Dockerfile'), 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUNN nonsense\n');
  await assert.rejects(builder.ensure('broken'), (e: unknown) => e instanceof ImageBuildError && /unknown instruction: RUNN/i.test(e.message));
});

test('cancelling stops a build under way', { timeout: BUILD_TIMEOUT }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const root = harnessCopy();
  mkdirSync(join(root, 'slow'));
  writeFileSync(join(root, 'slow', 'Dockerfile'), 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo "slow step started" && sleep 300 && echo never\n');
  const builder = await testImageBuilder(s.host, { harnessRoot: root });
  const ref = builder.imageRef('slow');
  const controller = new AbortController();
  let abortedAt = 0;
  const building = builder.ensure('slow', {
    signal: controller.signal,
    onProgress: (p) => {
      if (p.line === 'slow step started' && !abortedAt) {
        abortedAt = Date.now();
        controller.abort();
      }
    },
  });
  await assert.rejects(building, (e: unknown) => e instanceof AbortError && e.name === 'AbortError');
  assert.ok(abortedAt > 0, 'the step was running when cancelled');
  t.diagnostic(`rejected ${Date.now() - abortedAt} ms after the abort`);
  assert.ok(Date.now() - abortedAt < 5000);

  // The daemon ends the step's container (forcerm) and tags nothing.
  const deadline = Date.now() + 30_000;
  let left: string[] = [];
  for (;;) {
    const all = await s.docker.listContainers({ all: true });
    left = all.filter((c) => c.Command.includes('slow step started')).map((c) => `${c.Id.slice(0, 12)} ${c.State}`);
    if (left.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.deepEqual(left, [], 'the build container is gone');
  assert.equal(await imageId(s.docker, ref), undefined);
  log(`cancelled build cleaned up ${((Date.now() - abortedAt) / 1000).toFixed(1)} s after the abort`);
});
