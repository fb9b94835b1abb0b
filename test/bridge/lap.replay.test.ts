/**
 * The `lap` CLI of the LiteLLM Agent Platform (cli/bin/lap.mjs) must work against the bridge. This
 * replays its exact request sequence with the same primitives it uses (global fetch, `ws`):
 * `lap agents`, `lap <name>` (first-page lookup, session create titled "lap-cli", 1.5 s polls,
 * attach with the token in header and query, resize on open, stdin as binary, ping, detach on a
 * lone Ctrl-D by closing), then `lap --resume <id>` (GET, must be ready, attach again).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { Terminal } from '@xterm/headless';
import { removeStateDir, startBridge, type RunningBridge } from './harness';

let bridge: RunningBridge;
before(async () => {
  bridge = await startBridge({ runtime: 'host' });
});
after(async () => {
  // Sessions outlive the bridge by design: end them, or their shells stay behind.
  for (const s of await bridge.client.listSessions({ limit: 200 })) await bridge.client.deleteSession(s.id).catch(() => undefined);
  await bridge.stop();
  removeStateDir(bridge.stateDir);
});

function deriveTtyUrl(base: string, session: { tty_url?: string | null }): string {
  // lap: a relative tty_url is joined to the base with http→ws.
  assert.ok(session.tty_url, 'tty_url is set');
  const baseWs = base.replace(/^http/, 'ws').replace(/\/+$/, '');
  return baseWs + (session.tty_url!.startsWith('/') ? session.tty_url : `/${session.tty_url}`);
}

async function attachLikeLap(wsUrl: string, token: string, script: (ws: WebSocket, screen: () => Promise<string>) => Promise<void>): Promise<number> {
  const ws = new WebSocket(`${wsUrl}${wsUrl.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`, { headers: { authorization: `Bearer ${token}` } });
  const term = new Terminal({ cols: 120, rows: 40, allowProposedApi: true });
  ws.on('message', (data: Buffer, isBinary) => term.write(isBinary || Buffer.isBuffer(data) ? data : Buffer.from(data)));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  ws.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
  ws.ping();
  const screen = async () => {
    await new Promise<void>((r) => term.write('', r));
    const b = term.buffer.active;
    return Array.from({ length: b.length }, (_, y) => b.getLine(y)?.translateToString(true) ?? '').join('\n');
  };
  await script(ws, screen);
  return closed;
}

async function until(screen: () => Promise<string>, re: RegExp): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!re.test(await screen())) {
    if (Date.now() > deadline) throw new Error(`never saw ${re}:\n${(await screen()).trim().split('\n').slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('lap agents → lap <name> → detach (Ctrl-D) → lap --resume <id>, against the bridge', { timeout: 120_000 }, async () => {
  const cfg = { base: bridge.url, key: bridge.masterKey };
  const headers = { authorization: `Bearer ${cfg.key}` };
  const created = await fetch(`${cfg.base}/api/v1/managed_agents/agents`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'lap-shell', model: 'none', harness_id: 'shell' }) });
  assert.equal(created.status, 200);

  // lap agents
  const list = await fetch(`${cfg.base}/api/v1/managed_agents/agents`, { headers });
  assert.ok(list.ok);
  const { data } = (await list.json()) as { data: { id: string; name: string; harness_id: string; supports_tui?: boolean }[] };
  const hit = data.find((a) => a.name === 'lap-shell');
  assert.ok(hit, 'found on the first page');
  assert.equal(hit.supports_tui, true, 'lap tags it [tui]');
  assert.match(hit.id, /^[0-9a-f-]{36}$/i, 'a UUID, so `lap <uuid>` works too');

  // lap lap-shell
  const res = await fetch(`${cfg.base}/api/v1/managed_agents/agents/${hit.id}/session`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ title: 'lap-cli' }) });
  assert.ok(res.ok);
  const { id: sid } = (await res.json()) as { id: string };
  type LapSession = { status: string; phase?: string; tty_url?: string | null; tty_token?: string | null; supports_tui?: boolean };
  let session: LapSession | null = null;
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 1500));
    const r = await fetch(`${cfg.base}/api/v1/managed_agents/sessions/${sid}`, { headers });
    assert.ok(r.ok);
    session = (await r.json()) as LapSession;
    if (session!.status === 'ready' || session!.status === 'failed' || session!.status === 'dead') break;
  }
  assert.equal(session?.status, 'ready');
  assert.equal(session!.supports_tui, true);
  const wsUrl = deriveTtyUrl(cfg.base, session!);
  const code = await attachLikeLap(wsUrl, session!.tty_token!, async (ws, screen) => {
    ws.send(Buffer.from('export LAP_MARK=resumed-ok; echo lap-$((20+22))\r'));
    await until(screen, /^lap-42\s*$/m);
    // A lone Ctrl-D detaches: lap closes the socket; the remote shell lives on.
    ws.close();
  });
  assert.equal(code, 1005);

  // lap --resume <sid>
  const r = await fetch(`${cfg.base}/api/v1/managed_agents/sessions/${sid}`, { headers });
  const again = (await r.json()) as LapSession;
  assert.equal(again!.status, 'ready', 'lap refuses to attach unless ready');
  await attachLikeLap(deriveTtyUrl(cfg.base, again!), again!.tty_token!, async (ws, screen) => {
    await until(screen, /^lap-42\s*$/m);
    ws.send(Buffer.from('echo "$LAP_MARK"\r'));
    await until(screen, /^resumed-ok\s*$/m);
    ws.close();
  });
});
