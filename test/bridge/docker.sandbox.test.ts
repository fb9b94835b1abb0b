/**
 * What "sandboxed" means for a local Docker session, checked from inside it: not root, no
 * capabilities, no privilege escalation, no network but loopback, resource limits applied, the
 * workspace folder mounted read-write at /work/repo, and nothing else of the host's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { dockerFixture } from './dockerFixture';
import { attach, readyShellSession, removeStateDir, startBridge, type RunningBridge } from './harness';
import type { RuntimeFixture } from './ttySuite';

let fixture: RuntimeFixture | undefined;
let bridge: RunningBridge;
before(async () => {
  fixture = await dockerFixture();
  if (fixture) bridge = await startBridge(fixture.options);
});
after(async () => {
  if (bridge) {
    for (const s of await bridge.client.listSessions({ limit: 200 })) await bridge.client.deleteSession(s.id).catch(() => undefined);
    await bridge.stop();
    removeStateDir(bridge.stateDir);
  }
  await fixture?.release();
});

test('a local Docker session is confined', { timeout: 120_000 }, async (t) => {
  if (!fixture) return t.skip('Docker is not available');
  const folder = mkdtempSync(join(tmpdir(), 'sa-ws-'));
  writeFileSync(join(folder, 'from-host.txt'), 'hello from the host\n');
  // The sandbox user (uid 1001) must be able to write into the mounted folder.
  const { chmodSync } = await import('node:fs');
  chmodSync(folder, 0o777);
  try {
    const { session } = await readyShellSession(bridge, undefined, { workspace_path: folder, resources: { memory_mb: 512, pids: 128 } });
    const c = await attach(bridge, session, { cols: 160 });
    c.type('echo "uid=$(id -u) caps=$(grep CapEff /proc/self/status | tr -d "\\t ") nnp=$(grep NoNewPrivs /proc/self/status | tr -d "\\t ")"\r');
    await c.waitFor(/^uid=1001 caps=CapEff:0000000000000000 nnp=NoNewPrivs:1\s*$/);
    c.type('echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" ",")"\r');
    await c.waitFor(/^ifaces=lo,\s*$/);
    c.type('echo "mem=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes) pids=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"\r');
    await c.waitFor(/^mem=536870912 pids=128\s*$/);
    c.type('cat /work/repo/from-host.txt; echo written-in-sandbox > /work/repo/from-sandbox.txt; echo wrote-$?\r');
    await c.waitFor(/^wrote-0\s*$/);
    await c.waitFor(/^hello from the host\s*$/);
    assert.equal(readFileSync(join(folder, 'from-sandbox.txt'), 'utf8'), 'written-in-sandbox\n');
    c.type('(exec 3<>/dev/tcp/127.0.0.1/1 2>/dev/null && echo net-open) || echo net-$((1+1))-closed\r');
    await c.waitFor(/^net-2-closed\s*$/);
    await c.close();
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
