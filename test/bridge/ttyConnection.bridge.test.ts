/**
 * TtyConnection (the extension host's terminal connection) against our real bridge, host runtime:
 * typing and output, resize, a bridge crash and restart healed by itself with the screen restored,
 * and the session being deleted. And flow control by acknowledgement end to end: negotiated only
 * when asked for, the program held while a client is a window behind, a client that stops
 * acknowledging let go of and resynchronised, and Ctrl+C answered after about a window of output.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Terminal } from '@xterm/headless';
import WebSocket from 'ws';
import type { Session } from '../../protocol/platform';
import { TTY_FLOW_HEADER, ttyAckFrame, type TtyState } from '../../protocol/terminal';
import { FLOW_WINDOW } from '../../bridge/terminal';
import { nullLogger, type Logger } from '../../extension/logger';
import { TtyConnection } from '../../extension/ttyConnection';
import { readyShellSession, removeStateDir, startBridge, ttyUrl, type RunningBridge } from './harness';

const GUARD_MS = 30_000;

async function until(check: () => boolean | Promise<boolean>, what: () => string, guardMs = GUARD_MS): Promise<void> {
  const deadline = Date.now() + guardMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Output the host runtime holds between the PTY and the bridge once the bridge stops reading (the
 *  holder's unix socket and its write buffer), measured at 180–350 KB. */
const RUNTIME_BUFFER = 448 * 1024;

/** A prompt at the end of what was received (bash as root or not; readline may turn on bracketed paste after it). */
const PROMPT_AT_END = /[$#] (?:\x1b\[\?2004h)?$/;

interface RawClient {
  ws: WebSocket;
  /** The bridge answered `x-sandbox-agents-flow: ack`. */
  accepted: boolean;
  /** Bytes received so far. */
  received(): number;
  /** The last few KiB received, as text. */
  tail(): string;
  /** Messages that were a snapshot (they start by resetting the terminal). */
  snapshots(): number;
  screen(): Promise<string[]>;
  type(text: string): void;
  /** Acknowledges everything received and not yet acknowledged. */
  ackAll(): void;
  close(): Promise<void>;
}

/** A /tty client on the wire, asking for ack flow control or not; it acknowledges only when told to. */
async function rawClient(bridge: RunningBridge, session: Session, o: { flow: boolean }): Promise<RawClient> {
  const url = new URL(ttyUrl(bridge, session));
  url.searchParams.set('token', session.tty_token!);
  if (o.flow) url.searchParams.set('flow', '1');
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${session.tty_token!}` } });
  const term = new Terminal({ cols: 100, rows: 30, scrollback: 1_000, allowProposedApi: true });
  let accepted = false;
  let received = 0;
  let acked = 0;
  let tail = '';
  let snapshots = 0;
  ws.on('upgrade', (res) => void (accepted = res.headers[TTY_FLOW_HEADER] === 'ack'));
  ws.on('message', (data: Buffer) => {
    received += data.length;
    if (data.subarray(0, 2).toString('latin1') === '\x1bc') snapshots++;
    tail = (tail + data.toString('latin1')).slice(-4096);
    term.write(data);
  });
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  ws.send(JSON.stringify({ type: 'resize', cols: 100, rows: 30 }));
  return {
    ws,
    accepted,
    received: () => received,
    tail: () => tail,
    snapshots: () => snapshots,
    screen: async () => {
      await new Promise<void>((r) => term.write('', r));
      const b = term.buffer.active;
      const lines: string[] = [];
      for (let y = 0; y < b.length; y++) lines.push(b.getLine(y)?.translateToString(true) ?? '');
      return lines;
    },
    type: (text) => ws.send(Buffer.from(text, 'utf8'), { binary: true }),
    ackAll: () => {
      if (received > acked) ws.send(ttyAckFrame(received - acked), { binary: false });
      acked = received;
    },
    close: async () => {
      ws.close();
      await closed;
      term.dispose();
    },
  };
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
      assert.equal(conn.flowControl, 'ack', 'the bridge acks');

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
  it('ack flow control is used only when asked for: other clients get no header and their ack-like text is input', async () => {
    const { session } = await readyShellSession(bridge);
    const flow = await rawClient(bridge, session, { flow: true });
    const plain = await rawClient(bridge, session, { flow: false });
    try {
      assert.equal(flow.accepted, true, 'asked with ?flow=1: answered with the header');
      assert.equal(plain.accepted, false, 'not asked: no header');
      await until(() => PROMPT_AT_END.test(plain.tail()), () => `a prompt (got ${JSON.stringify(plain.tail().slice(-80))})`);
      // As on the platform, text that is no control message of its own is typed.
      plain.ws.send('{"type":"ack","bytes":7}', { binary: false });
      await until(async () => (await plain.screen()).join('').includes('{"type":"ack","bytes":7}'), () => 'the ack-like text typed at the prompt');
      plain.type('\x15'); // Ctrl+U: clear the line
    } finally {
      await flow.close();
      await plain.close();
    }
  });

  it('a flow client a window behind holds the program until it acknowledges', async () => {
    const { session } = await readyShellSession(bridge);
    const observer = await rawClient(bridge, session, { flow: false });
    const slow = await rawClient(bridge, session, { flow: true });
    try {
      await until(() => PROMPT_AT_END.test(observer.tail()), () => 'a prompt');
      slow.type('seq 1 100000000\r');
      // The slow client acknowledges nothing: it is sent exactly a window (its snapshot included)…
      await until(() => slow.received() === FLOW_WINDOW, () => `a window sent to the slow client (got ${slow.received()})`);
      // …and the program is held: nothing more comes out, for anyone (well within the 2 s a silent
      // client is given before it is let go of).
      await sleep(300);
      const held = observer.received();
      const lastNumber = async () => Number((await observer.screen()).filter((l) => /^\d+$/.test(l.trim())).at(-1));
      const heldAt = await lastNumber();
      await sleep(500);
      assert.equal(observer.received(), held, 'the observer received nothing while the slow client was a window behind');
      assert.equal(slow.received(), FLOW_WINDOW);
      // An ack lets the program go on, for both.
      slow.ackAll();
      await until(() => slow.received() > FLOW_WINDOW && observer.received() > held, () => 'output after the ack');
      await until(async () => (await lastNumber()) > heldAt, () => `seq past ${heldAt}`);
    } finally {
      // Let it run free, stop it, and see the prompt.
      const free = setInterval(() => slow.ackAll(), 10);
      observer.type('\x03');
      await until(() => PROMPT_AT_END.test(observer.tail()), () => 'the prompt after Ctrl+C').finally(() => clearInterval(free));
      await slow.close();
      await observer.close();
    }
  });

  it('a flow client that stops acknowledging is let go of, and resynchronised from a snapshot once it catches up', async () => {
    const { session } = await readyShellSession(bridge);
    const reader = await rawClient(bridge, session, { flow: false });
    const stuck = await rawClient(bridge, session, { flow: true });
    let acking: NodeJS.Timeout | undefined;
    try {
      await until(() => PROMPT_AT_END.test(reader.tail()), () => 'a prompt');
      // ~20 MB of output: it finishes only if the silent client stops holding the program.
      reader.type('head -c 20000000 /dev/zero | tr "\\0" "x" | fold -w 200; echo; echo flood-$((7*6))-done\r');
      await until(async () => (await reader.screen()).some((l) => /^flood-42-done\s*$/.test(l)), () => 'the end of the flood on the reader', 120_000);
      assert.ok(stuck.received() <= FLOW_WINDOW, `the silent client was sent no more than its window (got ${stuck.received()})`);
      assert.equal(stuck.snapshots(), 1, 'the snapshot it got on attaching');
      // It catches up and acknowledges from now on: a fresh snapshot brings its screen up to date.
      acking = setInterval(() => stuck.ackAll(), 10);
      await until(async () => (await stuck.screen()).some((l) => /^flood-42-done\s*$/.test(l)), () => 'the end of the flood on the resynchronised client');
      assert.equal(stuck.snapshots(), 2, 'resynchronised from a snapshot');
      assert.ok(stuck.received() < 8_000_000, `it was not sent the flood (got ${stuck.received()} bytes)`);
      // And it is live again: typing shows.
      stuck.type('echo back-$((40+2))\r');
      await until(async () => (await stuck.screen()).some((l) => /^back-42\s*$/.test(l)), () => 'live output after the resync');
    } finally {
      clearInterval(acking);
      await stuck.close();
      await reader.close();
    }
  });

  it('Ctrl+C during a flood reaches the program, and the prompt follows within about a window of output', async (t) => {
    const { session } = await readyShellSession(bridge);
    const conn = new TtyConnection({
      sessionId: session.id,
      baseUrl: bridge.url,
      getSession: (signal) => bridge.client.getSession(session.id, { signal }),
      log,
      initialSize: { cols: 100, rows: 30 },
    });
    // A consumer slower than the flood (about 2 MB/s, as a busy renderer): what is in flight shows.
    const term = new Terminal({ cols: 100, rows: 30, scrollback: 1_000, allowProposedApi: true });
    const queue: Buffer[] = [];
    let busy = false;
    let received = 0;
    let tail = '';
    const consume = async () => {
      if (busy) return;
      busy = true;
      while (queue.length > 0) {
        const b = queue.shift()!;
        await new Promise<void>((r) => term.write(b, r));
        await sleep(b.length / 2_000);
        conn.ack(b.length);
      }
      busy = false;
    };
    conn.onData((b) => {
      received += b.length;
      tail = (tail + b.toString('latin1')).slice(-4096);
      queue.push(b);
      void consume();
    });
    try {
      await conn.connect();
      assert.equal(conn.flowControl, 'ack');
      await until(() => PROMPT_AT_END.test(tail), () => 'a prompt');
      for (let round = 0; round < 2; round++) {
        conn.write('yes\r');
        const start = received;
        await until(() => received - start > 4 * 1024 * 1024, () => 'a flood', 60_000);
        const atCtrlC = received;
        conn.write('\x03');
        await until(() => PROMPT_AT_END.test(tail), () => `the prompt after Ctrl+C (tail ${JSON.stringify(tail.slice(-60))})`);
        const after = received - atCtrlC;
        t.diagnostic(`round ${round + 1}: ${after} bytes between Ctrl+C and the prompt`);
        // What was in flight (a window), plus what had already left the PTY and waits on its way to the
        // bridge: on the host runtime the holder's socket to the bridge fills up (a few hundred KB) before
        // the program blocks; Ctrl+C flushes only what is still in the PTY.
        assert.ok(after <= FLOW_WINDOW + RUNTIME_BUFFER, `round ${round + 1}: ${after} bytes came between Ctrl+C and the prompt (window ${FLOW_WINDOW})`);
        await until(() => queue.length === 0 && !busy, () => 'the consumer idle');
      }
    } finally {
      conn.dispose();
      term.dispose();
    }
  });
});
