// The test Docker engine and its base image work, and a container started the way the product starts
// sandboxes (no network, uid 1001, no capabilities, no-new-privileges, a TTY) is what we expect.
// Without Docker prerequisites the test is skipped, or fails on CI (see requireAllTiers).
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { docker, ensureBaseImage, SANDBOX_UID, sharedTestDockerd, skipUnlessDocker } from './dockerd';

test('test dockerd, base image and a locked-down container', { timeout: 15 * 60_000 }, async (t) => {
  if (skipUnlessDocker(t)) return;
  const daemon = await sharedTestDockerd();
  try {
    const image = await ensureBaseImage(daemon.host);

    const info = await docker(daemon.host, ['info', '--format', '{{json .}}']);
    assert.equal(info.code, 0, info.stderr);
    const parsed = JSON.parse(info.stdout) as { Driver?: string };
    t.diagnostic(`storage driver: ${parsed.Driver}`);

    const script = [
      'echo "uid=$(id -u)"',
      'echo "node=$(node --version)"',
      'echo "git=$(git --version)"',
      'echo "ps=$(ps -o pid= -p 1 | tr -d " ")"',
      'grep -E "^(CapEff|NoNewPrivs):" /proc/self/status',
      'echo "--- net"',
      'cat /proc/net/dev',
    ].join('; ');
    const started = Date.now();
    const r = await docker(
      daemon.host,
      [
        'run', '--rm',
        '--network', 'none',
        '--user', String(SANDBOX_UID),
        '--cap-drop', 'ALL',
        '--security-opt', 'no-new-privileges',
        '--tty',
        image, 'sh', '-c', script,
      ],
      { timeoutMs: 60_000 },
    );
    t.diagnostic(`docker run took ${Date.now() - started} ms`);
    const out = r.stdout.replace(/\r/g, '');
    assert.equal(r.code, 0, `docker run failed: ${r.stderr}\n${out}`);

    await t.test('runs as uid 1001', () => assert.match(out, new RegExp(`^uid=${SANDBOX_UID}$`, 'm')));
    await t.test('node works', () => assert.match(out, /^node=v\d+\.\d+\.\d+$/m));
    await t.test('git and procps are there', () => {
      assert.match(out, /^git=git version \d/m);
      assert.match(out, /^ps=1$/m);
    });
    await t.test('no capabilities, no new privileges', () => {
      assert.match(out, /^CapEff:\s+0+$/m);
      assert.match(out, /^NoNewPrivs:\s+1$/m);
    });
    await t.test('no network interface but lo', () => {
      const net = out.split('--- net\n')[1] ?? '';
      const ifaces = net
        .split('\n')
        .filter((l) => l.includes(':') && !/^\s*(Inter-|face)/.test(l))
        .map((l) => l.split(':')[0].trim());
      assert.deepEqual(ifaces, ['lo'], net);
    });
  } finally {
    await daemon.release();
  }
});
