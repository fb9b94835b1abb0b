/**
 * The terminal through the bridge against the same program straight on a PTY, in the same run:
 * keystroke echo latency, output throughput, reattach (snapshot) time, and the bridge's memory.
 *
 *   node esbuild.config.mjs && node --import tsx bench/tty.bench.ts
 *
 * Runtime `host`: a `shell` session is bash on a PTY owned by a `bridge.js hold` process, so "through
 * the bridge" is WebSocket → bridge → unix socket → holder → PTY and back through the bridge's
 * output batching (and its headless mirror, in a worker thread). "Direct" (the baseline) is a PTY spawned here with node-pty
 * running the same shell and the same commands. A third path, a holder spawned here and spoken to
 * over its socket, splits the bridge's added cost between the holder hop and the bridge itself.
 * Prints a Markdown section for BENCHMARKS.md. It reports; it never fails on a missed target.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as pty from '@lydell/node-pty';
import { SerializeAddon } from '@xterm/addon-serialize';
import { Terminal } from '@xterm/headless';
import WebSocket from 'ws';
import { encodeFrame, Frame, FrameReader } from '../bridge/runtimes/host';
import type { Session } from '../protocol/platform';
import { attach, BRIDGE_JS, readyShellSession, removeStateDir, startBridge, ttyUrl, type RunningBridge } from '../test/bridge/harness';

const ECHO_ROUNDS = 3;
const ECHOES_PER_ROUND = 500;
const BURST_ROUNDS = 5;
const BURST_BYTES = 64 * 2 ** 20;
const FLOODS = [64 * 2 ** 20, 256 * 2 ** 20];
/** More floods for throughput, fewer rounds: text in lines (the mirror drops most of it unparsed) and
 *  coloured lines (escape sequences in every line: it must parse all of it, and holds the PTY to that). */
const LINE_FLOODS = [
  { name: 'lines of `yes`', bytes: 64 * 2 ** 20, command: `yes 'the quick brown fox jumps over the lazy dog 0123456789'` },
  { name: 'coloured lines (`yes` with SGR)', bytes: 32 * 2 ** 20, command: `yes $'\\e[32mthe quick brown fox\\e[0m jumps over the \\e[1mlazy\\e[0m dog'` },
];
const LINE_FLOOD_ROUNDS = 3;
const SCROLLBACK_LINES = 10_000;
const REATTACHES = 20;
const IDLE_SESSIONS = 10;
const COLS = 100;
const ROWS = 30;
const SHELL = process.env.SHELL || '/bin/bash';
const ESC_C = Buffer.from('\x1bc');
/** The bridge's environment for a session's program (bridge/sessions.ts), given to every path. */
const TERM_ENV = { TERM: 'xterm-256color', COLORTERM: 'truecolor', LANG: 'C.UTF-8' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = () => randomBytes(4).toString('hex');
const log = (msg: string) => process.stderr.write(`[tty.bench] ${msg}\n`);

// ------------------------------------------------------------------------------------------------
// Three ways to reach the same program.

type SideName = 'direct' | 'holder' | 'bridge';

interface Side {
  readonly name: SideName;
  write(text: string): void;
  /** Every output chunk, as bytes; returns an unsubscribe. */
  onData(listener: (chunk: Buffer) => void): () => void;
  close(): Promise<void>;
}

function fanOut(): { emit(b: Buffer): void; on(l: (b: Buffer) => void): () => void } {
  const listeners = new Set<(b: Buffer) => void>();
  return {
    emit: (b) => {
      for (const l of listeners) l(b);
    },
    on: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}

function directSide(home: string): Side {
  const p = pty.spawn(SHELL, ['-l'], { name: 'xterm-256color', cols: COLS, rows: ROWS, cwd: home, env: { ...(process.env as Record<string, string>), HOME: home, ...TERM_ENV } });
  const out = fanOut();
  // node-pty hands out strings; all output here is ASCII, so latin1 converts byte for byte, cheaply.
  p.onData((d) => out.emit(Buffer.from(d, 'latin1')));
  const exited = new Promise<void>((r) => p.onExit(() => r()));
  return {
    name: 'direct',
    write: (t) => p.write(t),
    onData: out.on,
    close: async () => {
      p.kill('SIGKILL');
      await Promise.race([exited, sleep(2000)]);
    },
  };
}

/** A holder like the host runtime starts, spoken to over its socket as the bridge does, without the bridge. */
async function holderSide(home: string, children: ChildProcess[]): Promise<Side> {
  const socket = join(home, `${tag()}.sock`);
  const child = spawn(process.execPath, [BRIDGE_JS, 'hold', '--socket', socket, '--cols', String(COLS), '--rows', String(ROWS), '--cwd', home, '--', SHELL, '-l'], {
    stdio: 'ignore',
    env: { ...process.env, HOME: home, ...TERM_ENV, SANDBOX_AGENTS_HOLDER: '1' },
  });
  children.push(child);
  const deadline = Date.now() + 10_000;
  let sock: net.Socket | undefined;
  while (!sock) {
    sock = await new Promise<net.Socket | undefined>((res) => {
      const s = net.createConnection(socket);
      s.once('connect', () => res(s));
      s.once('error', () => res(undefined));
    });
    if (!sock) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('the bench holder did not start');
      await sleep(20);
    }
  }
  const out = fanOut();
  const reader = new FrameReader((type, payload) => {
    if (type === Frame.Data || type === Frame.History) out.emit(payload);
  });
  const s = sock;
  s.on('data', (c: Buffer) => reader.push(c));
  s.on('error', () => undefined);
  return {
    name: 'holder',
    write: (t) => s.write(encodeFrame(Frame.Data, Buffer.from(t, 'utf8'))),
    onData: out.on,
    close: async () => {
      s.write(encodeFrame(Frame.Kill, ''));
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(3000)]);
      s.destroy();
    },
  };
}

/** A raw /tty client (no rendering: the client's own cost stays out of the numbers). */
async function openTty(bridge: RunningBridge, session: Session) {
  const url = new URL(ttyUrl(bridge, session));
  url.searchParams.set('token', session.tty_token!);
  const startedAt = performance.now();
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${session.tty_token}` } });
  const first = new Promise<{ data: Buffer; at: number }>((r) => ws.once('message', (data: Buffer) => r({ data, at: performance.now() })));
  const openedAt = await new Promise<number>((res, rej) => {
    ws.once('open', () => res(performance.now()));
    ws.once('unexpected-response', (_q, r) => rej(new Error(`upgrade refused: ${r.statusCode}`)));
    ws.once('error', rej);
  });
  return { ws, startedAt, openedAt, first };
}

async function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === ws.CLOSED) return;
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  ws.close();
  await Promise.race([closed, sleep(2000)]);
  ws.terminate();
}

function wsSide(ws: WebSocket, close: () => Promise<void>): Side {
  const out = fanOut();
  ws.on('message', (d: Buffer) => out.emit(d));
  return { name: 'bridge', write: (t) => ws.send(Buffer.from(t, 'utf8')), onData: out.on, close };
}

async function bridgeSide(bridge: RunningBridge, sessions: string[]): Promise<Side> {
  const { session } = await readyShellSession(bridge, `bench-${tag()}`);
  sessions.push(session.id);
  const { ws, first } = await openTty(bridge, session);
  await first; // the snapshot: live from here on
  return wsSide(ws, async () => {
    await closeWs(ws);
    await bridge.client.deleteSession(session.id).catch(() => undefined);
  });
}

/** Resolves once `text` is seen in the output (across chunk boundaries), with the bytes seen until then. */
function waitForOutput(side: Side, text: string, timeoutMs = 120_000): Promise<{ at: number; bytes: number }> {
  const needle = Buffer.from(text, 'latin1');
  return new Promise((resolve, reject) => {
    let tail = Buffer.alloc(0);
    let bytes = 0;
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${side.name}: never saw ${JSON.stringify(text)} (got ${bytes} bytes)`));
    }, timeoutMs);
    timer.unref();
    const off = side.onData((chunk) => {
      bytes += chunk.length;
      const seam = tail.length ? Buffer.concat([tail, chunk.subarray(0, needle.length)]) : undefined;
      if (seam?.includes(needle) || chunk.includes(needle)) {
        clearTimeout(timer);
        off();
        resolve({ at: performance.now(), bytes });
        return;
      }
      tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - needle.length)));
    });
  });
}

/** Runs `command` at the prompt; done when a marker printed after it arrives (the echoed command line does not contain it). */
async function run(side: Side, command: string): Promise<{ started: number; at: number; bytes: number }> {
  const t = tag();
  const done = waitForOutput(side, `EN-${t}-D`);
  const started = performance.now();
  side.write(`${command}; printf 'EN-%s-D\\n' ${t}\r`);
  return { started, ...(await done) };
}

// ------------------------------------------------------------------------------------------------
// Measurements, the same on every side.

/** `cat` on a terminal without echo or line buffering: each key comes back as soon as cat reads it. */
async function startEcho(side: Side): Promise<void> {
  const t = tag();
  const ready = waitForOutput(side, `RE-${t}-DY`);
  side.write(`stty -echo -icanon min 1 time 0; printf 'RE-%s-DY\\n' ${t}; exec cat\r`);
  await ready;
  await sleep(300);
}

async function echoRound(side: Side, n: number): Promise<number[]> {
  const samples: number[] = [];
  let want = -1;
  let wake: (() => void) | undefined;
  const off = side.onData((chunk) => {
    if (wake && chunk.includes(want)) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  try {
    for (let i = 0; i < n; i++) {
      const ch = String.fromCharCode(97 + (i % 26));
      want = ch.charCodeAt(0);
      const back = new Promise<void>((r) => (wake = r));
      const t0 = performance.now();
      side.write(ch);
      await back;
      samples.push(performance.now() - t0);
      await sleep(1); // typed, not pasted: each key on its own
    }
  } finally {
    off();
  }
  return samples;
}

// ------------------------------------------------------------------------------------------------
// Processes: RSS and CPU time from /proc.

function rssKiB(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** utime + stime in clock ticks (1/100 s on Linux). */
function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** Until the process has used (almost) no CPU for 300 ms: after a client saw the end of a burst, the bridge may still be parsing it into its mirror. */
async function waitIdle(pid: number, maxMs = 60_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = cpuTicks(pid);
  let quiet = 0;
  while (quiet < 3 && Date.now() < deadline) {
    await sleep(100);
    const now = cpuTicks(pid);
    quiet = now - last <= 1 ? quiet + 1 : 0;
    last = now;
  }
}

/** The `bridge.js hold` processes whose socket lives under `dir`. */
function holderPids(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args[1] === BRIDGE_JS && args[2] === 'hold' && args.some((a) => a.startsWith(dir + '/'))) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

// ------------------------------------------------------------------------------------------------
// Statistics and formatting.

const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
function pct(a: number[], p: number): number {
  const s = sorted(a);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const median = (a: number[]) => pct(a, 50);
const ms = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`;
const mib = (kib: number) => {
  const v = kib / 1024;
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} MiB`;
};
const mibB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function machine(): string {
  let os: string = process.platform;
  try {
    os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    /* not Linux */
  }
  return `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${os}, Node ${process.versions.node}`;
}

// ------------------------------------------------------------------------------------------------

interface Flood {
  bytes: number;
  before: number;
  peak: number;
  after: number;
  holderBefore: number;
  holderPeak: number;
  holderAfter: number;
  seconds: number;
  stalled: string;
  died: string;
}

interface Results {
  echo: Record<SideName, number[]>;
  echoRoundP50: Record<SideName, number[]>;
  burst: Record<SideName, number[]>;
  burstRatio: number[];
  burstBytesAtClient: number[];
  bridgeCpuPerBurst: number[];
  lineFloods: { name: string; bytes: number; rate: Record<SideName, number[]>; ratio: number[] }[];
  reattach: { full: { open: number[]; total: number[]; bytes: number; lines: number }; idle: { open: number[]; total: number[]; bytes: number }; serialize: number[] };
  memory: { zero: number; ten: number; holderEach: number; floods: Flood[] };
}

async function main(): Promise<void> {
  if (!existsSync(BRIDGE_JS)) throw new Error('build the bridge first: node esbuild.config.mjs');
  const bridges: RunningBridge[] = [];
  const sessions = new Map<RunningBridge, string[]>();
  const sides: Side[] = [];
  const children: ChildProcess[] = [];
  const home = mkdtempSync(join(tmpdir(), 'sa-bench-'));
  const newBridge = async () => {
    const b = await startBridge({ runtime: 'host' });
    bridges.push(b);
    sessions.set(b, []);
    return b;
  };
  const openAll = async (b: RunningBridge): Promise<Record<SideName, Side>> => {
    const all = { direct: directSide(home), holder: await holderSide(home, children), bridge: await bridgeSide(b, sessions.get(b)!) };
    sides.push(...Object.values(all));
    return all;
  };
  const orders: SideName[][] = [
    ['direct', 'holder', 'bridge'],
    ['bridge', 'holder', 'direct'],
  ];
  const r = { echo: {}, echoRoundP50: {}, burst: {} } as Results;
  for (const k of ['direct', 'holder', 'bridge'] as const) {
    r.echo[k] = [];
    r.echoRoundP50[k] = [];
    r.burst[k] = [];
  }
  try {
    // Memory first, on a bridge of its own (its floods may take it down).
    r.memory = await memory(await newBridge(), sessions.get(bridges[0])!);
    const b = await newBridge();

    log('echo latency');
    const echo = await openAll(b);
    for (const s of Object.values(echo)) await startEcho(s);
    for (let round = 0; round < ECHO_ROUNDS; round++) {
      for (const which of orders[round % 2]) {
        await echoRound(echo[which], 20); // warm-up
        const s = await echoRound(echo[which], ECHOES_PER_ROUND);
        r.echo[which].push(...s);
        r.echoRoundP50[which].push(median(s));
        log(`  ${which} round ${round + 1}: p50 ${ms(median(s))}, p99 ${ms(pct(s, 99))}`);
      }
    }
    for (const s of Object.values(echo)) await s.close();

    log('throughput');
    const burst = await openAll(b);
    for (const s of Object.values(burst)) await run(s, 'true');
    r.burstRatio = [];
    r.burstBytesAtClient = [];
    r.bridgeCpuPerBurst = [];
    for (let round = 0; round < BURST_ROUNDS; round++) {
      const rate: Partial<Record<SideName, number>> = {};
      for (const which of orders[round % 2]) {
        await waitIdle(b.pid);
        const cpu0 = cpuTicks(b.pid);
        const res = await run(burst[which], `head -c ${BURST_BYTES} /dev/zero | tr '\\0' x`);
        rate[which] = BURST_BYTES / 2 ** 20 / ((res.at - res.started) / 1000);
        r.burst[which].push(rate[which]);
        if (which === 'bridge') {
          r.burstBytesAtClient.push(res.bytes);
          await waitIdle(b.pid);
          r.bridgeCpuPerBurst.push((cpuTicks(b.pid) - cpu0) / 100);
        }
        log(`  ${which} round ${round + 1}: ${rate[which].toFixed(1)} MiB/s (${res.bytes} bytes received)`);
      }
      r.burstRatio.push(rate.bridge! / rate.direct!);
    }
    r.lineFloods = [];
    for (const f of LINE_FLOODS) {
      const lf = { name: f.name, bytes: f.bytes, rate: { direct: [], holder: [], bridge: [] } as Record<SideName, number[]>, ratio: [] as number[] };
      for (let round = 0; round < LINE_FLOOD_ROUNDS; round++) {
        const rate: Partial<Record<SideName, number>> = {};
        for (const which of orders[round % 2]) {
          await waitIdle(b.pid);
          const res = await run(burst[which], `${f.command} | head -c ${f.bytes}`);
          rate[which] = f.bytes / 2 ** 20 / ((res.at - res.started) / 1000);
          lf.rate[which].push(rate[which]);
          log(`  ${f.name}, ${which} round ${round + 1}: ${rate[which].toFixed(1)} MiB/s`);
        }
        lf.ratio.push(rate.bridge! / rate.direct!);
      }
      r.lineFloods.push(lf);
    }
    for (const s of Object.values(burst)) await s.close();

    log('reattach');
    r.reattach = await reattach(b, sessions.get(b)!);
  } finally {
    for (const s of sides) await s.close().catch(() => undefined);
    for (const b of bridges) {
      for (const sid of sessions.get(b) ?? []) await b.client.deleteSession(sid).catch(() => undefined);
      await b.stop();
      await endHolders(b.stateDir);
      removeStateDir(b.stateDir);
    }
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await endHolders(home);
    rmSync(home, { recursive: true, force: true });
  }
  console.log(report(r));
}

/** Holders that outlived their session (a bridge that died cannot stop them) are ours: end them by pid. */
async function endHolders(dir: string): Promise<void> {
  const pids = holderPids(dir);
  for (const pid of pids) {
    log(`  ending leftover holder ${pid}`);
    process.kill(pid, 'SIGTERM'); // the holder hangs up its shell's process group, then exits
  }
  await sleep(pids.length ? 1500 : 0);
  for (const pid of holderPids(dir)) process.kill(pid, 'SIGKILL');
}

async function memory(b: RunningBridge, mine: string[]): Promise<Results['memory']> {
  log('memory');
  await sleep(1500);
  await waitIdle(b.pid);
  const zero = rssKiB(b.pid);
  for (let i = 0; i < IDLE_SESSIONS; i++) mine.push((await readyShellSession(b, `idle-${i}`)).session.id);
  await sleep(2000);
  await waitIdle(b.pid);
  const ten = rssKiB(b.pid);
  const holders = holderPids(b.stateDir);
  const holderEach = holders.reduce((a, p) => a + rssKiB(p), 0) / Math.max(1, holders.length);
  log(`  0 sessions ${mib(zero)}, ${IDLE_SESSIONS} idle ${mib(ten)}, holders ${mib(holderEach)} each`);
  for (const sid of mine.splice(0)) await b.client.deleteSession(sid);

  const { session } = await readyShellSession(b, 'flood');
  mine.push(session.id);
  const floods: Flood[] = [];
  for (const bytes of FLOODS) {
    const f = await flood(b, session, bytes);
    floods.push(f);
    log(`  flood ${JSON.stringify(f)}`);
    if (f.died) break;
  }
  return { zero, ten, holderEach, floods };
}

/** A flood with one client reading everything and one that never reads. */
async function flood(b: RunningBridge, session: Session, bytes: number): Promise<Flood> {
  const reader = await openTty(b, session);
  await reader.first;
  const stalled = await openTty(b, session);
  await stalled.first;
  const stalledSocket = (stalled.ws as unknown as { _socket: net.Socket })._socket;
  stalledSocket.pause();
  const side = wsSide(reader.ws, async () => undefined);
  await run(side, 'true');
  await waitIdle(b.pid);
  const [holder] = holderPids(b.stateDir);
  const before = rssKiB(b.pid);
  const holderBefore = rssKiB(holder);
  let peak = before;
  let holderPeak = holderBefore;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssKiB(b.pid));
    holderPeak = Math.max(holderPeak, rssKiB(holder));
  }, 50);
  let seconds = 0;
  let died = '';
  let onExit = (): void => undefined;
  const exited = new Promise<never>((_r, rej) => {
    onExit = () => rej(new Error(`bridge exited (${b.process.signalCode ?? b.process.exitCode}): ${b.stderr.find((l) => /^\s*\w*Error: /.test(l))?.trim() ?? b.stderr.slice(-2).join(' | ')}`));
    b.process.once('exit', onExit);
  });
  exited.catch(() => undefined);
  try {
    const res = await Promise.race([run(side, `yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c ${bytes}`), exited]);
    seconds = (res.at - res.started) / 1000;
    await waitIdle(b.pid);
    await sleep(3000);
  } catch (err) {
    died = (err as Error).message;
  } finally {
    clearInterval(sampler);
    b.process.off('exit', onExit);
  }
  const after = rssKiB(b.pid);
  const holderAfter = rssKiB(holder);
  let stalledReport = 'the bridge is gone';
  if (!died) {
    // Reading again, the stalled client should be resynchronised by a fresh snapshot, not fed the flood.
    let got = 0;
    const resynced = new Promise<boolean>((res) => {
      stalled.ws.on('message', (d: Buffer) => {
        got += d.length;
        if (d.subarray(0, 2).equals(ESC_C)) res(true);
      });
      setTimeout(() => res(false), 10_000).unref();
    });
    stalledSocket.resume();
    const snapshot = await resynced;
    stalledReport = `read ${mibB(got)} once resumed, ${snapshot ? 'ending with a fresh snapshot' : 'and no snapshot within 10 s'}`;
  }
  await closeWs(reader.ws);
  await closeWs(stalled.ws);
  return { bytes, before, peak, after, holderBefore, holderPeak, holderAfter, seconds, stalled: stalledReport, died };
}

async function reattach(b: RunningBridge, mine: string[]): Promise<Results['reattach']> {
  // A full scrollback: more lines than the mirror keeps, coloured like real output.
  const full = await readyShellSession(b, 'scrollback');
  mine.push(full.session.id);
  const viewer = await attach(b, full.session, { cols: COLS, rows: ROWS });
  const t = tag();
  viewer.type(
    `awk 'BEGIN{for(i=1;i<=${SCROLLBACK_LINES + 200};i++) printf "\\033[3%dm%06d\\033[0m the quick brown fox jumps over the lazy dog\\n", i%8, i}'; printf 'EN-%s-D\\n' ${t}\r`,
  );
  await viewer.waitFor(`EN-${t}-D`, 60_000);
  await viewer.close();
  const idle = await readyShellSession(b, 'idle-screen');
  mine.push(idle.session.id);
  const idleViewer = await attach(b, idle.session, { cols: COLS, rows: ROWS });
  await idleViewer.waitFor(/[$#]\s*$/, 20_000).catch(() => undefined);
  await idleViewer.close();
  await waitIdle(b.pid);

  const measure = async (session: Session) => {
    const open: number[] = [];
    const total: number[] = [];
    let snapshot = Buffer.alloc(0) as Buffer;
    for (let i = 0; i < REATTACHES; i++) {
      const c = await openTty(b, session);
      const first = await c.first;
      if (!first.data.subarray(0, 2).equals(ESC_C)) throw new Error('the first message is not a snapshot');
      open.push(first.at - c.openedAt);
      total.push(first.at - c.startedAt);
      snapshot = first.data;
      await closeWs(c.ws);
      await sleep(50);
    }
    return { open, total, bytes: snapshot.length, snapshot };
  };
  const f = await measure(full.session);
  const i = await measure(idle.session);
  // Baseline: serializing the same buffer in this process, the work the bridge does on each attach.
  const term = new Terminal({ cols: COLS, rows: ROWS, scrollback: SCROLLBACK_LINES, allowProposedApi: true });
  const serializer = new SerializeAddon();
  term.loadAddon(serializer);
  await new Promise<void>((res) => term.write(f.snapshot, res));
  const lines = term.buffer.active.length;
  const serialize: number[] = [];
  for (let k = 0; k < REATTACHES; k++) {
    const t0 = performance.now();
    serializer.serialize({ scrollback: SCROLLBACK_LINES });
    serialize.push(performance.now() - t0);
  }
  term.dispose();
  return { full: { open: f.open, total: f.total, bytes: f.bytes, lines }, idle: { open: i.open, total: i.total, bytes: i.bytes }, serialize };
}

function report(r: Results): string {
  const verdict = (pass: boolean) => (pass ? 'met' : '**missed**');
  const echo = (w: SideName) => `${ms(median(r.echo[w]))} / ${ms(pct(r.echo[w], 99))}`;
  const added = median(r.echo.bridge) - median(r.echo.direct);
  const rounds = (w: SideName) => r.echoRoundP50[w].map((v) => v.toFixed(2)).join(', ');
  const rate = (w: SideName) => `${median(r.burst[w]).toFixed(0)} MiB/s (${Math.min(...r.burst[w]).toFixed(0)}–${Math.max(...r.burst[w]).toFixed(0)})`;
  const ratio = median(r.burstRatio);
  const { full, idle, serialize } = r.reattach;
  const m = r.memory;
  const rows = [
    `| keystroke echo p50 / p99 (${r.echo.bridge.length} round trips each; p50 per round: direct ${rounds('direct')}, bridge ${rounds('bridge')}) | ${echo('direct')} | ${echo('holder')} | ${echo('bridge')} | ≤ 1 ms added at p50: +${ms(added)}, ${verdict(added <= 1)} |`,
    `| output burst, ${BURST_BYTES / 2 ** 20} MiB of \`x\`, median (min–max) of ${BURST_ROUNDS} | ${rate('direct')} | ${rate('holder')} | ${rate('bridge')} (bridge CPU ${median(r.bridgeCpuPerBurst).toFixed(1)} s per burst) | ≥ 80% of direct: ${(ratio * 100).toFixed(0)}% (median of per-round ratios), ${verdict(ratio >= 0.8)} |`,
    ...r.lineFloods.map((f) => {
      const fr = (w: SideName) => `${median(f.rate[w]).toFixed(0)} MiB/s (${Math.min(...f.rate[w]).toFixed(0)}–${Math.max(...f.rate[w]).toFixed(0)})`;
      return `| output burst, ${f.bytes / 2 ** 20} MiB of ${f.name}, median (min–max) of ${LINE_FLOOD_ROUNDS} | ${fr('direct')} | ${fr('holder')} | ${fr('bridge')} | ${(median(f.ratio) * 100).toFixed(0)}% of direct |`;
    }),
    `| reattach, full scrollback (${full.lines} lines, ${mibB(full.bytes)} snapshot): open → end of snapshot, p50 / max of ${REATTACHES} | serializing the same buffer in-process: ${ms(median(serialize))} | — | ${ms(median(full.open))} / ${ms(Math.max(...full.open))} | ≤ 100 ms: ${verdict(Math.max(...full.open) <= 100)} |`,
    `| reattach, idle small screen (${idle.bytes} B snapshot) | — | — | ${ms(median(idle.open))} / ${ms(Math.max(...idle.open))} | ≤ 100 ms: ${verdict(Math.max(...idle.open) <= 100)} |`,
    `| bridge RSS, 0 → ${IDLE_SESSIONS} idle sessions | — | ${mib(m.holderEach)} per holder process | ${mib(m.zero)} → ${mib(m.ten)}: ${mib((m.ten - m.zero) / IDLE_SESSIONS)} per session | — |`,
    ...m.floods.map(
      (f) =>
        `| RSS during a ${f.bytes / 2 ** 20} MiB \`yes\` flood, one client reading and one never reading: before / peak / 3 s after | — | ${mib(f.holderBefore)} / ${mib(f.holderPeak)} / ${mib(f.holderAfter)} | ${mib(f.before)} / ${mib(f.peak)} / ${f.died ? '—' : mib(f.after)}; ${f.died ? `**the bridge died**: \`${f.died}\`` : `flood took ${f.seconds.toFixed(1)} s; stalled client ${f.stalled}`} | bounded |`,
    ),
  ];
  return [
    `Machine: ${machine()}.`,
    '',
    '| measure | direct PTY (baseline) | holder only (no bridge) | through the bridge | target |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
