import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import type { Session } from '../protocol/platform';
import { TTY_FLOW_HEADER, type TtyState } from '../protocol/terminal';
import { PlatformError, PlatformUnreachableError } from './errors';
import type { Logger } from './logger';
import { PlatformClient } from './platformClient';
import { TTY_FALLBACK_SETTING, TtyConnection, resolveTtyUrl, type TtyConnectionOptions } from './ttyConnection';

const MASTER = 'master-key-0123456789abcdef';
const TOKEN = 'ttytok-S3CRET-0123456789abcdef';
const SID = 'ses_1';
const TTY_PATH = `/api/v1/managed_agents/sessions/${SID}/tty`;
const GUARD_MS = 10_000;

// Every log line of every connection in this file: checked for secrets at the end.
const logLines: string[] = [];
const log: Logger = {
  trace: (m) => void logLines.push(m),
  debug: (m) => void logLines.push(m),
  info: (m) => void logLines.push(m),
  warn: (m) => void logLines.push(m),
  error: (m) => void logLines.push(typeof m === 'string' ? m : (m.stack ?? m.message)),
};

/** Resolves once `check` holds; the guard only turns a hang into a failure that says what was awaited. */
async function until(check: () => boolean, what: string | (() => string), guardMs = GUARD_MS): Promise<void> {
  const deadline = Date.now() + guardMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Frame {
  binary: boolean;
  data: Buffer;
}

interface ServerSocket {
  ws: WebSocket;
  frames: Frame[];
  pings: number;
  closed: Promise<number>;
}

/**
 * A scripted platform on loopback: `GET /sessions/ses_1` (master key required) answers `session`,
 * and the `/tty` upgrade requires the tty token in BOTH the Authorization header and `?token=`.
 * Like the real platform it knows nothing of ack flow control, unless `ctl.acceptFlow` (as the bridge).
 */
async function fakePlatform() {
  const session: Session = { id: SID, status: 'ready', tty_url: TTY_PATH, tty_token: TOKEN, supports_tui: true };
  const upgrades: { path: string; header?: string; query: string | null; flow: string | null }[] = [];
  const sockets: ServerSocket[] = [];
  const tcp = new Set<Socket>();
  const ctl = { refuseWith: undefined as number | undefined, acceptFlow: false, onSocket: (_s: ServerSocket) => {} };

  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${MASTER}`) return send(401, { error: 'unauthorized' });
    if (req.method === 'GET' && req.url === `/api/v1/managed_agents/sessions/${SID}`) return send(200, session);
    send(404, { error: 'not found' });
  });
  const wss = new WebSocketServer({ noServer: true });
  wss.on('headers', (headers) => {
    if (ctl.acceptFlow) headers.push(`${TTY_FLOW_HEADER}: ack`);
  });
  server.on('connection', (s) => {
    tcp.add(s);
    s.on('close', () => tcp.delete(s));
  });
  server.on('upgrade', (req, socket: Socket, head) => {
    const url = new URL(req.url!, 'http://fake');
    upgrades.push({ path: url.pathname, header: req.headers.authorization, query: url.searchParams.get('token'), flow: url.searchParams.get('flow') });
    const authorized = req.headers.authorization === `Bearer ${TOKEN}` && url.searchParams.get('token') === TOKEN;
    const status = ctl.refuseWith ?? (url.pathname !== TTY_PATH ? 404 : authorized ? undefined : 401);
    if (status) {
      socket.end(`HTTP/1.1 ${status} Refused\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const s: ServerSocket = { ws, frames: [], pings: 0, closed: new Promise((r) => ws.once('close', (code) => r(code))) };
      ws.on('message', (data, binary) => s.frames.push({ binary, data: Buffer.from(data as Buffer) }));
      ws.on('ping', () => s.pings++);
      sockets.push(s);
      ctl.onSocket(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new PlatformClient({ baseUrl: url, apiKey: MASTER, retries: 0 });
  return {
    url,
    session,
    upgrades,
    sockets,
    ctl,
    client,
    /** Options for a connection to this platform through the real client. */
    options: (extra: Partial<TtyConnectionOptions> = {}): TtyConnectionOptions => ({
      sessionId: SID,
      baseUrl: url,
      getSession: (signal) => client.getSession(SID, { signal }),
      log,
      initialSize: { cols: 120, rows: 40 },
      backoff: { minMs: 20, maxMs: 200 },
      ...extra,
    }),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      for (const s of tcp) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Records every state a connection goes through. */
function watch(conn: TtyConnection) {
  const states: TtyState[] = [];
  conn.onState((s) => states.push(s));
  const received: Buffer[] = [];
  conn.onData((b) => received.push(b));
  const kinds = () => states.map((s) => s.kind).join(' → ');
  return {
    states,
    received,
    text: () => Buffer.concat(received).toString('utf8'),
    kinds,
    /** Waits for a state of `kind` at or after history index `from`; returns its index. */
    async reach(kind: TtyState['kind'], from = 0): Promise<number> {
      let at = -1;
      await until(
        () => (at = states.findIndex((s, i) => i >= from && s.kind === kind)) >= 0,
        () => `state ${kind} (seen: ${kinds()})`,
      );
      return at;
    },
  };
}

const json = (f: Frame) => JSON.parse(f.data.toString('utf8')) as unknown;

describe('resolveTtyUrl', () => {
  const base = 'http://127.0.0.1:7000';
  const rel = '/api/v1/managed_agents/sessions/s1/tty';
  const cases: [string, string, Pick<Session, 'tty_url' | 'sandbox_url'>, string | undefined, string][] = [
    ['relative tty_url with a leading slash', base, { tty_url: rel }, undefined, `ws://127.0.0.1:7000${rel}`],
    ['relative tty_url without a leading slash', base, { tty_url: rel.slice(1) }, undefined, `ws://127.0.0.1:7000${rel}`],
    ['https base → wss', 'https://agents.example.com', { tty_url: rel }, undefined, `wss://agents.example.com${rel}`],
    ['base with a path prefix keeps it', 'https://example.com/lap', { tty_url: rel }, undefined, `wss://example.com/lap${rel}`],
    ['base with a path prefix and a trailing slash', 'https://example.com/lap/', { tty_url: rel.slice(1) }, undefined, `wss://example.com/lap${rel}`],
    ['a tty_url already under the prefix is not doubled', 'https://example.com/lap', { tty_url: `/lap${rel}` }, undefined, `wss://example.com/lap${rel}`],
    ['a relative tty_url keeps its query', base, { tty_url: `${rel}?x=1` }, undefined, `ws://127.0.0.1:7000${rel}?x=1`],
    ['absolute wss tty_url as is', base, { tty_url: 'wss://tty.example.com/s/1/tty' }, undefined, 'wss://tty.example.com/s/1/tty'],
    ['absolute ws tty_url as is', base, { tty_url: 'ws://10.1.2.3:4096/tty' }, undefined, 'ws://10.1.2.3:4096/tty'],
    ['absolute http tty_url → ws', base, { tty_url: 'http://tty.example.com:8080/x/tty' }, undefined, 'ws://tty.example.com:8080/x/tty'],
    ['absolute https tty_url → wss', base, { tty_url: 'https://tty.example.com/x/tty' }, undefined, 'wss://tty.example.com/x/tty'],
    ['tty_url wins over sandbox_url', base, { tty_url: rel, sandbox_url: 'http://10.0.0.5:4096' }, undefined, `ws://127.0.0.1:7000${rel}`],
    ['sandbox_url + /tty', base, { sandbox_url: 'http://10.0.0.5:4096' }, undefined, 'ws://10.0.0.5:4096/tty'],
    ['https sandbox_url with a path and trailing slash', base, { sandbox_url: 'https://sbx.example.com/s/abc/' }, 'wss://unused', 'wss://sbx.example.com/s/abc/tty'],
    ['in-cluster sandbox_url → the fallback setting', base, { sandbox_url: 'http://sbx-1.agents.svc.cluster.local:4096', tty_url: null }, 'wss://tty.example.com/tty', 'wss://tty.example.com/tty'],
    ['an https fallback becomes wss', base, { sandbox_url: 'http://sbx-1.agents.svc.cluster.local:4096' }, ' https://tty.example.com/tty ', 'wss://tty.example.com/tty'],
    ['nothing from the platform → the fallback setting', base, {}, 'ws://127.0.0.1:9000/tty', 'ws://127.0.0.1:9000/tty'],
  ];
  for (const [name, baseUrl, session, fallback, expected] of cases) {
    it(name, () => assert.equal(resolveTtyUrl(baseUrl, session, fallback), expected));
  }

  it('in-cluster without a fallback: an error that names the setting and the reason', () => {
    assert.throws(
      () => resolveTtyUrl(base, { sandbox_url: 'http://sbx-1.agents.svc.cluster.local:4096' }),
      (err: Error) => err.message.includes(TTY_FALLBACK_SETTING) && /only reachable inside its cluster/.test(err.message) && err.message.includes('sbx-1.agents.svc.cluster.local'),
    );
  });

  it('neither tty_url nor sandbox_url nor a fallback: an error that names the setting', () => {
    assert.throws(() => resolveTtyUrl(base, { tty_url: null, sandbox_url: '' }, '  '), (err: Error) => err.message.includes(TTY_FALLBACK_SETTING) && /neither a tty_url nor a sandbox address/.test(err.message));
  });

  it('a fallback that is not a URL is reported as such', () => {
    assert.throws(() => resolveTtyUrl(base, {}, 'tty.example.com/tty'), (err: Error) => err.message.includes(TTY_FALLBACK_SETTING) && /must be a ws:\/\//.test(err.message));
  });
});

describe('TtyConnection against a scripted ws server', () => {
  it('attaches with the token in the header and the query, sends the size first as text, input as binary', async () => {
    const p = await fakePlatform();
    const conn = new TtyConnection(p.options());
    const w = watch(conn);
    try {
      assert.equal(conn.write('too early'), false, 'a write before the socket is open is dropped');
      await conn.connect();
      assert.equal(conn.state.kind, 'open');
      assert.deepEqual(w.kinds(), 'connecting → open');
      assert.deepEqual(p.upgrades, [{ path: TTY_PATH, header: `Bearer ${TOKEN}`, query: TOKEN, flow: '1' }]);
      const s = p.sockets[0];
      await until(() => s.frames.length >= 1, 'the resize frame');
      assert.deepEqual(s.frames[0].binary, false, 'resize is a text frame');
      assert.deepEqual(json(s.frames[0]), { type: 'resize', cols: 120, rows: 40 });

      assert.equal(conn.write('{"type":"resize","cols":1,"rows":1}'), true);
      assert.equal(conn.write(new Uint8Array([0x1b, 0x5b, 0x41])), true);
      conn.resize(91, 27);
      await until(() => s.frames.length >= 4, 'input and the new size');
      assert.deepEqual(
        s.frames.slice(1).map((f) => [f.binary, f.data.toString('latin1')]),
        [
          [true, '{"type":"resize","cols":1,"rows":1}'],
          [true, '\x1b[A'],
          [false, '{"type":"resize","cols":91,"rows":27}'],
        ],
        'keystrokes that look like JSON still go as binary; the size goes as text',
      );

      s.ws.send('text frame ', { binary: false });
      s.ws.send(Buffer.from('binary frame'), { binary: true });
      await until(() => w.text() === 'text frame binary frame', () => `output, got ${JSON.stringify(w.text())}`);
      assert.ok(w.received.every((b) => Buffer.isBuffer(b)), 'text and binary frames both arrive as bytes');
      assert.equal(conn.unacked, 'text frame binary frame'.length);
      conn.ack(5);
      assert.equal(conn.unacked, 'text frame binary frame'.length - 5);
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('the server dropping the socket → reconnecting, then open again with the size re-sent', async () => {
    const p = await fakePlatform();
    const conn = new TtyConnection(p.options());
    const w = watch(conn);
    try {
      await conn.connect();
      conn.resize(132, 43);
      await until(() => p.sockets[0].frames.length >= 2, 'the first socket got both sizes');
      p.sockets[0].ws.terminate();
      const r = await w.reach('reconnecting');
      const lost = w.states[r] as Extract<TtyState, { kind: 'reconnecting' }>;
      assert.equal(lost.attempt, 1);
      assert.match(lost.reason, /closed \(1006/);
      assert.equal(conn.write('lost'), false, 'input while reconnecting is dropped, not queued');
      await w.reach('open', r);
      assert.equal(p.sockets.length, 2);
      const s = p.sockets[1];
      await until(() => s.frames.length >= 1, 'the resize frame on the new socket');
      assert.deepEqual(json(s.frames[0]), { type: 'resize', cols: 132, rows: 43 }, 'the last known size, first');
      assert.equal(conn.write('again\r'), true);
      await until(() => s.frames.length >= 2, 'input on the new socket');
      assert.equal(s.frames[1].data.toString(), 'again\r');
      assert.ok(!s.frames.some((f) => f.data.toString() === 'lost'));
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('a half-open socket that stops answering pings is detected and replaced', async () => {
    const p = await fakePlatform();
    // The first server socket stops reading right after the size frame: pings go unanswered.
    p.ctl.onSocket = (s) => {
      if (p.sockets.length === 1) s.ws.once('message', () => (s.ws as unknown as { _socket: Socket })._socket.pause());
    };
    const pingIntervalMs = 100;
    const pongTimeoutMs = 200;
    const conn = new TtyConnection(p.options({ pingIntervalMs, pongTimeoutMs }));
    const w = watch(conn);
    try {
      await conn.connect();
      const openedAt = Date.now();
      const r = await w.reach('reconnecting');
      const detectedAfter = Date.now() - openedAt;
      assert.match((w.states[r] as Extract<TtyState, { kind: 'reconnecting' }>).reason, /no answer to a keepalive ping within 200 ms/);
      assert.ok(detectedAfter >= pongTimeoutMs, `not before the pong deadline (${detectedAfter} ms)`);
      await w.reach('open', r);
      // The new socket answers: several pings later it is still the same, open socket.
      await until(() => p.sockets[1]?.pings >= 3, 'three pings on the healthy socket');
      assert.equal(conn.state.kind, 'open');
      assert.equal(p.sockets.length, 2);
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('a wall-clock jump (the machine slept) treats the socket as dead and reconnects', async () => {
    const p = await fakePlatform();
    let skew = 0;
    const conn = new TtyConnection(p.options({ now: () => Date.now() + skew, clockTickMs: 20 }));
    const w = watch(conn);
    try {
      await conn.connect();
      skew += 60_000;
      const r = await w.reach('reconnecting');
      assert.match((w.states[r] as Extract<TtyState, { kind: 'reconnecting' }>).reason, /slept or its clock jumped/);
      await w.reach('open', r);
      assert.equal(p.sockets.length, 2);
      await p.sockets[0].closed;
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('HTTP 401 on the upgrade → unauthorized, and it stops trying', async () => {
    const p = await fakePlatform();
    p.ctl.refuseWith = 401;
    const conn = new TtyConnection(p.options());
    const w = watch(conn);
    try {
      await conn.connect();
      assert.equal(conn.state.kind, 'unauthorized');
      assert.match((conn.state as Extract<TtyState, { kind: 'unauthorized' }>).message, /refused the session's token \(HTTP 401\)/);
      assert.equal(p.upgrades.length, 1);
      assert.equal(w.kinds(), 'connecting → unauthorized');
      // After signing in again the UI may retry.
      p.ctl.refuseWith = undefined;
      conn.reconnectNow();
      await w.reach('open');
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('a token missing from either place is refused by this server (so the test above proves both are sent)', async () => {
    const p = await fakePlatform();
    try {
      const status = (url: string, headers: Record<string, string>) =>
        new Promise<number>((resolve, reject) => {
          const ws = new WebSocket(url, { headers });
          ws.once('open', () => (ws.terminate(), resolve(101)));
          ws.once('unexpected-response', (_q, res) => (res.resume(), ws.terminate(), resolve(res.statusCode ?? 0)));
          ws.once('error', (e) => (e.message.includes('closed before') ? undefined : reject(e)));
        });
      const ws = p.url.replace('http', 'ws') + TTY_PATH;
      assert.equal(await status(`${ws}?token=${TOKEN}`, {}), 401);
      assert.equal(await status(ws, { authorization: `Bearer ${TOKEN}` }), 401);
      assert.equal(await status(`${ws}?token=${TOKEN}`, { authorization: `Bearer ${TOKEN}` }), 101);
    } finally {
      await p.close();
    }
  });

  it('HTTP 401 on the session GET (a real PlatformError) → unauthorized', async () => {
    const p = await fakePlatform();
    const wrongKey = new PlatformClient({ baseUrl: p.url, apiKey: 'not-the-master-key', retries: 0 });
    const conn = new TtyConnection(p.options({ getSession: (signal) => wrongKey.getSession(SID, { signal }) }));
    try {
      await conn.connect();
      assert.equal(conn.state.kind, 'unauthorized');
      assert.match((conn.state as Extract<TtyState, { kind: 'unauthorized' }>).message, /master key was rejected/);
      assert.equal(p.upgrades.length, 0);
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('a session that is dead when connecting → ended with its reason; nothing is opened', async () => {
    const p = await fakePlatform();
    p.session.status = 'dead';
    p.session.failure_reason = 'process exited (code 3)';
    const conn = new TtyConnection(p.options());
    try {
      await conn.connect();
      assert.deepEqual(conn.state, { kind: 'ended', status: 'dead', reason: 'process exited (code 3)' });
      assert.equal(p.upgrades.length, 0);
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('the program exits: a normal close (1005) and a dead session → ended, no reattach', async () => {
    const p = await fakePlatform();
    const conn = new TtyConnection(p.options({ backoff: { minMs: 60_000, maxMs: 60_000 } }));
    const w = watch(conn);
    try {
      await conn.connect();
      p.session.status = 'dead';
      p.session.failure_reason = 'process exited (code 0)';
      p.sockets[0].ws.send('\r\n[bridge] process exited (code 0)\r\n');
      p.sockets[0].ws.close();
      assert.equal(await p.sockets[0].closed, 1005);
      const e = await w.reach('ended');
      assert.deepEqual(w.states[e], { kind: 'ended', status: 'dead', reason: 'process exited (code 0)' });
      assert.match(w.text(), /process exited/);
      assert.equal(p.upgrades.length, 1);
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('a server that keeps closing fresh connections while the session stays ready gets the backoff', async () => {
    const p = await fakePlatform();
    p.ctl.onSocket = (s) => s.ws.close();
    const conn = new TtyConnection(p.options());
    const w = watch(conn);
    try {
      await conn.connect();
      await until(() => w.states.filter((s) => s.kind === 'reconnecting').length >= 4, () => `four retries (seen: ${w.kinds()})`);
      const delays = w.states.filter((s): s is Extract<TtyState, { kind: 'reconnecting' }> => s.kind === 'reconnecting').map((s) => s.delayMs);
      assert.equal(delays[0], 0, 'the first normal close checks the session at once');
      assert.ok(delays.slice(1).every((d) => d >= 20), `then it backs off: ${delays.join(', ')}`);
      assert.ok(delays[3] > delays[1], `growing: ${delays.join(', ')}`);
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  for (const status of ['failed', 'dead', 'stopped', 'deleted']) {
    it(`a reconnect that finds the session ${status} → ended (fake getSession)`, async () => {
      const p = await fakePlatform();
      let calls = 0;
      const conn = new TtyConnection(
        p.options({
          getSession: async () => (++calls === 1 ? { ...p.session } : { id: SID, status, failure_reason: status === 'failed' ? 'image pull failed' : null }),
        }),
      );
      const w = watch(conn);
      try {
        await conn.connect();
        p.sockets[0].ws.terminate();
        const e = await w.reach('ended');
        assert.deepEqual(w.states[e], { kind: 'ended', status, reason: status === 'failed' ? 'image pull failed' : `The session is ${status}.` });
        assert.equal(p.upgrades.length, 1);
      } finally {
        conn.dispose();
        await p.close();
      }
    });
  }

  it('a session that no longer exists (404 on GET) → ended as deleted', async () => {
    const conn = new TtyConnection({
      sessionId: SID,
      baseUrl: 'http://127.0.0.1:1',
      log,
      getSession: async () => {
        throw new PlatformError(404, "session 'ses_1' not found", 'GET', `/sessions/${SID}`, '127.0.0.1:1');
      },
    });
    try {
      await conn.connect();
      assert.deepEqual(conn.state, { kind: 'ended', status: 'deleted', reason: 'The session no longer exists.' });
    } finally {
      conn.dispose();
    }
  });

  it('network errors and a session still creating are retried with backoff until it is ready', async () => {
    const p = await fakePlatform();
    const answers: (() => Promise<Session>)[] = [
      async () => {
        throw new PlatformUnreachableError(p.url, 'connect ECONNREFUSED', 'ECONNREFUSED');
      },
      async () => ({ id: SID, status: 'creating', phase: 'pod_pending' }),
    ];
    const conn = new TtyConnection(p.options({ getSession: (signal) => (answers.shift() ?? (() => p.client.getSession(SID, { signal })))() }));
    const w = watch(conn);
    try {
      await conn.connect();
      await w.reach('open');
      const retries = w.states.filter((s): s is Extract<TtyState, { kind: 'reconnecting' }> => s.kind === 'reconnecting');
      assert.deepEqual(
        retries.map((s) => [s.attempt, s.reason.replace(/:.*/, '')]),
        [
          [2, 'cannot check the session'],
          [3, 'the session is creating (pod_pending)'],
        ],
      );
      assert.ok(retries[1].delayMs >= retries[0].delayMs, 'the delay grows');
      assert.ok(retries.every((s) => s.delayMs >= 20 && s.delayMs <= 200), 'within minMs..maxMs');
      assert.deepEqual(
        w.states.filter((s) => s.kind === 'connecting').map((s) => (s as { attempt: number }).attempt),
        [1, 2, 3],
      );
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('reconnectNow() skips the backoff wait', async () => {
    const p = await fakePlatform();
    let failOnce = true;
    const conn = new TtyConnection(
      p.options({
        backoff: { minMs: 600_000, maxMs: 600_000 },
        getSession: async (signal) => {
          if (failOnce) {
            failOnce = false;
            throw new PlatformUnreachableError(p.url, 'socket hang up', 'ECONNRESET');
          }
          return p.client.getSession(SID, { signal });
        },
      }),
    );
    const w = watch(conn);
    try {
      await conn.connect();
      assert.equal(conn.state.kind, 'reconnecting');
      assert.equal((conn.state as { delayMs: number }).delayMs, 600_000);
      conn.reconnectNow();
      await w.reach('open');
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('flow control: without acks reading pauses and the server is held back; acks resume it', async () => {
    const p = await fakePlatform();
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    const server = { sent: 0, maxBuffered: 0 };
    p.ctl.onSocket = (s) => {
      const pump = () => {
        while (s.ws.readyState === WebSocket.OPEN && server.sent < total && s.ws.bufferedAmount < 4 * 1024 * 1024) {
          s.ws.send(chunk, { binary: true });
          server.sent += chunk.length;
        }
        server.maxBuffered = Math.max(server.maxBuffered, s.ws.bufferedAmount);
        if (s.ws.readyState === WebSocket.OPEN && server.sent < total) setTimeout(pump, 2);
      };
      pump();
    };
    const highWaterBytes = 256 * 1024;
    const lowWaterBytes = 64 * 1024;
    // Short keepalive periods: a paused reader must not be mistaken for a dead socket.
    const conn = new TtyConnection(p.options({ highWaterBytes, lowWaterBytes, pingIntervalMs: 50, pongTimeoutMs: 100 }));
    let received = 0;
    let autoAck = false;
    conn.onData((b) => {
      received += b.length;
      if (autoAck) conn.ack(b.length);
    });
    try {
      await conn.connect();
      // The client stops reading, its TCP window fills, and the server can no longer send.
      await until(() => conn.readingPaused && p.sockets[0].ws.bufferedAmount >= 4 * 1024 * 1024, () => `paused=${conn.readingPaused} received=${received} serverBuffered=${p.sockets[0].ws.bufferedAmount}`);
      assert.equal(conn.unacked, received);
      assert.ok(received <= highWaterBytes + 256 * 1024, `received ${received} bytes, about the high-water mark`);
      assert.ok(server.sent - received > 4 * 1024 * 1024, 'the rest waits on the server');
      // Stay paused for several keepalive periods: nothing more is read, and the pause (no pong can
      // be read either) is not mistaken for a dead socket.
      const pausedAt = received;
      await new Promise((r) => setTimeout(r, 4 * (50 + 100)));
      assert.equal(received, pausedAt, 'bytes received stop growing while paused');
      assert.equal(conn.state.kind, 'open');
      // Acknowledge: reading resumes and everything arrives.
      autoAck = true;
      conn.ack(received);
      await until(() => received === total, () => `all ${total} bytes (got ${received})`, 60_000);
      assert.equal(conn.readingPaused, false);
      assert.equal(conn.state.kind, 'open');
      assert.equal(p.sockets.length, 1, 'no reconnect while paused');
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('flow control with a server that does not offer acks (the platform): reading pauses at 256 KiB by default, and no ack is ever sent', async () => {
    const p = await fakePlatform();
    const total = 1024 * 1024;
    const chunk = Buffer.alloc(16 * 1024, 0x79);
    p.ctl.onSocket = (s) => {
      for (let sent = 0; sent < total; sent += chunk.length) s.ws.send(chunk, { binary: true });
    };
    const conn = new TtyConnection(p.options());
    let received = 0;
    conn.onData((b) => void (received += b.length));
    try {
      await conn.connect();
      assert.equal(p.upgrades[0].flow, '1', 'every URL asks for ack flow control');
      assert.equal(conn.flowControl, 'pause', 'the server did not answer that it acks');
      await until(() => conn.readingPaused, () => `reading paused (received ${received})`);
      assert.ok(received <= 256 * 1024 + chunk.length, `paused after ${received} bytes`);
      // The consumer acknowledges everything, in small and large pieces: reading resumes.
      let acked = 0;
      while (acked < total) {
        await until(() => received > acked, () => `more output (received ${received}, acked ${acked})`);
        const n = received - acked;
        conn.ack(Math.min(n, 1000));
        if (n > 1000) conn.ack(n - 1000);
        acked += n;
      }
      assert.equal(conn.unacked, 0);
      assert.equal(conn.readingPaused, false);
      // Acks are coalesced for a few ms at most: give a stray one time to show up on the wire.
      await new Promise((r) => setTimeout(r, 100));
      const text = p.sockets[0].frames.filter((f) => !f.binary).map((f) => json(f) as { type: string });
      assert.deepEqual(text.map((m) => m.type), ['resize'], 'only the size went as text: an ack would be input to this server');
      assert.equal(p.sockets.length, 1);
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('flow control with a server that offers acks (the bridge): consumed bytes go to it as coalesced ack frames, and reading never pauses', async () => {
    const p = await fakePlatform();
    p.ctl.acceptFlow = true;
    const total = 1024 * 1024;
    const chunk = Buffer.alloc(16 * 1024, 0x79);
    p.ctl.onSocket = (s) => {
      for (let sent = 0; sent < total; sent += chunk.length) s.ws.send(chunk, { binary: true });
    };
    const conn = new TtyConnection(p.options());
    let received = 0;
    let everPaused = false;
    conn.onData((b) => {
      received += b.length;
      everPaused ||= conn.readingPaused;
    });
    try {
      await conn.connect();
      assert.equal(conn.flowControl, 'ack');
      // Nothing acknowledged, far past the high-water mark: the server bounds what it sends, not us.
      await until(() => received === total, () => `all ${total} bytes (got ${received})`);
      assert.equal(everPaused, false, 'reading never paused');
      const s = p.sockets[0];
      const ackFrames = () => s.frames.filter((f) => !f.binary && (json(f) as { type: string }).type === 'ack');
      const ackedOnWire = () => ackFrames().reduce((n, f) => n + (json(f) as { bytes: number }).bytes, 0);
      assert.equal(ackFrames().length, 0, 'nothing consumed, nothing acknowledged');

      // Small acks are coalesced into one frame.
      conn.ack(100);
      conn.ack(200);
      await until(() => ackedOnWire() === 300, () => `300 bytes acknowledged on the wire (got ${ackedOnWire()})`);
      assert.equal(ackFrames().length, 1);
      assert.equal(ackFrames()[0].data.toString('utf8'), '{"type":"ack","bytes":300}');
      // The rest, in pieces: every consumed byte is acknowledged exactly once.
      for (let left = total - 300; left > 0; left -= 48 * 1024) conn.ack(Math.min(left, 48 * 1024));
      await until(() => ackedOnWire() === total, () => `${total} bytes acknowledged on the wire (got ${ackedOnWire()})`);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(ackedOnWire(), total);
      assert.equal(conn.unacked, 0);
      assert.ok(ackFrames().every((f) => /^\{"type":"ack","bytes":\d+\}$/.test(f.data.toString('utf8'))));
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('after a reconnect, output of the old socket is acknowledged to no one: the new server hears only of its own', async () => {
    const p = await fakePlatform();
    p.ctl.acceptFlow = true;
    p.ctl.onSocket = (s) => s.ws.send(Buffer.alloc(p.sockets.length === 1 ? 100_000 : 30_000, 0x61), { binary: true });
    const conn = new TtyConnection(p.options());
    const w = watch(conn);
    try {
      await conn.connect();
      await until(() => conn.unacked === 100_000, 'the first socket\'s output');
      p.sockets[0].ws.terminate();
      await w.reach('open', (await w.reach('reconnecting')) + 1);
      await until(() => conn.unacked === 130_000, 'the second socket\'s output');
      // The consumer catches up, in the order output was delivered.
      conn.ack(60_000);
      conn.ack(70_000);
      const ackedOnWire = (s: ServerSocket) => s.frames.filter((f) => !f.binary && (json(f) as { type: string }).type === 'ack').reduce((n, f) => n + (json(f) as { bytes: number }).bytes, 0);
      await until(() => ackedOnWire(p.sockets[1]) === 30_000, () => `30000 bytes acknowledged to the new socket (got ${ackedOnWire(p.sockets[1])})`);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(ackedOnWire(p.sockets[1]), 30_000);
      assert.equal(ackedOnWire(p.sockets[0]), 0);
      assert.equal(conn.unacked, 0);
    } finally {
      conn.dispose();
      await p.close();
    }
  });

  it('dispose closes the socket (1000), stops reconnecting and leaves no timers or sockets behind', async () => {
    const p = await fakePlatform();
    const conn = new TtyConnection(p.options({ pingIntervalMs: 50, pongTimeoutMs: 50, clockTickMs: 10 }));
    const w = watch(conn);
    await conn.connect();
    conn.dispose();
    conn.dispose();
    assert.equal(conn.state.kind, 'closed');
    assert.equal(w.states.at(-1)?.kind, 'closed');
    assert.equal(await p.sockets[0].closed, 1000);
    assert.equal(conn.write('x'), false);
    conn.reconnectNow();
    await conn.connect();
    assert.equal(p.upgrades.length, 1, 'nothing reconnects after dispose');
    await p.close();
    const leftovers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r.startsWith('TCP'));
    await until(() => leftovers().length === 0, () => `no timers or sockets left (${leftovers().join(', ')})`);
  });

  it('disposing while the session check is in flight ends everything at once', async () => {
    let aborted = false;
    const conn = new TtyConnection({
      sessionId: SID,
      baseUrl: 'http://127.0.0.1:1',
      log,
      getSession: (signal) =>
        new Promise<Session>((_resolve, reject) => {
          signal?.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          });
        }),
    });
    const w = watch(conn);
    const first = conn.connect();
    conn.dispose();
    await first;
    assert.equal(aborted, true);
    assert.equal(w.kinds(), 'connecting → closed');
  });

  after(() => {
    assert.ok(logLines.length > 0);
    const leaks = logLines.filter((l) => l.includes(TOKEN) || /token=/i.test(l) || l.includes(MASTER));
    assert.deepEqual(leaks, [], 'no log line carries a token or a URL with ?token=');
  });
});
