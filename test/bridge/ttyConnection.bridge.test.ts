/**
 * TtyConnection (the extension host's terminal connection) against our real bridge, host runtime:
 * typing and output, resize, a bridge crash and restart healed by itself with the screen restored,
 * and the session being deleted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Terminal } from '@xterm/headless';
import type { TtyState } from '../../protocol/terminal';
import { nullLogger, type Logger } from '../../extension/logger';
import { TtyConnection } from '../../extension/ttyConnection';
import { readyShellSession, removeStateDir, startBridge, type RunningBridge } from './harness';

const GUARD_MS = 30_000;

async function until(check: () => boolean | Promise<boolean>, what: () => string, guardMs = GUARD_MS): Promise<void> {
  const deadline = Date.now() + guardMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('TtyConnection against the bridge (host runtime)', { timeout: 180_000 }, () => {
  let bridge: RunningBridge;
  const stateDirs: string[] = [];
  const logLines: string[] = [];
  const log: Logger = { ...nullLogger, debug: (m) => void logLines.push(m), info: (m) => void logLines.push(m), warn: (m) => void logLines.push(m) };

  before(async () => {
    bridge = await startBridge({ runtime: 'host' });
    stateDirs.push(bridge.stateDir);
  });

  after(async () => {
    if (bridge) {
      for (const s of await bridge.client.listSessions({ limit: 200 }).catch(() => [])) await bridge.client.deleteSession(s.id).catch(() => undefined);
      await bridge.stop();
    }
    for (const d of stateDirs) removeStateDir(d);
  });

  it('types, resizes, reattaches by itself after a bridge crash, and ends when the session is deleted', async () => {
    const { session } = await readyShellSession(bridge);
    const token = session.tty_token!;
    const term = new Terminal({ cols: 100, rows: 30, scrollback: 5_000, allowProposedApi: true });
    const conn = new TtyConnection({
      sessionId: session.id,
      // A restarted bridge listens on a new port: the connection follows the current one.
      baseUrl: () => bridge.url,
      getSession: (signal) => bridge.client.getSession(session.id, { signal }),
      log,
      initialSize: { cols: 100, rows: 30 },
      backoff: { minMs: 100, maxMs: 2_000 },
    });
    const states: TtyState[] = [];
    const chunks: { stateIndex: number; text: string }[] = [];
    conn.onState((s) => states.push(s));
    conn.onData((bytes) => {
      chunks.push({ stateIndex: states.length - 1, text: bytes.toString('utf8') });
      term.write(bytes, () => conn.ack(bytes.length));
    });
    const kinds = () => states.map((s) => s.kind).join(' → ');
    const screen = async () => {
      await new Promise<void>((r) => term.write('', r));
      const b = term.buffer.active;
      const lines: string[] = [];
      for (let y = 0; y < b.length; y++) lines.push(b.getLine(y)?.translateToString(true) ?? '');
      return lines;
    };
    const shows = async (re: RegExp) => (await screen()).some((l) => re.test(l));
    const waitScreen = (re: RegExp, guardMs = GUARD_MS) => until(() => shows(re), () => `the screen to show ${re}`, guardMs);
    const reach = async (kind: TtyState['kind'], from: number) => {
      let at = -1;
      await until(() => (at = states.findIndex((s, i) => i >= from && s.kind === kind)) >= 0, () => `state ${kind} (seen: ${kinds()})`);
      return at;
    };

    try {
      await conn.connect();
      assert.equal(conn.state.kind, 'open', kinds());

      // Typing reaches the shell, its output comes back.
      assert.equal(conn.write('echo tc-$((6*7))\r'), true);
      await waitScreen(/^tc-42\s*$/);

      // Resizing reaches the PTY.
      term.resize(120, 40);
      conn.resize(120, 40);
      for (let i = 0; ; i++) {
        conn.write('stty size\r');
        try {
          await waitScreen(/^40 120\s*$/, 1_000);
          break;
        } catch (err) {
          if (i >= 10) throw err;
        }
      }

      // The bridge crashes and comes back on the same state dir and key (on a new port).
      const beforeCrash = states.length;
      await bridge.kill();
      const lostAt = await reach('reconnecting', beforeCrash);
      bridge = await startBridge({ runtime: 'host', stateDir: bridge.stateDir, masterKey: bridge.masterKey });
      const reopenedAt = await reach('open', lostAt);
      assert.ok(states.slice(lostAt, reopenedAt).every((s) => s.kind === 'reconnecting' || s.kind === 'connecting'), kinds());
      // The repaint after the reattach starts by clearing the screen, then restores it.
      await until(() => chunks.some((c) => c.stateIndex >= reopenedAt), () => 'output after the reattach');
      const repaint = chunks.filter((c) => c.stateIndex >= reopenedAt).map((c) => c.text).join('');
      assert.ok(repaint.startsWith('\x1bc'), `the snapshot starts with ESC c: ${JSON.stringify(repaint.slice(0, 20))}`);
      await waitScreen(/^tc-42\s*$/);
      conn.write('echo after-$((2+3))\r');
      await waitScreen(/^after-5\s*$/);
      // The size is sent again on the new socket.
      conn.write('stty size\r');
      await until(async () => (await screen()).filter((l) => /^40 120\s*$/.test(l)).length >= 2, () => 'stty size after the reattach');

      // Deleting the session ends the connection for good.
      const beforeDelete = states.length;
      await bridge.client.deleteSession(session.id);
      const endedAt = await reach('ended', beforeDelete);
      const ended = states[endedAt] as Extract<TtyState, { kind: 'ended' }>;
      assert.ok(['dead', 'deleted'].includes(ended.status), `ended as ${ended.status}`);
      assert.ok(ended.reason.length > 0);
      assert.equal(conn.write('x'), false);
    } finally {
      conn.dispose();
      term.dispose();
    }
    assert.equal(conn.state.kind, 'closed');
    assert.deepEqual(logLines.filter((l) => l.includes(token) || /token=/i.test(l)), [], 'no log line carries the token');
  });
});
