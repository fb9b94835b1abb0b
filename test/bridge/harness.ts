/**
 * Test helpers for the bridge: run `dist/bridge.js serve` as a real process (restartable on the same
 * state dir), and attach to a session's /tty with a headless xterm that renders what a user would see.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Terminal } from '@xterm/headless';
import WebSocket from 'ws';
import { PlatformClient } from '../../extension/platformClient';
import type { Session } from '../../protocol/platform';

export const REPO = resolve(__dirname, '..', '..');
export const BRIDGE_JS = join(REPO, 'dist', 'bridge.js');
const GUARD_MS = 20_000;

export interface BridgeOptions {
  runtime: 'docker' | 'host';
  stateDir?: string;
  dockerHost?: string;
  image?: string;
  masterKey?: string;
  extraArgs?: string[];
  /** Extra environment for the bridge process. */
  env?: Record<string, string>;
}

export interface RunningBridge {
  url: string;
  pid: number;
  masterKey: string;
  stateDir: string;
  client: PlatformClient;
  stderr: string[];
  process: ChildProcess;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit (a crash). */
  kill(): Promise<void>;
}

export async function startBridge(o: BridgeOptions): Promise<RunningBridge> {
  const stateDir = o.stateDir ?? mkdtempSync(join(tmpdir(), 'sa-bridge-'));
  const masterKey = o.masterKey ?? `test-${randomBytes(16).toString('hex')}`;
  const args = [BRIDGE_JS, 'serve', '--port', '0', '--state-dir', stateDir, '--runtime', o.runtime];
  if (o.dockerHost) args.push('--docker-host', o.dockerHost);
  if (o.image) args.push('--image', o.image);
  args.push(...(o.extraArgs ?? []));
  const child = spawn(process.execPath, args, { env: { ...process.env, ...o.env, SANDBOX_AGENTS_MASTER_KEY: masterKey }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const line = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`bridge did not start:\n${stderr.join('\n')}`)), GUARD_MS);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(t);
      res(l);
    });
    void exited.then((code) => rej(new Error(`bridge exited (${code}) before listening:\n${stderr.join('\n')}`)));
  });
  const { url, pid } = JSON.parse(line) as { url: string; pid: number };
  return {
    url,
    pid,
    masterKey,
    stateDir,
    stderr,
    process: child,
    client: new PlatformClient({ baseUrl: url, apiKey: masterKey, retries: 0 }),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Hands a model provider's upstream and key to the bridge's memory; the HTTP status (204 when taken). */
export async function setProvider(bridge: { url: string; masterKey: string }, provider: string, body: unknown): Promise<number> {
  const res = await fetch(`${bridge.url}/bridge/v1/providers/${provider}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${bridge.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

/** For `after` hooks: stops the bridge's live sessions, then the bridge, and removes its state dir. */
export async function shutDown(bridge: RunningBridge | undefined): Promise<void> {
  if (!bridge) return;
  for (const s of await bridge.client.listSessions({ limit: 200 }).catch(() => [])) {
    if (s.status === 'ready' || s.status === 'creating') await bridge.client.deleteSession(s.id).catch(() => undefined);
  }
  await bridge.stop();
  removeStateDir(bridge.stateDir);
}

export function removeStateDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Polls until the session leaves `creating`. */
export async function settle(client: PlatformClient, id: string): Promise<Session> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const s = await client.getSession(id);
    if (s.status !== 'creating') return s;
    if (Date.now() > deadline) throw new Error(`session ${id} still creating (phase ${s.phase})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function readyShellSession(bridge: RunningBridge, name = `sh-${randomBytes(3).toString('hex')}`, extra: Record<string, unknown> = {}) {
  const agent = await bridge.client.createAgent({ name, model: 'none', harness_id: 'shell', ...extra });
  const created = await bridge.client.createSession(agent.id, { title: 'test' });
  const session = await settle(bridge.client, created.id);
  if (session.status !== 'ready') throw new Error(`session ${session.id} is ${session.status}: ${session.failure_reason}`);
  return { agent, session };
}

export function ttyUrl(bridge: { url: string }, session: Pick<Session, 'id' | 'tty_url'>): string {
  return new URL(session.tty_url ?? `/api/v1/managed_agents/sessions/${session.id}/tty`, bridge.url).toString().replace(/^http/, 'ws');
}

export interface TtyTestClient {
  ws: WebSocket;
  term: Terminal;
  /** Every byte received, as text. */
  received(): string;
  type(text: string): void;
  resize(cols: number, rows: number): void;
  /** The rendered screen and scrollback, one string per line. */
  screen(): Promise<string[]>;
  waitFor(match: string | RegExp, timeoutMs?: number): Promise<string[]>;
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/** Attaches like the extension does: token in the header and in `?token=`, resize right after open. */
export async function attach(bridge: { url: string }, session: Pick<Session, 'id' | 'tty_url' | 'tty_token'>, o: { cols?: number; rows?: number; token?: string | null; headers?: Record<string, string> } = {}): Promise<TtyTestClient> {
  const token = o.token === undefined ? session.tty_token! : o.token;
  const url = new URL(ttyUrl(bridge, session));
  if (token) url.searchParams.set('token', token);
  const ws = new WebSocket(url, { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...o.headers } });
  const cols = o.cols ?? 100;
  const rows = o.rows ?? 30;
  const term = new Terminal({ cols, rows, scrollback: 10_000, allowProposedApi: true });
  let text = '';
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  ws.on('message', (data: Buffer) => {
    term.write(data);
    text += data.toString('utf8');
  });
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('unexpected-response', (_req, r) => rej(Object.assign(new Error(`upgrade refused: ${r.statusCode}`), { status: r.statusCode })));
    ws.once('error', rej);
  });
  ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  const screen = async () => {
    await new Promise<void>((r) => term.write('', r));
    const b = term.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < b.length; y++) lines.push(b.getLine(y)?.translateToString(true) ?? '');
    return lines;
  };
  return {
    ws,
    term,
    received: () => text,
    type: (t) => ws.send(Buffer.from(t, 'utf8')),
    resize: (c, r) => {
      term.resize(c, r);
      ws.send(JSON.stringify({ type: 'resize', cols: c, rows: r }));
    },
    screen,
    waitFor: async (match, timeoutMs = GUARD_MS) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const lines = await screen();
        if (lines.some((l) => (typeof match === 'string' ? l.includes(match) : match.test(l)))) return lines;
        if (Date.now() > deadline) throw new Error(`screen never showed ${match}:\n${lines.filter((l) => l.trim()).slice(-15).join('\n')}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    closed,
    close: async () => {
      if (ws.readyState === ws.CLOSED) return;
      ws.close();
      await closed;
    },
  };
}

/** Upgrade attempt that reports the HTTP status of a refusal (401, 403, 404, 409) or 101. */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      res(101);
    });
    ws.once('unexpected-response', (_req, r) => {
      res(r.statusCode ?? 0);
      r.resume();
      ws.terminate();
    });
    ws.once('error', (e) => rej(e));
  });
}
