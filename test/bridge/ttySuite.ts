/**
 * What a user of a local `shell` session relies on, for one runtime: typing and output, resize,
 * several clients, reattach with the screen restored, a bridge crash and restart, the program exiting
 * or being killed from outside, tokens, Host/Origin checks, malformed input, and many reconnects.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { attach, readyShellSession, removeStateDir, settle, startBridge, ttyUrl, upgradeStatus, type BridgeOptions, type RunningBridge } from './harness';

export interface RuntimeFixture {
  options: BridgeOptions;
  /** Ends the session's program from outside the bridge (docker kill / kill the process). */
  killFromOutside(sandboxRef: string, sessionId: string): Promise<void>;
  /** Cleanup of the runtime after the suite. */
  release(): Promise<void>;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

export function ttySuite(name: string, setup: () => Promise<RuntimeFixture | undefined>): void {
  describe(`bridge /tty: ${name}`, { timeout: 300_000 }, () => {
    let fixture: RuntimeFixture | undefined;
    let bridge: RunningBridge;
    const stateDirs: string[] = [];

    before(async () => {
      fixture = await setup();
      if (!fixture) return;
      bridge = await startBridge(fixture.options);
      stateDirs.push(bridge.stateDir);
    });

    after(async () => {
      if (bridge) {
        for (const s of await bridge.client.listSessions({ limit: 200 }).catch(() => [])) await bridge.client.deleteSession(s.id).catch(() => undefined);
        await bridge.stop();
      }
      for (const d of stateDirs) removeStateDir(d);
      await fixture?.release();
    });

    const skip = (t: { skip(msg: string): void }) => {
      if (fixture) return false;
      t.skip('runtime not available');
      return true;
    };

    it('typing reaches the shell and its output comes back', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      assert.equal(session.supports_tui, true);
      assert.ok(session.tty_url?.endsWith(`/sessions/${session.id}/tty`));
      const c = await attach(bridge, session);
      c.type('echo "hello-$((6*7))"\r');
      await c.waitFor(/^hello-42\s*$/);
      await c.close();
    });

    it('resizing the client resizes the PTY (stty size), clamped to sane bounds', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const c = await attach(bridge, session, { cols: 91, rows: 27 });
      // A resize reaches the PTY asynchronously (Docker applies it over its API): ask until it shows.
      const sizeIs = async (re: RegExp) => {
        for (let i = 0; ; i++) {
          c.type('stty size\r');
          try {
            return await c.waitFor(re, 500);
          } catch (err) {
            if (i >= 20) throw err;
          }
        }
      };
      await sizeIs(/^27 91\s*$/);
      c.resize(132, 43);
      await sizeIs(/^43 132\s*$/);
      c.ws.send(JSON.stringify({ type: 'resize', cols: 99999, rows: -5 }));
      await sizeIs(/^1 1000\s*$/);
      c.resize(100, 30);
      await c.close();
    });

    it('two clients see the same output, and input from either reaches the shell', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const a = await attach(bridge, session);
      const b = await attach(bridge, session);
      a.type('echo from-a-$((1+1))\r');
      await a.waitFor(/^from-a-2\s*$/);
      await b.waitFor(/^from-a-2\s*$/);
      b.type('echo from-b-$((2+2))\r');
      await a.waitFor(/^from-b-4\s*$/);
      await b.waitFor(/^from-b-4\s*$/);
      await a.close();
      await b.close();
    });

    it('reattaching restores the screen and scrollback; shell state lives on', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const first = await attach(bridge, session);
      first.type('export SA_MARK=kept-$((40+2)); for i in $(seq 1 60); do echo "line-$i"; done\r');
      await first.waitFor(/^line-60\s*$/);
      await first.close();
      const second = await attach(bridge, session);
      const lines = await second.waitFor(/^line-60\s*$/);
      assert.ok(lines.some((l) => /^line-1\s*$/.test(l)), 'scrollback restored, not only the visible screen');
      second.type('echo "mark=$SA_MARK"\r');
      await second.waitFor(/^mark=kept-42\s*$/);
      await second.close();
    });

    it('a bridge crash (SIGKILL) and restart re-adopts the session: attachable, screen and state intact', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const c = await attach(bridge, session);
      c.type('export SA_CRASH=survived; echo before-crash-$((3*3))\r');
      await c.waitFor(/^before-crash-9\s*$/);
      await bridge.kill();
      await c.closed;
      bridge = await startBridge({ ...fixture!.options, stateDir: bridge.stateDir, masterKey: bridge.masterKey });
      const again = await bridge.client.getSession(session.id);
      assert.equal(again.status, 'ready', again.failure_reason ?? '');
      const d = await attach(bridge, again);
      await d.waitFor(/^before-crash-9\s*$/);
      d.type('echo "after=$SA_CRASH"\r');
      await d.waitFor(/^after=survived\s*$/);
      await d.close();
    });

    it('when the program exits the client sees why, the socket closes and the session is dead', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const c = await attach(bridge, session);
      c.type('exit 3\r');
      await c.waitFor(/\[bridge\] process exited \(code 3/);
      await c.closed;
      const ended = await bridge.client.getSession(session.id);
      assert.equal(ended.status, 'dead');
      assert.match(ended.failure_reason ?? '', /exited \(code 3/);
      assert.equal(await upgradeStatus(ttyUrl(bridge, session), { authorization: `Bearer ${session.tty_token}` }), 409);
      // Restart Session brings the ended session back under the same id (its old sandbox is gone).
      const restarted = await bridge.client.restartSession(session.id);
      assert.equal(restarted.id, session.id);
      const again = await settle(bridge.client, session.id);
      assert.equal(again.status, 'ready', again.failure_reason ?? '');
      const d = await attach(bridge, again);
      d.type('echo restarted-$((2*21))\r');
      await d.waitFor(/^restarted-42\s*$/);
      await d.close();
    });

    it('a sandbox killed from outside ends the session as dead with a reason', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const c = await attach(bridge, session);
      c.type('echo alive\r');
      await c.waitFor(/^alive\s*$/);
      const ref = JSON.parse(readFileSync(`${bridge.stateDir}/state.json`, 'utf8')).sessions.find((s: { id: string }) => s.id === session.id).sandbox_ref as string;
      await fixture!.killFromOutside(ref, session.id);
      await c.closed;
      const deadline = Date.now() + 20_000;
      let s = await bridge.client.getSession(session.id);
      while (s.status === 'ready' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        s = await bridge.client.getSession(session.id);
      }
      assert.equal(s.status, 'dead');
      assert.ok(s.failure_reason, 'a reason is given');
    });

    it('tokens: none, wrong, or another session\'s are refused with 401 before the upgrade', async (t) => {
      if (skip(t)) return;
      const one = await readyShellSession(bridge);
      const two = await readyShellSession(bridge);
      assert.notEqual(one.session.tty_token, two.session.tty_token, 'tokens are per session');
      assert.ok(Buffer.from(one.session.tty_token!, 'base64url').length * 8 >= 128, 'at least 128 random bits');
      const url = ttyUrl(bridge, one.session);
      assert.equal(await upgradeStatus(url), 401);
      assert.equal(await upgradeStatus(url, { authorization: 'Bearer wrong-token' }), 401);
      assert.equal(await upgradeStatus(`${url}?token=${encodeURIComponent(two.session.tty_token!)}`), 401);
      assert.equal(await upgradeStatus(url, { authorization: `Bearer ${two.session.tty_token}` }), 401);
      assert.equal(await upgradeStatus(`${url}?token=${encodeURIComponent(one.session.tty_token!)}`), 101, 'the query token alone works');
      assert.equal(await upgradeStatus(url, { authorization: `Bearer ${one.session.tty_token}` }), 101, 'the header alone works');
    });

    it('a foreign Origin or Host is refused with 403, for the API and the upgrade', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const auth = { authorization: `Bearer ${session.tty_token}` };
      const url = ttyUrl(bridge, session);
      assert.equal(await upgradeStatus(url, { ...auth, origin: 'https://evil.example' }), 403);
      assert.equal(await upgradeStatus(url, { ...auth, host: `evil.example:${new URL(bridge.url).port}` }), 403);
      const api = async (headers: Record<string, string>) =>
        (await fetch(`${bridge.url}/api/v1/managed_agents/agents`, { headers: { authorization: `Bearer ${bridge.masterKey}`, ...headers } })).status;
      assert.equal(await api({ origin: 'https://evil.example' }), 403);
      assert.equal(await api({}), 200);
      assert.equal(await api({ host: `localhost:${new URL(bridge.url).port}` }), 200);
    });

    it('malformed frames, JSON and bodies never crash it', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const c = await attach(bridge, session);
      for (const frame of ['{', '{"type":"resize"}', '{"type":"resize","cols":"x","rows":null}', '{"type":"nope"}', '[]', 'null', '\u0000\uffff']) c.ws.send(frame);
      c.ws.send(Buffer.from([0xff, 0xfe, 0x00, 0x1b]), { binary: true });
      await new Promise((r) => setTimeout(r, 200));
      c.type('\x03');
      await new Promise((r) => setTimeout(r, 300));
      c.type('echo still-$((5+5))\r');
      await c.waitFor(/^still-10\s*$/);
      await c.close();
      const bad = await fetch(`${bridge.url}/api/v1/managed_agents/agents`, { method: 'POST', headers: { authorization: `Bearer ${bridge.masterKey}`, 'content-type': 'application/json' }, body: '{"model":' });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /invalid JSON body/);
      const big = await fetch(`${bridge.url}/api/v1/managed_agents/agents`, { method: 'POST', headers: { authorization: `Bearer ${bridge.masterKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'x'.repeat(1024 * 1024 + 10) }) });
      assert.equal(big.status, 413);
      const harness = await fetch(`${bridge.url}/api/v1/managed_agents/agents`, { method: 'POST', headers: { authorization: `Bearer ${bridge.masterKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', harness_id: 'nope' }) });
      assert.equal(harness.status, 400);
      assert.match(JSON.stringify(await harness.json()), /^\{"error":\{"error":"unknown harness_id \\"nope\\"/);
      // Malformed request targets, unauthenticated, must not crash it either.
      const net = await import('node:net');
      const port = Number(new URL(bridge.url).port);
      for (const raw of ['GET //a:b HTTP/1.1\r\nHost: evil.example\r\n\r\n', `GET /api/v1/managed_agents/sessions/%ZZ/tty HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`]) {
        const answer = await new Promise<string>((resolve) => {
          const sock = net.connect(port, '127.0.0.1', () => sock.write(raw));
          let text = '';
          sock.on('data', (d) => (text += d.toString()));
          sock.on('close', () => resolve(text));
          sock.on('error', () => resolve(text));
          setTimeout(() => sock.destroy(), 2000);
        });
        assert.match(answer, /^HTTP\/1\.1 4\d\d/, `answered: ${answer.slice(0, 40)}`);
      }
      assert.equal((await bridge.client.getSession(session.id)).status, 'ready');
    });

    it('200 connect/disconnect cycles while output flows leak no sockets and keep memory bounded', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const driver = await attach(bridge, session);
      driver.type('i=0; while [ $i -lt 1500 ]; do echo "flow-$i"; i=$((i+1)); sleep 0.005; done; echo flow-done\r');
      await driver.waitFor(/^flow-1\d\s*$/);
      const fdsBefore = fdCount(bridge.pid);
      const rssBefore = rssKiB(bridge.pid);
      for (let i = 0; i < 200; i++) {
        const url = new URL(ttyUrl(bridge, session));
        url.searchParams.set('token', session.tty_token!);
        const ws = new WebSocket(url);
        await new Promise<void>((res, rej) => {
          ws.once('message', () => res());
          ws.once('error', rej);
        });
        if (i % 2) ws.terminate();
        else ws.close();
        await new Promise<void>((r) => ws.once('close', () => r()));
      }
      // The flow ends by itself; everything it printed reached the driver in order.
      await driver.waitFor(/^flow-done\s*$/, 90_000);
      await new Promise((r) => setTimeout(r, 300));
      const fdsAfter = fdCount(bridge.pid);
      const rssAfter = rssKiB(bridge.pid);
      assert.ok(fdsAfter <= fdsBefore + 3, `file descriptors ${fdsBefore} → ${fdsAfter}`);
      assert.ok(rssAfter < rssBefore + 64 * 1024, `RSS ${rssBefore} KiB → ${rssAfter} KiB`);
      await driver.close();
    });

    it('a client that stops reading neither holds back the others nor grows memory; it resyncs from a snapshot', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const reader = await attach(bridge, session);
      const stalled = await attach(bridge, session);
      await stalled.waitFor(/\$ $|# $/);
      const socket = (stalled.ws as unknown as { _socket: import('node:net').Socket })._socket;
      socket.pause();
      const rssBefore = rssKiB(bridge.pid);
      // ~40 MB of output while one client reads nothing.
      reader.type('head -c 40000000 /dev/zero | tr "\\0" "x" | fold -w 200; echo; echo flood-$((7*6))-done\r');
      await reader.waitFor(/^flood-42-done\s*$/, 120_000);
      const rssAfter = rssKiB(bridge.pid);
      assert.ok(rssAfter < rssBefore + 128 * 1024, `bridge RSS ${rssBefore} KiB → ${rssAfter} KiB with a stalled client`);
      const before = stalled.received().length;
      socket.resume();
      await stalled.waitFor(/^flood-42-done\s*$/, 60_000);
      const caughtUp = stalled.received().slice(before);
      assert.ok(caughtUp.includes('\x1bc'), 'the stalled client was resynchronised from a fresh snapshot');
      assert.ok(stalled.received().length < 20_000_000, 'it was not sent the whole flood');
      await reader.close();
      await stalled.close();
    });

    it('a session can be stopped (DELETE) while attached: the client is closed, the sandbox is gone', async (t) => {
      if (skip(t)) return;
      const { session } = await readyShellSession(bridge);
      const c = await attach(bridge, session);
      const reply = await bridge.client.deleteSession(session.id);
      assert.equal(reply.status, 'deleted');
      await c.closed;
      assert.equal((await settle(bridge.client, session.id)).status, 'dead');
      assert.equal(await upgradeStatus(ttyUrl(bridge, session), { authorization: `Bearer ${session.tty_token}` }), 409);
    });
  });
}
