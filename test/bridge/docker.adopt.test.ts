/**
 * A bridge that starts while Docker cannot be reached must not declare running sandboxes dead: the
 * sessions wait, and the bridge re-adopts them as soon as Docker answers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dockerFixture } from './dockerFixture';
import { attach, readyShellSession, removeStateDir, startBridge, type RunningBridge } from './harness';
import type { RuntimeFixture } from './ttySuite';

describe('re-adoption when Docker comes up after the bridge', { timeout: 180_000 }, () => {
  let fixture: RuntimeFixture | undefined;
  let bridge: RunningBridge | undefined;
  let linkDir: string;

  before(async () => {
    fixture = await dockerFixture();
    linkDir = mkdtempSync(join(tmpdir(), 'sa-late-docker-'));
  });

  after(async () => {
    if (bridge) {
      for (const s of await bridge.client.listSessions({ limit: 50 }).catch(() => [])) await bridge.client.deleteSession(s.id).catch(() => undefined);
      await bridge.stop();
      removeStateDir(bridge.stateDir);
    }
    rmSync(linkDir, { recursive: true, force: true });
    await fixture?.release();
  });

  it('sessions stay ready while Docker is unreachable, and are attachable once it answers', async (t) => {
    if (!fixture) return t.skip('Docker is not available');
    const first = await startBridge(fixture.options);
    const { session } = await readyShellSession(first);
    const tty = await attach(first, session);
    tty.type('export MARK=kept-$((6*7)); echo "set-$((6*7))"\r');
    await tty.waitFor(/^set-42$/);
    await tty.close();
    await first.stop();

    // The same state, but Docker's socket is not there yet.
    const late = join(linkDir, 'docker.sock');
    bridge = await startBridge({ ...fixture.options, stateDir: first.stateDir, dockerHost: `unix://${late}`, masterKey: first.masterKey });
    const waiting = await bridge.client.getSession(session.id);
    assert.equal(waiting.status, 'ready', `not declared dead: ${waiting.failure_reason}`);

    // Docker "starts": its socket appears.
    symlinkSync(fixture.options.dockerHost!.replace(/^unix:\/\//, ''), late);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const again = await attach(bridge, await bridge.client.getSession(session.id));
        again.type('echo "$MARK"\r');
        await again.waitFor(/^kept-42$/, 10_000);
        await again.close();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    assert.equal((await bridge.client.getSession(session.id)).status, 'ready');
  });
});
