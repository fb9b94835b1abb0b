/**
 * The in-sandbox init (PID 1 under tini in a container; the session's program on the host runtime).
 *
 * 1. Reads the session's config (written by the bridge, stubs only) and reports phases to the bridge
 *    over the egress socket.
 * 2. Starts the loopback forwarder: the sandbox has no network, so `127.0.0.1:<proxy_port>` is piped
 *    to the bridge's egress socket (model gateway and egress proxy).
 * 3. Prepares the work tree (a clone when the agent has a repo URL; mounts and worktrees are the
 *    bridge's work), seeds the harness CLI's config, and runs the harness: a TUI on the sandbox's
 *    TTY, or an API server whose port the bridge reaches through the ingress socket.
 * init exits with the harness's exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import * as net from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import * as z from 'zod/mini';
import { INIT_CONFIG_ENV, InitConfig, PHASE_PATH, type PhaseReport } from '../../protocol/sandbox';
import { planLaunch, SYSTEM_CA_FILES, type Launch } from './launch';

const HARNESS_START_TIMEOUT_MS = 180_000;

function say(line: string): void {
  process.stderr.write(`\x1b[2m[sandbox] ${line}\x1b[0m\r\n`);
}

function readConfig(): InitConfig {
  const path = process.env[INIT_CONFIG_ENV];
  if (!path) throw new Error(`${INIT_CONFIG_ENV} is not set: init must be started by the Sandbox Agents bridge`);
  const parsed = InitConfig.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new Error(`the init config ${path} is invalid: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Best effort: a bridge that is restarting misses a phase, which the session's state catches up on. */
function report(socketPath: string, phase: PhaseReport['phase'], detail?: string): Promise<void> {
  const body = JSON.stringify({ phase, detail: detail ?? null });
  return new Promise((resolve) => {
    const req = request({ socketPath, path: PHASE_PATH, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => resolve());
    req.on('timeout', () => req.destroy());
    req.end(body);
  });
}

/** A server whose every connection is piped both ways to a fresh connection made by `connect`. */
function forwarder(connect: () => net.Socket): net.Server {
  return net.createServer((client) => {
    const upstream = connect();
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
}

/** `127.0.0.1:port` → the bridge's unix socket. Resolves with the port actually bound. */
function forwardTcpToUnix(port: number, socketPath: string): Promise<number> {
  const server = forwarder(() => net.connect(socketPath));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** The ingress socket (the bridge connects here) → the harness server on loopback. */
function forwardUnixToTcp(socketPath: string, port: number): Promise<void> {
  rmSync(socketPath, { force: true });
  const server = forwarder(() => net.connect(port, '127.0.0.1'));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // The bridge runs as another user: the socket must be connectable by it.
    server.listen({ path: socketPath, readableAll: true, writableAll: true }, () => {
      try {
        chmodSync(socketPath, 0o777);
      } catch {
        /* listen's modes already apply */
      }
      resolve();
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Listening is not answering: opencode (1.18) opens its port before it has loaded (seconds on a busy
 * machine), and a request sent meanwhile can hang well past that (measured). So the harness counts as
 * up only once a `GET /session` is answered, each try given up after a second.
 */
function waitForAnswer(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`the harness server exited (${child.exitCode ?? child.signalCode})`));
      const req = request({ host: '127.0.0.1', port, path: '/session', method: 'GET', timeout: 1000 }, (res) => {
        res.resume();
        if ((res.statusCode ?? 500) < 500) resolve();
        else retry();
      });
      const retry = () => {
        if (Date.now() > deadline) reject(new Error(`the harness server did not answer within ${Math.round(timeoutMs / 1000)} s`));
        else setTimeout(attempt, 100);
      };
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', retry);
      req.end();
    };
    attempt();
  });
}

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The CLI on `bin_dirs` first, then PATH; an absolute path as is. */
function resolveBinary(name: string, binDirs: string[]): string | undefined {
  if (isAbsolute(name)) return existsSync(name) ? name : undefined;
  for (const dir of [...binDirs, ...(process.env.PATH ?? '').split(delimiter)]) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${command} ${args[0] ?? ''} failed (${code ?? signal})`))));
  });
}

async function prepareWorkdir(config: InitConfig, env: NodeJS.ProcessEnv): Promise<void> {
  const { workspace, workdir } = config;
  if (workspace.mode !== 'clone') {
    mkdirSync(workdir, { recursive: true });
    return;
  }
  if (!workspace.repo_url) throw new Error('workspace mode "clone" needs a repo URL');
  if (existsSync(join(workdir, '.git'))) return; // a restarted init: already cloned
  if (existsSync(workdir) && readdirSync(workdir).length > 0) throw new Error(`cannot clone into ${workdir}: it is not empty`);
  await report(config.egress_socket, 'cloning_repo', `${workspace.repo_url}${workspace.branch ? ` (${workspace.branch})` : ''}`);
  say(`cloning ${workspace.repo_url}${workspace.branch ? ` at ${workspace.branch}` : ''}`);
  const args = ['clone', '--depth', '1', ...(workspace.branch ? ['--branch', workspace.branch] : []), '--', workspace.repo_url, workdir];
  await run('git', args, env, dirname(workdir));
}

/**
 * The image's system CAs plus the bridge's, in the session's home (the CA file itself is read-only and
 * alone): it goes with the home, which the host runtime removes when the session ends.
 */
function caBundle(caFile: string, home: string): { file: string; bundle: string } {
  const system = SYSTEM_CA_FILES.find((f) => existsSync(f));
  const dir = join(home, '.sandbox-agents');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const bundle = join(dir, 'ca-bundle.pem');
  const parts = [system ? readFileSync(system, 'utf8') : '', readFileSync(caFile, 'utf8')];
  writeFileSync(bundle, parts.filter(Boolean).map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join(''), { mode: 0o644 });
  return { file: caFile, bundle };
}

function writeFiles(launch: Launch): void {
  for (const f of launch.files) {
    mkdirSync(dirname(f.path), { recursive: true, mode: 0o700 });
    writeFileSync(f.path, f.content, { mode: f.mode ?? 0o644 });
  }
}

async function main(): Promise<void> {
  // Ctrl+C on the TTY signals the whole foreground group: it is for the harness, not for init.
  process.on('SIGINT', () => undefined);
  process.on('SIGQUIT', () => undefined);
  const config = readConfig();
  const fail = async (err: Error): Promise<never> => {
    say(`could not start ${config.harness}: ${err.message}`);
    await report(config.egress_socket, 'failed', err.message);
    process.exit(1);
  };
  try {
    const home = writable(config.home) ? config.home : join(tmpdir(), 'sandbox-home');
    mkdirSync(home, { recursive: true });
    await report(config.egress_socket, 'injecting_files', 'starting the loopback forwarder');
    const proxyPort = await forwardTcpToUnix(config.proxy_port, config.egress_socket);
    const harnessPort = config.ingress_socket ? config.harness_port || (await freePort()) : 0;
    const ca = config.ca_file ? caBundle(config.ca_file, home) : undefined;
    const launch = planLaunch({ config, home, proxyPort, harnessPort, nodePath: process.execPath, ca });
    const env: NodeJS.ProcessEnv = { ...process.env, ...launch.env };
    delete env[INIT_CONFIG_ENV];
    await prepareWorkdir(config, env);
    writeFiles(launch);
    const binary = resolveBinary(launch.command, config.bin_dirs);
    if (!binary) throw new Error(`${launch.binary} is not installed in this sandbox`);
    env.PATH = [...config.bin_dirs, process.env.PATH ?? ''].filter(Boolean).join(delimiter);
    await report(config.egress_socket, 'waiting_harness', `starting ${config.harness}`);
    // A server gets no TTY input (nothing it starts can stop at a prompt); its output still shows.
    const child = spawn(binary, launch.args, { env, cwd: config.workdir, stdio: launch.kind === 'server' ? ['ignore', 'inherit', 'inherit'] : 'inherit' });
    child.on('error', (err) => void fail(err));
    for (const sig of ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => child.kill(sig));
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (signalNumber(signal) ?? 1) : 1)));
    if (launch.kind === 'server') {
      // Up means answering (a refused connection is retried like a request that hangs).
      await waitForAnswer(harnessPort, child, HARNESS_START_TIMEOUT_MS);
      await forwardUnixToTcp(config.ingress_socket!, harnessPort);
      await report(config.egress_socket, 'harness_listening', `${config.harness} on port ${harnessPort}`);
    }
    await report(config.egress_socket, 'ready');
  } catch (err) {
    await fail(err as Error);
  }
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return osConstants.signals[signal];
}

void main();
