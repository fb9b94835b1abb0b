/**
 * Our terminal tab against VS Code's own integrated terminal, in the same window of a real VS Code
 * (the web server of test/vscode/server.ts, driven by headless Chromium), in the same run: keystroke
 * → echo latency idle and during a `yes` flood, and Ctrl+C → prompt during a `yes` flood.
 *
 *   node esbuild.config.mjs --tests && node --import tsx bench/terminal-tab.bench.ts
 *   (about 15 minutes for the default 4 rounds; SA_BENCH_ROUNDS=1 for a quick look)
 *
 * A, the terminal tab: xterm.js in our webview ← postMessage ← extension host (TtyConnection) ←
 * WebSocket ← bridge (host runtime) ← holder ← PTY ← bash, opened as test/ui/terminal.ui.test.ts does.
 * B, the baseline: VS Code's integrated terminal (xterm.js in the workbench ← ptyHost ← PTY ← bash),
 * created in the editor area: both are editors in one group, so they get the same size, and are
 * measured one at a time with the other's tab in the background; both render with xterm.js' DOM
 * renderer. Both run the same shell: a wrapper that execs
 * `bash --noprofile --norc` with the same PS1 (the bridge runs `$SHELL -l`, VS Code the default
 * profile), without VS Code's shell integration.
 *
 * Method: everything is timed inside the frame that renders the terminal, so Playwright's round trips
 * are not in the numbers. Before each key, a capturing `keydown` listener on that frame's window and a
 * MutationObserver on its `.xterm-rows` are armed; then Playwright presses the key. Latency is
 * `performance.now()` in the first mutation callback whose rows show the expected text minus
 * `performance.now()` in the key's `keydown` (the DOM renderer writes rows in its animation-frame
 * callback; the observer runs right after, before that frame is painted). One key at a time, 40–100 ms
 * after the previous one was shown.
 *  - idle: keys at the bash prompt (readline echoes them); Ctrl+U every 24 keys.
 *  - flood: `keys.sh` (below) echoes each key on the last row while `yes` scrolls above it; 40 keys
 *    or 45 s per block, starting 1 s into the flood. Plain tty echo under a foreground `yes` cannot
 *    be timed this way: the echoed character scrolls away before any frame shows it.
 *  - Ctrl+C: `yes` in the foreground for 3–3.5 s, then Ctrl+C, until a row ends with the prompt.
 * Rounds alternate which side goes first.
 *
 * Prints a Markdown section for BENCHMARKS.md. It reports; it never fails on a missed target.
 */
import { execFileSync, execSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { Frame, Locator, Page } from 'playwright-core';
import { missingVSCodePrerequisites, openWorkbench, startVSCodeServer, vscodeServerDir, type VSCodeServer, type Workbench } from '../test/vscode/server';
import { quickInputType, quickPickSelect, runCommand, screenshot, waitForNotification, waitForWorkbench } from '../test/ui/workbench';

const REPO = resolve(__dirname, '..');
const ROUNDS = Number(process.env.SA_BENCH_ROUNDS) || 4; // A and B alternate which goes first, round by round
const IDLE_KEYS = 40; // per side and round
const PROGRAM_IDLE_KEYS = 25;
const FLOOD_KEYS = 40;
const CTRL_CS = 8;
const LINE_MAX = 24; // keys typed at the prompt before Ctrl+U clears the line
const PROMPT = 'sa-bench$';
const KEYS = 'qwertyuiopasdfghjklzxcvbnm';
const FLOOD_WARMUP_MS = 1_000; // flood before the first timed key
const FLOOD_BLOCK_MS = 45_000; // a flood block ends after this many keys or this long, whichever first
const CTRL_C_AFTER_MS = 3_000; // flood before each Ctrl+C
const GUARD_MS = 30_000; // hang guard per wait, not a target
const VIEWPORT = { width: 1600, height: 1000 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jitter = () => sleep(40 + Math.random() * 60); // keys never phase-locked to animation frames
const log = (msg: string) => process.stderr.write(`[terminal-tab.bench] ${msg}\n`);

// ------------------------------------------------------------------------------------------------
// The shell both terminals run, and the program that echoes keys under a flood.

/** `bash --noprofile --norc` with our PS1, no history file, and a marker in its environment by which
 *  cleanup finds the shells and whatever they started (and nothing else). */
function writeShell(dir: string): string {
  const path = join(dir, 'bench-shell');
  writeFileSync(path, `#!/bin/sh\nexport PS1='${PROMPT} ' HISTFILE= SA_BENCH_SHELL='${dir}'\nexec /bin/bash --noprofile --norc "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

/**
 * `bash keys.sh idle|flood`: echoes each key on the last row as `key:<key>#<count>` (one write
 * each, cursor saved and restored), with `flood` under a `yes` that scrolls in the rows above it
 * (a scroll region). Plain tty echo under a foreground `yes` is scrolled away before any frame shows
 * it; this is what a TUI does that redraws its input line while output streams. `Q` quits.
 */
function writeKeysProgram(dir: string): string {
  const path = join(dir, 'keys.sh');
  writeFileSync(
    path,
    [
      'read -r R C < <(stty size)',
      'pid=',
      `cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; printf '\\e[r\\e[2J\\e[H'; stty sane; }`,
      'trap cleanup EXIT',
      "trap 'exit 130' INT",
      'stty -echo -icanon min 1 time 0',
      `printf '\\e[2J\\e[1;%dr\\e[%d;1Hkey:-#0\\e[1;1H' $((R - 1)) "$R"`,
      'if [ "$1" = flood ]; then yes & pid=$!; fi',
      'n=0',
      'while IFS= read -rsn1 k; do',
      '  [ "$k" = Q ] && break',
      '  n=$((n + 1))',
      `  printf '\\e7\\e[%d;1H\\e[2Kkey:%s#%d\\e8' "$R" "$k" "$n"`,
      'done',
      '',
    ].join('\n'),
  );
  return path;
}

// ------------------------------------------------------------------------------------------------
// Timing inside the terminal's frame.

interface Probe {
  /** CSS selector of the rows container in `frame`. */
  rows: string;
  /** Done when a row (`last`: the last row) ends with this text, spaces trimmed. */
  token: string;
  where: 'any' | 'last';
  /** `KeyboardEvent.key` of the key whose `keydown` starts the clock. */
  key: string;
  timeoutMs: number;
}

type ProbeResult = { ms: number } | { error: string };

/** Runs in the terminal's frame: arms the listener and the observer; false when the rows already
 *  show the token (nothing to wait for). The outcome is left in `window.__saBench`. */
function armInFrame(p: Probe): boolean {
  const rowsEl = document.querySelector(p.rows);
  if (!rowsEl) throw new Error(`no ${p.rows} in this frame`);
  const text = (el: Element | null) => (el?.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd();
  const shows = () => (p.where === 'last' ? text(rowsEl.lastElementChild).endsWith(p.token) : Array.from(rowsEl.children).some((row) => text(row).endsWith(p.token)));
  if (shows()) return false;
  let t0: number | undefined;
  const onKey = (ev: KeyboardEvent) => {
    if (t0 === undefined && ev.key === p.key) t0 = performance.now();
  };
  window.addEventListener('keydown', onKey, true);
  (window as unknown as { __saBench: Promise<ProbeResult> }).__saBench = new Promise<ProbeResult>((done) => {
    const finish = (r: ProbeResult) => {
      observer.disconnect();
      clearTimeout(timer);
      window.removeEventListener('keydown', onKey, true);
      done(r);
    };
    const observer = new MutationObserver(() => {
      if (!shows()) return;
      finish(t0 === undefined ? { error: 'the rows changed before the key reached this frame' } : { ms: performance.now() - t0 });
    });
    observer.observe(rowsEl, { childList: true, subtree: true, characterData: true });
    const timer = setTimeout(() => finish({ error: t0 === undefined ? 'the key never reached this frame' : `not shown within ${p.timeoutMs} ms` }), p.timeoutMs);
  });
  return true;
}

/** tsx compiles with esbuild's keepNames, which wraps the named functions inside `armInFrame` in
 *  `__name(…)`: a frame needs that helper before it can run them. */
const KEEP_NAMES_SHIM = 'globalThis.__name ??= (fn) => fn';

interface Side {
  readonly name: 'tab' | 'integrated';
  readonly page: Page;
  /** The frame that renders the terminal, and the rows container in it. */
  readonly frame: Frame;
  readonly rows: string;
  readonly screen: Locator;
  /** Its editor tab. */
  readonly tab: Locator;
}

/** Shows the terminal's editor tab and gives it the keyboard: clicks into it, waits, and checks that
 *  it kept the focus. */
async function focus(side: Side): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await side.tab.click();
    await sleep(300);
    await side.screen.click();
    await sleep(500);
    const focused = await side.frame.evaluate(() => document.hasFocus() && !!document.activeElement?.classList.contains('xterm-helper-textarea'));
    if (focused) return;
    if (attempt >= 5) throw new Error(`${side.name}: the terminal does not keep the keyboard focus`);
  }
}

async function rowTexts(side: Side): Promise<string[]> {
  return side.frame.evaluate(
    (sel) => Array.from(document.querySelector(sel)?.children ?? []).map((r) => (r.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()),
    side.rows,
  );
}

async function waitRows(side: Side, what: string, ok: (rows: string[]) => boolean, timeoutMs = GUARD_MS): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await rowTexts(side);
    if (ok(rows)) return rows;
    if (Date.now() > deadline) throw new Error(`${side.name}: never showed ${what}:\n${rows.filter(Boolean).slice(-8).join('\n')}`);
    await sleep(50);
  }
}

const atPrompt = (rows: string[]) => rows.some((r) => r.endsWith(PROMPT));

async function typeLine(side: Side, text: string): Promise<void> {
  await side.page.keyboard.type(text);
  await side.page.keyboard.press('Enter');
}

/** One timed key: arm in the frame, press, collect. */
async function timeKey(side: Side, press: string, probe: Omit<Probe, 'rows'>): Promise<ProbeResult> {
  const armed = await side.frame.evaluate(armInFrame, { ...probe, rows: side.rows });
  if (!armed) return { error: `"${probe.token}" was shown before the key` };
  await side.page.keyboard.press(press);
  return side.frame.evaluate(() => (window as unknown as { __saBench: Promise<ProbeResult> }).__saBench);
}

// ------------------------------------------------------------------------------------------------
// The measurements, one block per side and round.

function lost(side: Side, errors: string[], error: string): void {
  errors.push(error);
  log(`  ${side.name}: a sample lost: ${error}`);
}

type Metric = 'idle' | 'programIdle' | 'flood' | 'ctrlC';
type Samples = Record<Metric, number[]>;
type Errors = Record<Metric, string[]>;

async function clearScreen(side: Side): Promise<void> {
  await typeLine(side, 'clear');
  await waitRows(side, 'a cleared screen', (rows) => rows[0] === PROMPT && rows.slice(1).every((r) => r === ''));
}

/** Keys at the bash prompt (readline echoes them). */
async function idleBlock(side: Side, keys: number, out: number[], errors: string[]): Promise<void> {
  await clearScreen(side);
  let typed = '';
  for (let i = 0; i < keys; i++) {
    if (typed.length >= LINE_MAX) {
      await side.page.keyboard.press('Control+u');
      await waitRows(side, 'an empty prompt', (rows) => rows[0] === PROMPT);
      typed = '';
    }
    const key = KEYS[i % KEYS.length];
    typed += key;
    const r = await timeKey(side, key, { token: `${PROMPT} ${typed}`, where: 'any', key, timeoutMs: GUARD_MS });
    if ('ms' in r) out.push(r.ms);
    else lost(side, errors, r.error);
    await jitter();
  }
  await side.page.keyboard.press('Control+u');
  await waitRows(side, 'an empty prompt', (rows) => rows[0] === PROMPT);
}

/** Keys echoed by keys.sh on the last row, with or without the `yes` flood above it. */
async function programBlock(side: Side, program: string, flood: boolean, keys: number, out: number[], errors: string[], stateBase: string): Promise<void> {
  await typeLine(side, `bash ${program} ${flood ? 'flood' : 'idle'}`);
  await waitRows(side, 'keys.sh ready', (rows) => rows.at(-1) === 'key:-#0' && (!flood || rows.slice(0, 3).every((r) => r === 'y')));
  if (flood) await sleep(FLOOD_WARMUP_MS);
  const until = Date.now() + FLOOD_BLOCK_MS;
  const first = out.length;
  let count = 0; // keys.sh's count of keys received
  for (let i = 0, failing = 0; i < keys && failing < 3 && (!flood || Date.now() < until); i++) {
    const key = KEYS[i % KEYS.length];
    const r = await timeKey(side, key, { token: `key:${key}#${count + 1}`, where: 'last', key, timeoutMs: GUARD_MS });
    if ('ms' in r) {
      out.push(r.ms);
      count++;
      failing = 0;
    } else {
      lost(side, errors, r.error);
      if (side.name === 'tab') log(`  ${pipeline(stateBase)}`);
      count = Number(/#(\d+)$/.exec((await rowTexts(side)).at(-1) ?? '')?.[1] ?? count);
      failing++;
    }
    await jitter();
  }
  if (flood) {
    log(`  ${side.name}: flood echo, in order: ${out.slice(first).map((v) => v.toFixed(0)).join(' ')} ms`);
    const last = (await rowTexts(side)).at(-1) ?? '';
    if (!last.startsWith('key:')) log(`  ${side.name}: the status row is gone (last row: "${last}"): the scroll region was lost`);
    if (side.name === 'tab') log(`  ${pipeline(stateBase)}`);
  }
  const quit = Date.now();
  await side.page.keyboard.press('Shift+KeyQ');
  await waitRows(side, 'the prompt after keys.sh', (rows) => rows[0] === PROMPT, 600_000);
  if (flood) log(`  ${side.name}: Q → prompt after the flood block: ${ms(Date.now() - quit)}`);
}

/** `yes` in the foreground, then Ctrl+C: until a row ends with the prompt again. */
async function ctrlCBlock(side: Side, times: number, out: number[], errors: string[]): Promise<void> {
  for (let i = 0; i < times; i++) {
    await clearScreen(side);
    await typeLine(side, 'yes');
    await waitRows(side, 'the flood over the whole screen', (rows) => !atPrompt(rows) && rows.slice(0, -1).every((r) => r === 'y'));
    await sleep(CTRL_C_AFTER_MS + Math.random() * 500);
    const r = await timeKey(side, 'Control+c', { token: PROMPT, where: 'any', key: 'c', timeoutMs: 120_000 });
    if ('ms' in r) out.push(r.ms);
    else lost(side, errors, r.error);
    await waitRows(side, 'the prompt after Ctrl+C', atPrompt, 120_000);
    await sleep(300);
  }
}

async function round(side: Side, paths: { program: string; stateBase: string }, s: Samples, e: Errors): Promise<void> {
  await focus(side);
  await idleBlock(side, IDLE_KEYS, s.idle, e.idle);
  await programBlock(side, paths.program, false, PROGRAM_IDLE_KEYS, s.programIdle, e.programIdle, paths.stateBase);
  await programBlock(side, paths.program, true, FLOOD_KEYS, s.flood, e.flood, paths.stateBase);
  await ctrlCBlock(side, CTRL_CS, s.ctrlC, e.ctrlC);
}

/** The PTY's size, as `stty size` prints it. Also proves the keyboard reaches the shell: a terminal
 *  just created may drop the first keys, so this retries. */
async function stty(side: Side): Promise<string> {
  const printed = (r: string[]) => r.find((l) => /^\d+ \d+$/.test(l));
  for (let attempt = 1; ; attempt++) {
    await focus(side);
    await typeLine(side, 'stty size');
    try {
      const [lines, cols] = printed(await waitRows(side, 'stty size', (r) => !!printed(r), 5_000))!.split(' ');
      return `${cols}×${lines}`;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Setting up both terminals in one window.

async function openTab(page: Page): Promise<Side> {
  await runCommand(page, 'Sandbox Agents: Create Agent');
  await quickInputType(page, 'bench-shell');
  await quickPickSelect(page, 'Shell');
  await quickPickSelect(page, 'none');
  await quickInputType(page, '');
  await quickPickSelect(page, 'No folder');
  await quickInputType(page, '');
  await waitForNotification(page, 'Agent "bench-shell" created');
  await runCommand(page, 'Sandbox Agents: Open Terminal');
  await quickPickSelect(page, 'bench-shell');
  const inner = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
  const rows = inner.locator('.xterm-rows');
  await rows.waitFor({ state: 'visible', timeout: GUARD_MS });
  const frame = await (await rows.elementHandle())!.ownerFrame();
  if (!frame) throw new Error('the terminal tab has no frame');
  await frame.evaluate(KEEP_NAMES_SHIM);
  // Both terminals are editors in one group, so both get its whole size; the terminal tab comes first.
  const side: Side = { name: 'tab', page, frame, rows: '.xterm-rows', screen: inner.locator('.xterm-screen'), tab: page.locator('.tabs-container .tab').nth(0) };
  await waitRows(side, 'the prompt', atPrompt);
  return side;
}

async function openIntegrated(page: Page): Promise<Side> {
  await runCommand(page, 'Terminal: Create New Terminal in Editor Area');
  const rows = page.locator('.terminal-wrapper .xterm-rows');
  await rows.waitFor({ state: 'visible', timeout: GUARD_MS });
  await page.evaluate(KEEP_NAMES_SHIM);
  const side: Side = { name: 'integrated', page, frame: page.mainFrame(), rows: '.terminal-wrapper .xterm-rows', screen: page.locator('.terminal-wrapper .xterm-screen'), tab: page.locator('.tabs-container .tab').nth(1) };
  await waitRows(side, 'the prompt', atPrompt);
  return side;
}

// ------------------------------------------------------------------------------------------------
// Cleanup: only what this run started, by pid.

/** Processes whose environment carries this run's shell marker: the shells, `yes`, keys.sh, and also
 *  the extension host, the bridge and its holders (the server resolves its environment by running
 *  `$SHELL`, our wrapper). All started by this run. */
function markedPids(dir: string): number[] {
  const marker = `SA_BENCH_SHELL=${dir}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(marker)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return pids;
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/** Bytes queued in the kernel on the loopback connections to the bridge (Recv-Q of the extension
 *  host's ends, Send-Q of the bridge's): output that has left the bridge and not reached the tab. */
function socketQueues(stateBase: string): string {
  try {
    const port = new URL((JSON.parse(readFileSync(join(stateBase, 'host', 'bridge.json'), 'utf8')) as { url: string }).url).port;
    let recv = 0;
    let send = 0;
    for (const line of execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8' }).split('\n')) {
      const [r, s] = line.trim().split(/\s+/).map(Number);
      if (Number.isFinite(r)) recv += r;
      if (Number.isFinite(s)) send += s;
    }
    return `Recv-Q ${(recv / 2 ** 20).toFixed(1)} MiB, Send-Q ${(send / 2 ** 20).toFixed(1)} MiB`;
  } catch (err) {
    return `unknown (${(err as Error).message.split('\n')[0]})`;
  }
}

/** Where output waits, for the log: the socket queues, and what the flood's processes are doing. */
function pipeline(stateBase: string): string {
  let procs = '';
  try {
    const benchDir = join(stateBase, '..');
    const pids = markedPids(benchDir).join(',');
    if (pids) {
      const lines = execFileSync('ps', ['-o', 'pid=,stat=,wchan:24=,args=', '-p', pids], { encoding: 'utf8' }).trim().split('\n');
      procs = lines.map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => / (yes|bash \S*keys\.sh.*)$/.test(l)).join('; ');
    }
  } catch {
    /* gone */
  }
  return `bridge ⇄ extension host socket queues: ${socketQueues(stateBase)}; processes: ${procs || 'none'}`;
}

async function cleanUp(stateBase: string, benchDir: string): Promise<void> {
  const bridgeJson = join(stateBase, 'host', 'bridge.json');
  try {
    kill((JSON.parse(readFileSync(bridgeJson, 'utf8')) as { pid: number }).pid, 'SIGTERM');
  } catch {
    /* no bridge started */
  }
  // Sessions started here: end their holders through the state the bridge kept.
  try {
    const state = JSON.parse(readFileSync(join(stateBase, 'host', 'state.json'), 'utf8')) as { sessions: { sandbox_ref: string | null }[] };
    const ps = execSync('ps -eo pid,args', { encoding: 'utf8' }).split('\n');
    for (const s of state.sessions) {
      if (!s.sandbox_ref) continue;
      const line = ps.find((l) => l.includes(' hold ') && l.includes(s.sandbox_ref!));
      if (line) kill(Number(line.trim().split(/\s+/)[0]), 'SIGTERM');
    }
  } catch {
    /* nothing to clean */
  }
  for (const signal of ['SIGHUP', 'SIGKILL'] as const) {
    const left = markedPids(benchDir);
    if (!left.length) break;
    for (const pid of left) kill(pid, signal);
    await sleep(1_000);
  }
}

// ------------------------------------------------------------------------------------------------
// Statistics and report.

function pct(a: number[], p: number): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '—' : `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`);

function machine(): string {
  let chromium = 'Chromium';
  try {
    chromium = execFileSync(process.env.SANDBOX_AGENTS_CHROMIUM ?? '/usr/bin/chromium', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* keep the name */
  }
  let vscode = 'VS Code';
  try {
    const pkg = JSON.parse(readFileSync(join(vscodeServerDir()!, 'node_modules', 'code-server', 'lib', 'vscode', 'package.json'), 'utf8')) as { version?: string };
    vscode = `VS Code ${pkg.version ?? '?'} web`;
  } catch {
    /* keep the name */
  }
  return `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, headless ${chromium}, ${vscode} (code-server's server), Node ${process.versions.node}`;
}

interface Results {
  tab: Samples;
  integrated: Samples;
  errors: { tab: Errors; integrated: Errors };
  sizes: { tab: string; integrated: string };
  load: { before: number[]; after: number[] };
}

function report(r: Results): string {
  const verdict = (pass: boolean) => (pass ? 'met' : '**missed**');
  const cell = (a: number[]) => `${ms(pct(a, 50))} / ${ms(pct(a, 95))}`;
  const errs = (m: Metric) => {
    const n = r.errors.tab[m].length + r.errors.integrated[m].length;
    return n ? ` (${r.errors.tab[m].length} / ${r.errors.integrated[m].length} lost: ${[...new Set([...r.errors.tab[m], ...r.errors.integrated[m]])].join('; ')})` : '';
  };
  const delta = (m: Metric) => pct(r.tab[m], 50) - pct(r.integrated[m], 50);
  const sign = (v: number) => `${v >= 0 ? '+' : '−'}${ms(Math.abs(v))}`;
  const idleDelta = delta('idle');
  const c50 = pct(r.tab.ctrlC, 50);
  const c95 = pct(r.tab.ctrlC, 95);
  const line = (m: Metric, what: string, target: string) =>
    `| ${what}${errs(m)} | ${r.tab[m].length} / ${r.integrated[m].length} | ${cell(r.tab[m])} | ${cell(r.integrated[m])} | ${sign(delta(m))} | ${target} |`;
  const load = (l: number[]) => l.map((v) => v.toFixed(1)).join(' ');
  return [
    `Machine: ${machine()}. Load average before / after: ${load(r.load.before)} / ${load(r.load.after)}. Terminal sizes (cols×rows): tab ${r.sizes.tab}, integrated ${r.sizes.integrated}.`,
    '',
    '| measure | samples (tab / integrated) | terminal tab p50 / p95 | integrated terminal p50 / p95 | Δ p50 | target |',
    '|---|---|---|---|---|---|',
    line('idle', 'keystroke → echo, idle (bash line editing)', `p50 within 10 ms of the baseline: ${sign(idleDelta)}, ${verdict(idleDelta <= 10)}`),
    line('programIdle', 'keystroke → echo, idle (keys.sh echoing on the last row)', '—'),
    line('flood', 'keystroke → echo during a `yes` flood (keys.sh, `yes` scrolling above)', '—'),
    line('ctrlC', 'Ctrl+C → prompt visible again, `yes` flooding', `≤ 200 ms: p50 ${ms(c50)} ${verdict(c50 <= 200)}, p95 ${ms(c95)} ${verdict(c95 <= 200)}`),
  ].join('\n');
}

// ------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const missing = missingVSCodePrerequisites();
  if (missing) {
    log(`${missing} Nothing measured.`);
    return;
  }
  const benchDir = mkdtempSync(join(tmpdir(), 'sa-bench-tt-'));
  const stateBase = join(benchDir, 'state');
  const folder = join(benchDir, 'ws');
  execSync(`mkdir -p '${stateBase}' '${folder}'`);
  const shell = writeShell(benchDir);
  const program = writeKeysProgram(benchDir);
  const empty = (): Samples => ({ idle: [], programIdle: [], flood: [], ctrlC: [] });
  const noErrors = (): Errors => ({ idle: [], programIdle: [], flood: [], ctrlC: [] });
  const r: Results = { tab: empty(), integrated: empty(), errors: { tab: noErrors(), integrated: noErrors() }, sizes: { tab: '?', integrated: '?' }, load: { before: loadavg(), after: [] } };
  let server: VSCodeServer | undefined;
  let workbench: Workbench | undefined;
  try {
    server = await startVSCodeServer({
      env: { SHELL: shell }, // the bridge's host runtime runs `$SHELL -l`
      userSettings: {
        'sandboxAgents.local.runtime': 'host',
        'sandboxAgents.local.stateDir': stateBase,
        'terminal.integrated.profiles.linux': { 'bench-shell': { path: shell } },
        'terminal.integrated.defaultProfile.linux': 'bench-shell',
        'terminal.integrated.shellIntegration.enabled': false,
      },
    });
    workbench = await openWorkbench(server, { folder, extensionDevelopmentPath: REPO, viewport: VIEWPORT });
    const page = workbench.page;
    await waitForWorkbench(page);
    log('opening the terminal tab and the integrated terminal');
    const tab = await openTab(page);
    const integrated = await openIntegrated(page);
    r.sizes = { tab: await stty(tab), integrated: await stty(integrated) };
    log(`sizes: tab ${r.sizes.tab}, integrated ${r.sizes.integrated}`);
    // Warm-up (JIT, first renders), not counted.
    for (const side of [tab, integrated]) {
      await focus(side);
      await idleBlock(side, 10, [], []);
    }
    for (let i = 0; i < ROUNDS; i++) {
      for (const side of i % 2 ? [integrated, tab] : [tab, integrated]) {
        log(`round ${i + 1}: ${side.name}`);
        await round(side, { program, stateBase }, r[side.name], r.errors[side.name]);
        const s = r[side.name];
        log(`  so far: idle p50 ${ms(pct(s.idle, 50))}, flood p50 ${ms(pct(s.flood, 50))}, Ctrl+C p50 ${ms(pct(s.ctrlC, 50))}`);
      }
    }
    r.load.after = loadavg();
  } catch (err) {
    if (workbench) log(`screenshot: ${await screenshot(workbench.page, 'bench-terminal-tab-failure').catch(() => 'none')}`);
    throw err;
  } finally {
    await workbench?.close();
    await server?.stop();
    await cleanUp(stateBase, benchDir);
    rmSync(benchDir, { recursive: true, force: true, maxRetries: 3 });
  }
  console.log(report(r));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
