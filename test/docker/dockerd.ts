// A test Docker engine and a base image, for every test that needs real Docker.
//
// - startTestDockerd(): an isolated dockerd (own data-root, exec-root, pidfile, socket and config under a
//   fresh temp dir), always with `--bridge=none --iptables=false --ip-forward=false --ip-masq=false`, so
//   no container can get a network other than "none" or "host" (the test environment's network rule:
//   loopback traffic only; never create a Docker network).
// - ensureBaseImage(host): `sandbox-agents/test-base:bookworm` in that daemon: a Debian bookworm minbase
//   root filesystem made once with debootstrap and cached under ~/.cache/sandbox-agents, plus the host's
//   node and a user `sandbox` (uid 1001). No registry is reachable, so nothing is ever pulled.
// - sharedTestDockerd() / startForTestRun(): one daemon for a whole test run, handed to child test
//   processes through SANDBOX_AGENTS_TEST_DOCKER_HOST.
//
// Only the `docker` CLI is used (through child_process), so nothing here needs dockerode.
// Everything logs to stderr with a `[test-docker]` prefix.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { homedir, hostname, tmpdir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { requireAllTiers, skipOrFail } from '../tiers';
export { requireAllTiers };

export const BASE_IMAGE = 'sandbox-agents/test-base:bookworm';
/** Image that `docker import` makes from the cached root filesystem; BASE_IMAGE is built FROM it. */
const ROOTFS_REPO = 'sandbox-agents/test-rootfs';
export const DOCKER_HOST_ENV = 'SANDBOX_AGENTS_TEST_DOCKER_HOST';
export const SANDBOX_UID = 1001;

const SUITE = 'bookworm';
const VARIANT = 'minbase';
/** Added to minbase (which already has bash, coreutils, libstdc++ for node…) in the same debootstrap. */
export const BASE_PACKAGES: readonly string[] = ['ca-certificates', 'curl', 'git', 'less', 'procps'];
/** Bump when the way the root filesystem or the image is made changes: it is part of the cache keys. */
const RECIPE = 2;
const INSTALL_HINT = 'apt-get install -y docker.io debootstrap';
const LABEL_KEY = 'sandbox-agents.test-base.key';

export interface TestDockerd {
  /** e.g. "unix:///tmp/sa-d-AbC123/sock" */
  host: string;
  socketPath: string;
  pid: number;
  /** Stops the daemon and removes everything it left; safe to call more than once. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------
// Small helpers

export function log(message: string): void {
  process.stderr.write(`[test-docker] ${message}\n`);
}

const secs = (sinceMs: number) => `${((Date.now() - sinceMs) / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function findBinary(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  // dockerd and debootstrap live in sbin, which is often not on a non-login PATH.
  for (const extra of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(extra)) dirs.push(extra);
  for (const dir of dirs) {
    const p = join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function cacheRoot(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache'), 'sandbox-agents');
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The environment for the docker CLI: -H is always given, so DOCKER_HOST/DOCKER_CONTEXT must not interfere. */
function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.DOCKER_HOST;
  delete env.DOCKER_CONTEXT;
  return env;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command; never rejects for a non-zero exit (look at `code`). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; stdoutFile?: string; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const outFd = opts.stdoutFile ? fs.openSync(opts.stdoutFile, 'w') : undefined;
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', outFd ?? 'pipe', 'pipe'],
    });
    if (outFd !== undefined) fs.closeSync(outFd);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          stderr += `\n(timed out after ${opts.timeoutMs} ms)`;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** `docker -H <host> …args`. */
export function docker(
  host: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; stdoutFile?: string; cwd?: string } = {},
): Promise<RunResult> {
  const cli = findBinary('docker');
  if (!cli) return Promise.reject(new Error(`The docker CLI is missing: run \`${INSTALL_HINT}\`.`));
  return run(cli, ['-H', host, ...args], { ...opts, env: cliEnv(opts.env) });
}

/** Like docker() but throws with the command's stderr when it fails; returns stdout. */
export async function dockerOk(host: string, args: string[], opts: Parameters<typeof docker>[2] = {}): Promise<string> {
  const r = await docker(host, args, opts);
  if (r.code !== 0) {
    throw new Error(`docker ${args.join(' ')} failed (exit ${r.code ?? r.signal}):\n${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------------
// Mounts and processes under a directory (cleanup after dockerd and debootstrap)

function decodeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function mountsUnder(dir: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const mp = decodeMountPath(fields[4]);
    if (mp === dir || mp.startsWith(dir + '/')) out.push(mp);
  }
  // Deepest first; the same point can be mounted over more than once.
  return out.sort((a, b) => b.length - a.length);
}

async function unmountAllUnder(dir: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) return;
    for (const mp of mounts) {
      const r = await run('umount', [mp]);
      if (r.code !== 0) {
        const lazy = await run('umount', ['-l', mp]);
        if (lazy.code !== 0) log(`could not unmount ${mp}: ${(r.stderr || lazy.stderr).trim()}`);
      }
    }
  }
  const left = mountsUnder(dir);
  if (left.length) throw new Error(`still mounted under ${dir}: ${left.join(', ')}`);
}

/** Processes (not ours) whose command line names `needle` as or inside an argument. */
function processesNaming(needles: string[]): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue;
    }
    if (argv.some((a) => needles.some((n) => a === n || a.includes(n)))) out.push({ pid, cmd: argv.join(' ') });
  }
  return out;
}

/** Removes a directory tree after unmounting whatever is mounted under it; refuses if a mount stays. */
export async function removeTree(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  await unmountAllUnder(dir);
  for (let attempt = 0; ; attempt++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
      await sleep(300);
      await unmountAllUnder(dir);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Prerequisites

function imageCachePath(): string {
  return join(cacheRoot(), 'images', `test-base-${SUITE}-${baseImageKey()}.tar`);
}

function rootfsCachePath(): string {
  return join(cacheRoot(), 'rootfs', `${SUITE}-${rootfsKey()}.tar`);
}

function daemonPrerequisites(): string | undefined {
  if (process.platform !== 'linux') return `The test Docker engine needs Linux (this is ${process.platform}).`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return `The test Docker engine (an isolated dockerd) needs root; or set ${DOCKER_HOST_ENV} to a daemon you may use.`;
  }
  const missing = ['docker', 'dockerd', 'containerd', 'runc'].filter((b) => !findBinary(b));
  if (missing.length) return `The test Docker engine needs ${missing.join(', ')}: run \`${INSTALL_HINT}\`.`;
  return undefined;
}

function imagePrerequisites(): string | undefined {
  if (fs.existsSync(imageCachePath()) || fs.existsSync(rootfsCachePath())) return undefined;
  if (!findBinary('debootstrap')) return `The test base image needs debootstrap: run \`${INSTALL_HINT}\`.`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'debootstrap (for the test base image) needs root.';
  return undefined;
}

/** Why Docker tests cannot run on this machine (with the command that fixes it), or undefined if they can. */
export function dockerPrerequisites(): string | undefined {
  if (process.env[DOCKER_HOST_ENV]) {
    // A daemon was handed to us (normally with the base image already in it: startForTestRun).
    return findBinary('docker') ? undefined : `The docker CLI is missing: run \`${INSTALL_HINT}\`.`;
  }
  return daemonPrerequisites() ?? imagePrerequisites();
}


/** For node:test: skips the test (or throws on CI) when Docker tests cannot run; returns the reason. */
export function skipUnlessDocker(t: { skip(message?: string): void }): string | undefined {
  return skipOrFail(t, dockerPrerequisites());
}

// ---------------------------------------------------------------------------------------------------
// The daemon

/** Longest path under the temp dir that must fit in sun_path (108 bytes, NUL included). */
const LONGEST_SOCKET_SUFFIX = '/x/containerd/containerd.sock.ttrpc';
const DIR_PREFIX = 'sa-d-';

function shortTempBase(): string {
  const fits = (base: string) => base.length + 1 + DIR_PREFIX.length + 6 + LONGEST_SOCKET_SUFFIX.length < 100;
  const base = tmpdir();
  if (fits(base)) return base;
  if (fs.existsSync('/tmp') && fits('/tmp')) {
    log(`TMPDIR ${base} is too long for containerd's socket path; using /tmp`);
    return '/tmp';
  }
  throw new Error(`No temp dir short enough for containerd's socket path (TMPDIR=${base})`);
}

/** Removes temp dirs of earlier test daemons whose owner and daemon are both gone (killed runs). */
async function sweepStaleDaemonDirs(base: string): Promise<void> {
  let names: string[];
  try {
    names = fs.readdirSync(base).filter((n) => n.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(base, name);
    try {
      const st = fs.statSync(dir);
      if (!st.isDirectory() || Date.now() - st.mtimeMs < 60_000) continue;
      const pidOf = (f: string) => {
        try {
          return Number(fs.readFileSync(join(dir, f), 'utf8').trim()) || undefined;
        } catch {
          return undefined;
        }
      };
      const owner = pidOf('owner.pid');
      const daemon = pidOf('pid');
      if (owner === undefined) continue; // not one of ours (or never got that far)
      if (isAlive(owner) || (daemon !== undefined && isAlive(daemon))) continue;
      if (processesNaming([dir + '/']).length) continue; // a containerd or shim of it still runs
      log(`removing ${dir} left by an earlier run (pid ${owner})`);
      await removeTree(dir);
    } catch (e) {
      log(`could not remove stale ${dir}: ${(e as Error).message}`);
    }
  }
}

function waitForExit(child: ChildProcess, pid: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || !isAlive(pid)) return resolve(true);
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(!isAlive(pid));
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** Starts an isolated dockerd; resolves once `docker info` answers. */
export async function startTestDockerd(): Promise<TestDockerd> {
  const why = daemonPrerequisites();
  if (why) throw new Error(why);
  const started = Date.now();
  const base = shortTempBase();
  await sweepStaleDaemonDirs(base);

  const dir = fs.mkdtempSync(join(base, DIR_PREFIX));
  fs.writeFileSync(join(dir, 'owner.pid'), `${process.pid}\n`);
  const socketPath = join(dir, 'sock');
  const execRoot = join(dir, 'x');
  const logFile = join(dir, 'dockerd.log');
  const configFile = join(dir, 'daemon.json');
  // Our own (empty) config: a host /etc/docker/daemon.json could conflict with the flags below.
  fs.writeFileSync(configFile, '{}\n');
  const host = `unix://${socketPath}`;
  // A namespace of our own in case dockerd finds a system containerd (/run/containerd/containerd.sock)
  // and uses it instead of starting its own: then our containers cannot mix with the host daemon's.
  const ns = `sa-test-${basename(dir).slice(DIR_PREFIX.length).toLowerCase()}`;

  const dockerdArgs = [
    '--config-file', configFile,
    '--data-root', join(dir, 'data'),
    '--exec-root', execRoot,
    '--pidfile', join(dir, 'pid'),
    '-H', host,
    '--bridge=none',
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--containerd-namespace', ns,
    '--containerd-plugins-namespace', `${ns}-plugins`,
  ];
  const dockerdBin = findBinary('dockerd')!;
  // setpriv --pdeathsig: if this process dies without stop() (killed test), dockerd gets SIGTERM and
  // shuts down by itself; setpriv execs dockerd, so the pid is dockerd's. (The signal follows the
  // *thread* that spawned it: call this from the main thread, not from a worker_thread.)
  const setpriv = findBinary('setpriv');
  const [cmd, args] = setpriv
    ? [setpriv, ['--pdeathsig', 'TERM', '--', dockerdBin, ...dockerdArgs]]
    : [dockerdBin, dockerdArgs];
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', out, out], env: cliEnv() });
  fs.closeSync(out);
  child.unref(); // never keep a test process alive by itself; pdeathsig and the exit hook end it
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  if (child.pid === undefined) {
    const e = await spawnError;
    await removeTree(dir);
    throw new Error(`could not start dockerd: ${e.message}`);
  }
  const pid: number = child.pid;
  let stopping: Promise<void> | undefined;
  let exited: string | undefined; // how dockerd ended, once it has
  child.once('exit', (code, signal) => {
    exited = signal ?? `exit code ${code}`;
    if (!stopping) log(`dockerd (pid ${pid}) exited by itself (${exited}); its log ends:\n${tail(logFile, 15)}`);
  });
  const onProcessExit = () => {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  };
  process.on('exit', onProcessExit);
  log(`starting dockerd (pid ${pid}) in ${dir}`);

  const daemon: TestDockerd = {
    host,
    socketPath,
    pid,
    stop: () => (stopping ??= stopDaemon()),
  };

  async function stopDaemon(): Promise<void> {
    const t0 = Date.now();
    try {
      if (!isAlive(pid)) {
        log(`dockerd (pid ${pid}) had already exited (${exited ?? 'how is unknown'}); its log ends:\n${tail(logFile, 15)}`);
      } else {
        // Kill running containers first: dockerd would give each 10 s to handle SIGTERM.
        const ps = await docker(host, ['ps', '-q'], { timeoutMs: 10_000 }).catch(() => undefined);
        const ids = ps?.code === 0 ? ps.stdout.split('\n').filter(Boolean) : [];
        if (ids.length) await docker(host, ['kill', ...ids], { timeoutMs: 20_000 }).catch(() => undefined);
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        if (!(await waitForExit(child, pid, 30_000))) {
          log(`dockerd (pid ${pid}) did not stop in 30 s: SIGKILL`);
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
          await waitForExit(child, pid, 5_000);
        }
      }
      const exitedAfter = secs(t0);
      // containerd and shims normally go with dockerd; end any that did not (ours name our dir or namespace).
      for (let round = 0; round < 3; round++) {
        const strays = processesNaming([dir + '/', ns]);
        if (strays.length === 0) break;
        for (const p of strays) {
          log(`ending stray process ${p.pid}: ${p.cmd.slice(0, 160)}`);
          try {
            process.kill(p.pid, round === 0 ? 'SIGTERM' : 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await sleep(round === 0 ? 1000 : 300);
      }
      await removeTree(dir);
      log(`dockerd (pid ${pid}) stopped in ${exitedAfter} (${exited ?? 'gone'}), ${dir} removed; ${secs(t0)} in all`);
    } finally {
      process.off('exit', onProcessExit);
    }
  }

  // Ready when `docker info` answers.
  const deadline = Date.now() + 60_000;

  for (;;) {
    const r = await docker(host, ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 10_000 }).catch(
      (e: Error) => ({ code: -1, stdout: '', stderr: e.message, signal: null }) as RunResult,
    );
    if (r.code === 0) {
      log(`dockerd ${r.stdout.trim()} ready in ${secs(started)}: ${host}`);
      return daemon;
    }
    if (exited || !isAlive(pid) || Date.now() > deadline) {
      const why = exited || !isAlive(pid) ? `dockerd exited (${exited ?? 'unknown'})` : 'dockerd did not answer in 60 s';
      const logTail = tail(logFile);
      await daemon.stop().catch((e: Error) => log(`cleanup failed: ${e.message}`));
      throw new Error(`${why}; last lines of its log:\n${logTail}`);
    }
    await sleep(100);
  }
}

/**
 * The daemon for this test: the one named by SANDBOX_AGENTS_TEST_DOCKER_HOST (release does nothing),
 * or one started for this process (release stops it).
 */
export async function sharedTestDockerd(): Promise<{ host: string; release(): Promise<void> }> {
  const given = process.env[DOCKER_HOST_ENV];
  if (given) {
    const host = given.includes('://') ? given : `unix://${given}`;
    return { host, release: async () => {} };
  }
  // One daemon per process while anyone holds it: concurrent tests in one process share it, and the
  // last release stops it.
  if (!processDaemon) {
    const starting = startTestDockerd();
    processDaemon = { daemon: starting, users: 0 };
    starting.catch(() => (processDaemon = undefined));
  }
  const entry = processDaemon;
  entry.users++;
  let d: TestDockerd;
  try {
    d = await entry.daemon;
  } catch (e) {
    entry.users--;
    throw e;
  }
  let released = false;
  return {
    host: d.host,
    release: async () => {
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      if (processDaemon === entry) processDaemon = undefined;
      await d.stop();
    },
  };
}
let processDaemon: { daemon: Promise<TestDockerd>; users: number } | undefined;

/**
 * For the test runner: one daemon with the base image in it for a whole run. Pass `env` to child test
 * processes, call stop() when they are done.
 */
export async function startForTestRun(): Promise<{ env: Record<string, string>; stop(): Promise<void> }> {
  const d = await startTestDockerd();
  try {
    await ensureBaseImage(d.host);
  } catch (e) {
    await d.stop().catch((err: Error) => log(`cleanup failed: ${err.message}`));
    throw e;
  }
  return { env: { [DOCKER_HOST_ENV]: d.host }, stop: () => d.stop() };
}

// ---------------------------------------------------------------------------------------------------
// A lock file between processes (pid-based; a lock whose process is gone is taken over)

async function withLock<T>(lockPath: string, what: string, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(dirname(lockPath), { recursive: true });
  const me = `${process.pid} ${hostname()}`;
  const deadline = Date.now() + 20 * 60_000;
  let lastNote = 0;
  for (;;) {
    try {
      const fd = fs.openSync(lockPath, 'wx');
      fs.writeSync(fd, `${me}\n`);
      fs.closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = '';
    try {
      holder = fs.readFileSync(lockPath, 'utf8').trim();
    } catch {
      continue; // released meanwhile
    }
    const [pidText, host] = holder.split(' ');
    const pid = Number(pidText);
    const stale = holder !== '' && host === hostname() && Number.isInteger(pid) && pid > 0 && !isAlive(pid);
    if (stale || (holder === '' && Date.now() - (fs.statSync(lockPath, { throwIfNoEntry: false })?.mtimeMs ?? 0) > 10_000)) {
      try {
        if (fs.readFileSync(lockPath, 'utf8').trim() === holder) fs.unlinkSync(lockPath);
        log(`took over the stale lock ${lockPath} (${holder || 'empty'})`);
      } catch {
        /* someone else did */
      }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${lockPath} (held by ${holder}); delete it if that process is gone`);
    if (Date.now() - lastNote > 15_000) {
      log(`waiting for ${what}: lock held by ${holder}`);
      lastNote = Date.now();
    }
    await sleep(500);
  }
  try {
    return await fn();
  } finally {
    try {
      if (fs.readFileSync(lockPath, 'utf8').trim() === me) fs.unlinkSync(lockPath);
    } catch {
      /* gone */
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The root filesystem (debootstrap, cached as a tarball)

function rootfsKey(): string {
  const packages = [...BASE_PACKAGES].sort();
  return sha(JSON.stringify({ suite: SUITE, variant: VARIANT, packages, recipe: RECIPE })).slice(0, 12);
}

function mirror(): string {
  return process.env.SANDBOX_AGENTS_DEBIAN_MIRROR || 'http://deb.debian.org/debian';
}

/** Returns the cached rootfs tarball, making it with debootstrap first if needed. */
export async function ensureRootfsTarball(): Promise<string> {
  const target = rootfsCachePath();
  if (fs.existsSync(target)) return target;
  return withLock(`${target}.lock`, 'the debootstrap of another process', async () => {
    if (fs.existsSync(target)) return target; // made while we waited
    const debootstrap = findBinary('debootstrap');
    if (!debootstrap) throw new Error(`debootstrap is missing: run \`${INSTALL_HINT}\``);
    // Work dirs of earlier runs of this same key that were killed (we hold the lock, so none is ours).
    const workPrefix = `.work-${rootfsKey()}-`;
    for (const n of fs.readdirSync(dirname(target))) {
      const stale = join(dirname(target), n);
      if (!n.startsWith(workPrefix) || processesNaming([stale + '/']).length) continue;
      log(`removing ${stale} left by an earlier run`);
      await removeTree(stale).catch((e: Error) => log(`could not remove ${stale}: ${e.message}`));
    }
    const work = fs.mkdtempSync(join(dirname(target), workPrefix));
    const root = join(work, 'root');
    const logFile = join(work, 'debootstrap.log');
    const t0 = Date.now();
    try {
      const args = [`--variant=${VARIANT}`, `--include=${[...BASE_PACKAGES].sort().join(',')}`, SUITE, root, mirror()];
      log(`debootstrap ${args.join(' ')} (once; about a minute)`);
      const heartbeat = setInterval(() => {
        const last = tail(logFile, 2).trim().split('\n').pop();
        log(`  debootstrap ${secs(t0)}: ${last ?? ''}`);
      }, 15_000);
      let r: RunResult;
      try {
        r = await run(debootstrap, args, { stdoutFile: logFile, timeoutMs: 20 * 60_000 });
      } finally {
        clearInterval(heartbeat);
      }
      if (r.code !== 0) {
        throw new Error(`debootstrap failed (exit ${r.code ?? r.signal}): ${r.stderr.trim()}\n${tail(logFile)}`);
      }
      log(`debootstrap done in ${secs(t0)}`);
      await unmountAllUnder(root); // debootstrap unmounts /proc and /sys itself; be sure
      trimRootfs(root);
      const partial = join(work, 'rootfs.tar');
      const t1 = Date.now();
      const tar = await run('tar', ['--numeric-owner', '-C', root, '-cf', partial, '.']);
      if (tar.code !== 0) throw new Error(`tar failed: ${tar.stderr.trim()}`);
      fs.renameSync(partial, target); // atomic: same directory tree, same filesystem
      log(`root filesystem cached: ${target} (${(fs.statSync(target).size / 1e6).toFixed(0)} MB, tar ${secs(t1)})`);
      return target;
    } finally {
      await removeTree(work).catch((e: Error) => log(`could not remove ${work}: ${e.message}`));
    }
  });
}

/** What an image does not need: downloaded .debs, apt lists, docs, the host's resolv.conf and hostname. */
function trimRootfs(root: string): void {
  const emptyDir = (rel: string, keep: (name: string) => boolean = () => false) => {
    const d = join(root, rel);
    let names: string[];
    try {
      names = fs.readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) if (!keep(n)) fs.rmSync(join(d, n), { recursive: true, force: true });
  };
  emptyDir('var/cache/apt/archives', (n) => !n.endsWith('.deb'));
  emptyDir('var/lib/apt/lists', (n) => n === 'partial' || n === 'lock');
  emptyDir('var/cache/apt', (n) => n === 'archives');
  const emptyFilesUnder = (rel: string) => {
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else fs.rmSync(join(d, e.name), { force: true });
      }
    };
    try {
      walk(join(root, rel));
    } catch {
      /* missing */
    }
  };
  emptyFilesUnder('var/log'); // keep the directories (apt, …) that packages expect
  emptyDir('usr/share/doc', () => false);
  emptyDir('usr/share/man', () => false);
  emptyDir('usr/share/info', () => false);
  emptyDir('usr/share/locale', (n) => n === 'locale.alias');
  emptyDir('tmp', () => false);
  emptyDir('dev', () => false); // Docker mounts its own /dev
  fs.writeFileSync(join(root, 'etc/resolv.conf'), '');
  fs.writeFileSync(join(root, 'etc/hostname'), 'sandbox\n');
}

// ---------------------------------------------------------------------------------------------------
// The base image

/** The node binary copied into the image: the host's /usr/bin/node (the test docs' recipe), else ours. */
function nodeForImage(): string {
  return process.env.SANDBOX_AGENTS_TEST_IMAGE_NODE || (fs.existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath);
}

function dockerfile(rootfsImage: string): string {
  return [
    `FROM ${rootfsImage}`,
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8',
    'COPY node /usr/local/bin/node',
    `RUN groupadd --gid ${SANDBOX_UID} sandbox \\`,
    ` && useradd --uid ${SANDBOX_UID} --gid ${SANDBOX_UID} --create-home --home-dir /home/sandbox --shell /bin/bash sandbox \\`,
    ' && mkdir -p /work/repo && chown sandbox:sandbox /work/repo \\',
    ' && node --version',
    'CMD ["/bin/bash"]',
    '',
  ].join('\n');
}

let keyMemo: string | undefined;
/** Changes whenever the rootfs, the node binary or the Dockerfile would. */
function baseImageKey(): string {
  if (keyMemo) return keyMemo;
  const node = nodeForImage();
  let nodeId = node;
  try {
    const st = fs.statSync(node);
    nodeId = `${node}:${st.size}:${Math.floor(st.mtimeMs)}`;
  } catch {
    /* reported when building */
  }
  keyMemo = sha(JSON.stringify({ rootfs: rootfsKey(), node: nodeId, dockerfile: dockerfile('ROOTFS'), recipe: RECIPE })).slice(0, 12);
  return keyMemo;
}

async function imageLabel(host: string, image: string): Promise<string | undefined> {
  const r = await docker(host, ['image', 'inspect', '--format', `{{index .Config.Labels "${LABEL_KEY}"}}`, image]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

async function imageExists(host: string, image: string): Promise<boolean> {
  return (await docker(host, ['image', 'inspect', '--format', '{{.Id}}', image])).code === 0;
}

/** Whether to keep a `docker save` of the finished image (measured: loading it beats import+build). */
const SAVE_IMAGE_TARBALL = true;

const ensuring = new Map<string, Promise<string>>();

/** Makes sure BASE_IMAGE (current version) is in the daemon at `host`; returns its name. */
export function ensureBaseImage(host: string): Promise<string> {
  let p = ensuring.get(host);
  if (!p) {
    p = ensureBaseImageOnce(host).finally(() => ensuring.delete(host));
    ensuring.set(host, p);
  }
  return p;
}

async function ensureBaseImageOnce(host: string): Promise<string> {
  const key = baseImageKey();
  if ((await imageLabel(host, BASE_IMAGE)) === key) return BASE_IMAGE;
  const lock = join(cacheRoot(), 'locks', `image-${sha(host).slice(0, 12)}.lock`);
  return withLock(lock, `another process putting the base image into ${host}`, async () => {
    if ((await imageLabel(host, BASE_IMAGE)) === key) return BASE_IMAGE;
    const t0 = Date.now();
    const saved = imageCachePath();
    if (fs.existsSync(saved)) {
      const r = await docker(host, ['load', '-q', '-i', saved], { timeoutMs: 10 * 60_000 });
      if (r.code === 0 && (await imageLabel(host, BASE_IMAGE)) === key) {
        log(`${BASE_IMAGE} loaded from ${saved} in ${secs(t0)}`);
        return BASE_IMAGE;
      }
      log(`the saved image ${saved} did not load (${r.stderr.trim() || 'wrong label'}); building instead`);
      fs.rmSync(saved, { force: true });
    }

    const rootfs = await ensureRootfsTarball();
    const rootfsImage = `${ROOTFS_REPO}:${SUITE}-${rootfsKey()}`;
    const t1 = Date.now();
    if (!(await imageExists(host, rootfsImage))) {
      await dockerOk(host, ['import', rootfs, rootfsImage], { timeoutMs: 10 * 60_000 });
      log(`imported ${rootfsImage} in ${secs(t1)}`);
    }

    const t2 = Date.now();
    const node = nodeForImage();
    const ctx = fs.mkdtempSync(join(tmpdir(), 'sa-img-'));
    try {
      try {
        fs.linkSync(node, join(ctx, 'node'));
      } catch {
        fs.copyFileSync(node, join(ctx, 'node'));
      }
      fs.writeFileSync(join(ctx, 'Dockerfile'), dockerfile(rootfsImage));
      await dockerOk(host, ['build', '-q', '--network', 'none', '--label', `${LABEL_KEY}=${key}`, '-t', BASE_IMAGE, ctx], {
        env: { DOCKER_BUILDKIT: '0' },
        timeoutMs: 10 * 60_000,
      });
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true });
    }
    log(`built ${BASE_IMAGE} (node from ${node}) in ${secs(t2)}; import + build ${secs(t1)}`);

    if (SAVE_IMAGE_TARBALL) {
      const t3 = Date.now();
      fs.mkdirSync(dirname(saved), { recursive: true });
      const partial = `${saved}.${process.pid}.partial`;
      try {
        await dockerOk(host, ['save', '-o', partial, BASE_IMAGE], { timeoutMs: 10 * 60_000 });
        fs.renameSync(partial, saved);
        // Older saves (other keys) are dead weight.
        for (const n of fs.readdirSync(dirname(saved))) {
          if (n.startsWith(`test-base-${SUITE}-`) && join(dirname(saved), n) !== saved && !n.endsWith('.partial')) {
            fs.rmSync(join(dirname(saved), n), { force: true });
          }
        }
        log(`saved ${BASE_IMAGE} to ${saved} in ${secs(t3)}`);
      } catch (e) {
        fs.rmSync(partial, { force: true });
        log(`could not save the image (${(e as Error).message}); next time it is built again`);
      }
    }
    log(`${BASE_IMAGE} ready in ${secs(t0)}`);
    return BASE_IMAGE;
  });
}

// ---------------------------------------------------------------------------------------------------
// A local stand-in for the official node image (the `BASE` of the harness images)

/** A stable name (callers pass it as the bridge's base image); what it holds is keyed by nodeBaseImageKey(). */
export const NODE_BASE_IMAGE = 'sandbox-agents/test-node-base:bookworm';
const NODE_BASE_LABEL_KEY = 'sandbox-agents.test-node-base.key';
/** Bump when the node base's recipe changes: it is part of its cache key. */
const NODE_BASE_RECIPE = 1;

/** The npm package copied into the node base: the host's (`$(npm root -g)/npm`). */
function npmForImage(): string {
  const given = process.env.SANDBOX_AGENTS_TEST_IMAGE_NPM;
  if (given) return given;
  const npm = findBinary('npm');
  if (!npm) throw new Error('npm is missing: the node base image copies the host\'s npm package');
  // …/node_modules/npm/bin/npm-cli.js (npm on PATH is a link to it)
  return dirname(dirname(fs.realpathSync(npm)));
}

/** CA certificates this machine adds to the system store (Debian's place for them): TLS from inside
 *  builds must trust what the host trusts (here an egress proxy re-signs HTTPS). */
const HOST_CA_DIR = '/usr/local/share/ca-certificates';
function hostExtraCas(): { rel: string; abs: string }[] {
  const out: { rel: string; abs: string }[] = [];
  const walk = (dir: string, rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(dir, e.name), r);
      else if (e.name.endsWith('.crt')) out.push({ rel: r, abs: join(dir, e.name) });
    }
  };
  walk(HOST_CA_DIR, '');
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}

function nodeBaseDockerfile(rootfsImage: string, withCas: boolean): string {
  return [
    `FROM ${rootfsImage}`,
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8',
    ...(withCas
      ? [
          `COPY ca/ ${HOST_CA_DIR}/`,
          'RUN update-ca-certificates >/dev/null',
          // node (so npm) trusts only its own CA list unless told otherwise.
          'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
        ]
      : []),
    // Where the official node image has them: npm's global prefix is then /usr/local as there.
    'COPY node /usr/local/bin/node',
    'COPY npm /usr/local/lib/node_modules/npm',
    'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\',
    ' && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\',
    // The official image's user, which the sandbox images must live with.
    ' && groupadd --gid 1000 node \\',
    ' && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\',
    ' && node --version && npm --version',
    'CMD ["node"]',
    '',
  ].join('\n');
}

let nodeBaseKeyMemo: string | undefined;
function nodeBaseKey(): string {
  if (nodeBaseKeyMemo) return nodeBaseKeyMemo;
  const node = nodeForImage();
  let nodeId = node;
  try {
    const st = fs.statSync(node);
    nodeId = `${node}:${st.size}:${Math.floor(st.mtimeMs)}`;
  } catch {
    /* reported when building */
  }
  let npmId = 'unknown';
  try {
    const dir = npmForImage();
    npmId = `${dir}:${(JSON.parse(fs.readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version}`;
  } catch {
    /* reported when building */
  }
  const cas = hostExtraCas().map((c) => `${c.rel}:${sha(fs.readFileSync(c.abs, 'utf8'))}`);
  nodeBaseKeyMemo = sha(
    JSON.stringify({ rootfs: rootfsKey(), node: nodeId, npm: npmId, cas, dockerfile: nodeBaseDockerfile('ROOTFS', cas.length > 0), recipe: NODE_BASE_RECIPE }),
  ).slice(0, 12);
  return nodeBaseKeyMemo;
}

/** Changes with everything NODE_BASE_IMAGE is made from (images built on it are cached under it). */
export function nodeBaseImageKey(): string {
  return nodeBaseKey();
}

function nodeBaseCachePath(): string {
  return join(cacheRoot(), 'images', `test-node-base-${SUITE}-${nodeBaseKey()}.tar`);
}

const ensuringNodeBase = new Map<string, Promise<string>>();

/**
 * Makes sure NODE_BASE_IMAGE is in the daemon at `host` and returns its name: what `node:20-bookworm-slim`
 * is for users, made offline: the debootstrapped root filesystem, the host's node at /usr/local/bin and
 * its npm package at /usr/local/lib/node_modules/npm (with `npm`/`npx` links), and the user `node` (uid
 * 1000), and the CA certificates this machine added to its store (like a corporate base image). Images
 * built FROM it can `RUN npm install -g …` when built with `--network host`. Cached as a
 * `docker save` tarball under ~/.cache/sandbox-agents/images like BASE_IMAGE.
 */
export function ensureNodeBaseImage(host: string): Promise<string> {
  let p = ensuringNodeBase.get(host);
  if (!p) {
    p = ensureNodeBaseImageOnce(host).finally(() => ensuringNodeBase.delete(host));
    ensuringNodeBase.set(host, p);
  }
  return p;
}

async function nodeBaseLabel(host: string): Promise<string | undefined> {
  const r = await docker(host, ['image', 'inspect', '--format', `{{index .Config.Labels "${NODE_BASE_LABEL_KEY}"}}`, NODE_BASE_IMAGE]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

async function ensureNodeBaseImageOnce(host: string): Promise<string> {
  const key = nodeBaseKey();
  const image = NODE_BASE_IMAGE;
  if ((await nodeBaseLabel(host)) === key) return image;
  const lock = join(cacheRoot(), 'locks', `node-base-${sha(host).slice(0, 12)}.lock`);
  return withLock(lock, `another process putting the node base image into ${host}`, async () => {
    if ((await nodeBaseLabel(host)) === key) return image;
    const t0 = Date.now();
    const saved = nodeBaseCachePath();
    if (fs.existsSync(saved)) {
      const r = await docker(host, ['load', '-q', '-i', saved], { timeoutMs: 10 * 60_000 });
      if (r.code === 0 && (await nodeBaseLabel(host)) === key) {
        log(`${image} loaded from ${saved} in ${secs(t0)}`);
        return image;
      }
      log(`the saved image ${saved} did not load (${r.stderr.trim() || 'wrong label'}); building instead`);
      fs.rmSync(saved, { force: true });
    }

    const rootfs = await ensureRootfsTarball();
    const rootfsImage = `${ROOTFS_REPO}:${SUITE}-${rootfsKey()}`;
    if (!(await imageExists(host, rootfsImage))) {
      const t1 = Date.now();
      await dockerOk(host, ['import', rootfs, rootfsImage], { timeoutMs: 10 * 60_000 });
      log(`imported ${rootfsImage} in ${secs(t1)}`);
    }
    const t2 = Date.now();
    const node = nodeForImage();
    const npm = npmForImage();
    const ctx = fs.mkdtempSync(join(tmpdir(), 'sa-img-'));
    try {
      try {
        fs.linkSync(node, join(ctx, 'node'));
      } catch {
        fs.copyFileSync(node, join(ctx, 'node'));
      }
      fs.cpSync(npm, join(ctx, 'npm'), { recursive: true, verbatimSymlinks: true });
      const cas = hostExtraCas();
      for (const c of cas) {
        fs.mkdirSync(dirname(join(ctx, 'ca', c.rel)), { recursive: true });
        fs.copyFileSync(c.abs, join(ctx, 'ca', c.rel));
      }
      fs.writeFileSync(join(ctx, 'Dockerfile'), nodeBaseDockerfile(rootfsImage, cas.length > 0));
      await dockerOk(host, ['build', '-q', '--network', 'none', '--label', `${NODE_BASE_LABEL_KEY}=${key}`, '-t', image, ctx], {
        env: { DOCKER_BUILDKIT: '0' },
        timeoutMs: 10 * 60_000,
      });
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true });
    }
    log(`built ${image} (node ${node}, npm ${npm}, ${hostExtraCas().length} CA certificates of this machine) in ${secs(t2)}`);

    const t3 = Date.now();
    fs.mkdirSync(dirname(saved), { recursive: true });
    const partial = `${saved}.${process.pid}.partial`;
    try {
      await dockerOk(host, ['save', '-o', partial, image], { timeoutMs: 10 * 60_000 });
      fs.renameSync(partial, saved);
      for (const n of fs.readdirSync(dirname(saved))) {
        if (n.startsWith(`test-node-base-${SUITE}-`) && join(dirname(saved), n) !== saved && !n.endsWith('.partial')) {
          fs.rmSync(join(dirname(saved), n), { force: true });
        }
      }
      log(`saved ${image} to ${saved} in ${secs(t3)}`);
    } catch (e) {
      fs.rmSync(partial, { force: true });
      log(`could not save the image (${(e as Error).message}); next time it is built again`);
    }
    log(`${image} ready in ${secs(t0)}`);
    return image;
  });
}

/** The cache folder for saved images (`docker save` tarballs). */
export function imageCacheDir(): string {
  return join(cacheRoot(), 'images');
}

/** Runs `fn` holding a lock file named `name` under the cache's locks folder (one process at a time). */
export function withCacheLock<T>(name: string, what: string, fn: () => Promise<T>): Promise<T> {
  return withLock(join(cacheRoot(), 'locks', `${name}.lock`), what, fn);
}
