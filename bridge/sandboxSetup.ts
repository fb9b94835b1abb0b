/**
 * Everything a session run through the in-sandbox init needs on the host before its sandbox starts:
 * the session folder with its egress and ingress directories (modes as measured in
 * shared/docs/sandbox-networking.md), the work tree (the mounted workspace, a git worktree on a
 * branch of its own, or a folder to clone into), the stub keys, and the init config — written in
 * the paths the sandbox will see them at (container paths for Docker, host paths for the host
 * runtime).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { INIT_CONFIG_ENV, INIT_CONFIG_VERSION, providerFor, type InitConfig, type Provider, type WorkspaceMode } from '../protocol/sandbox';
import type { SandboxSpec } from './runtimes/runtime';
import type { StoredAgent, StoredSession } from './stateStore';

const run = promisify(execFile);

/** Inside a container. */
export const CONTAINER = {
  programs: '/opt/sandbox-agents',
  egress: '/run/sandbox',
  ingress: '/run/sandbox-in',
  workdir: '/work/repo',
  home: '/home/sandbox',
  sdkNodePath: '/opt/claude-agent-sdk/node_modules',
  proxyPort: 3128,
  harnessPort: 4096,
} as const;

export const API_HARNESSES = new Set(['opencode', 'claude-agent-sdk']);

export interface SandboxLayout {
  dir: string;
  egressDir: string;
  ingressDir: string;
  egressSocket: string;
  ingressSocket: string;
  configFile: string;
}

/** Longest socket path we bind (the kernel's limit is 107 bytes; a margin for the names). */
const MAX_SOCKET_PATH = 100;

export function layout(sessionDir: string): SandboxLayout {
  const base = socketBase(sessionDir);
  const egressDir = join(base, 'egress');
  const ingressDir = join(base, 'ingress');
  return {
    dir: sessionDir,
    egressDir,
    ingressDir,
    egressSocket: join(egressDir, 'egress.sock'),
    ingressSocket: join(ingressDir, 'ingress.sock'),
    configFile: join(egressDir, 'init.json'),
  };
}

/**
 * Where a session's socket folders live: in its session folder, unless a deep state dir would make
 * the socket paths longer than a unix socket allows; then in a short folder of this user's under the
 * temp dir (0700, checked to be ours), named after the session.
 */
function socketBase(sessionDir: string): string {
  if (join(sessionDir, 'ingress', 'ingress.sock').length <= MAX_SOCKET_PATH) return sessionDir;
  const root = join(tmpdir(), `sa-s-${process.getuid?.() ?? 'u'}`);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const st = lstatSync(root);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) throw new Error(`${root} is not a folder of this user's: remove it, or use a shorter state dir`);
  chmodSync(root, 0o700);
  return join(root, basename(sessionDir).replace(/-/g, '').slice(0, 16));
}

export function workspaceMode(agent: StoredAgent): WorkspaceMode {
  if (agent.workspace_mode) return agent.workspace_mode;
  if (agent.workspace_path) return 'mount';
  if (agent.repo_url) return 'clone';
  return 'none';
}

/** `stub_<provider>_<8 hex>`: what the sandbox holds instead of a key. */
export function makeStubs(): Record<Provider, string> {
  return { anthropic: `stub_anthropic_${randomBytes(4).toString('hex')}`, openai: `stub_openai_${randomBytes(4).toString('hex')}` };
}

/** Prefix of the agent's secrets in `session.stubs` (`env:MY_TOKEN` → its stub), beside the providers'. */
export const SECRET_STUB_PREFIX = 'env:';

/** `stub_<name>_<8 hex>` for each of the agent's secret env vars, keeping those the session already has. */
export function makeSecretStubs(names: string[], existing: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const key = SECRET_STUB_PREFIX + name;
    out[key] = existing[key] ?? `stub_${name}_${randomBytes(4).toString('hex')}`;
  }
  return out;
}

/** The secrets' stubs by env var name. */
export function secretStubs(stubs: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(stubs ?? {}).filter(([k]) => k.startsWith(SECRET_STUB_PREFIX)).map(([k, v]) => [k.slice(SECRET_STUB_PREFIX.length), v]));
}

/** The model providers' stubs (everything in `session.stubs` that is not a secret's). */
export function providerStubs(stubs: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(stubs ?? {}).filter(([k]) => !k.startsWith(SECRET_STUB_PREFIX)));
}

export interface PrepareOptions {
  runtime: 'docker' | 'host';
  session: StoredSession;
  agent: StoredAgent;
  stubs: Record<string, string>;
  /** Host folder of our sandbox programs (dist/sandbox). */
  programsDir: string;
  /** Host runtime: folders searched for the CLIs first. */
  binDirs: string[];
  /** `shell`: the program. */
  shellCommand: string[];
  /** Docker: the uid the container runs as; folders the bridge creates for it are handed to it when the bridge runs as root. */
  sandboxUid?: number;
  /** The bridge CA's certificate (never its key), trusted by the sandbox for intercepted hosts. */
  caCertPem?: string;
}

export interface Prepared {
  layout: SandboxLayout;
  /** What to merge into the runtime's spec. */
  spec: Pick<SandboxSpec, 'command' | 'env' | 'binds' | 'workdir'>;
}

export async function prepareSandbox(o: PrepareOptions, sessionDir: string): Promise<Prepared> {
  const l = layout(sessionDir);
  mkdirSync(sessionDir, { recursive: true, mode: 0o700 });
  chmodSync(sessionDir, 0o700);
  mkdirSync(l.egressDir, { recursive: true });
  mkdirSync(l.ingressDir, { recursive: true });
  // Egress: the sandbox may search the folder and connect to the socket, nothing else (mounted read-only).
  chmodSync(l.egressDir, 0o711);
  // Ingress: the sandbox (another uid) creates its socket here. On the host runtime it is our own uid.
  chmodSync(l.ingressDir, o.runtime === 'docker' ? 0o777 : 0o700);

  const mode = workspaceMode(o.agent);
  const docker = o.runtime === 'docker';
  const binds: NonNullable<SandboxSpec['binds']> = [];
  let hostWorkdir: string;
  switch (mode) {
    case 'mount': {
      if (!o.agent.workspace_path) throw new Error('workspace mode "mount" needs a workspace folder');
      if (!existsSync(o.agent.workspace_path)) throw new Error(`the workspace folder ${o.agent.workspace_path} does not exist`);
      hostWorkdir = o.agent.workspace_path;
      break;
    }
    case 'worktree': {
      if (!o.agent.workspace_path) throw new Error('workspace mode "worktree" needs a workspace folder that is a git repository');
      const wt = await ensureWorktree(o.agent.workspace_path, join(sessionDir, 'worktree'), `sandbox-agents/${o.session.id.slice(0, 8)}`);
      hostWorkdir = wt.path;
      // The worktree's `.git` file points into the repository's git folder by absolute path: mount that
      // folder at the same path so git works inside the sandbox.
      if (docker) binds.push({ source: wt.commonDir, target: wt.commonDir });
      handOver(wt.path, o.sandboxUid);
      // What git just wrote into the repository as root belongs to the repository's owner again.
      if (process.getuid?.() === 0) {
        const owner = statSync(wt.commonDir);
        if (owner.uid !== 0) chownNewEntries(wt.commonDir, owner.uid, owner.gid);
      }
      break;
    }
    case 'clone':
    case 'none': {
      // A folder of the session's own (kept after the session ends: nothing the agent made is lost).
      hostWorkdir = join(sessionDir, 'repo');
      mkdirSync(hostWorkdir, { recursive: true });
      handOver(hostWorkdir, o.sandboxUid);
      break;
    }
  }
  if (docker) {
    binds.push({ source: o.programsDir, target: CONTAINER.programs, readOnly: true });
    binds.push({ source: l.egressDir, target: CONTAINER.egress, readOnly: true });
    binds.push({ source: l.ingressDir, target: CONTAINER.ingress });
    binds.push({ source: hostWorkdir, target: CONTAINER.workdir });
  }
  const api = API_HARNESSES.has(o.agent.harness_id);
  const home = docker ? CONTAINER.home : join(sessionDir, 'home');
  if (!docker) mkdirSync(home, { recursive: true, mode: 0o700 });
  const inside = (hostPath: string, containerPath: string) => (docker ? containerPath : hostPath);
  const caFile = join(l.egressDir, 'ca.pem');
  if (o.caCertPem) {
    writeFileSync(caFile, o.caCertPem, { mode: 0o644 });
    chmodSync(caFile, 0o644);
  }
  const config: InitConfig = {
    version: INIT_CONFIG_VERSION,
    session_id: o.session.id,
    harness: o.agent.harness_id,
    model: o.agent.model,
    prompt: o.agent.prompt,
    workdir: inside(hostWorkdir, CONTAINER.workdir),
    home,
    workspace: { mode, ...(o.agent.repo_url ? { repo_url: o.agent.repo_url } : {}), ...(o.agent.branch && o.agent.repo_url ? { branch: o.agent.branch } : {}) },
    egress_socket: inside(l.egressSocket, `${CONTAINER.egress}/egress.sock`),
    proxy_port: docker ? CONTAINER.proxyPort : 0,
    ingress_socket: api ? inside(l.ingressSocket, `${CONTAINER.ingress}/ingress.sock`) : null,
    harness_port: api && docker ? CONTAINER.harnessPort : 0,
    credentials: { [providerFor(o.agent.harness_id, o.agent.model)]: o.stubs[providerFor(o.agent.harness_id, o.agent.model)] ?? '' },
    shell_command: o.shellCommand,
    // The agent's secrets: stubs only; the egress proxy swaps them toward the hosts they are bound to.
    env: secretStubs(o.stubs),
    ...(o.caCertPem ? { ca_file: inside(caFile, `${CONTAINER.egress}/ca.pem`) } : {}),
    bin_dirs: docker ? [] : o.binDirs,
    programs_dir: inside(o.programsDir, CONTAINER.programs),
    ...(docker ? { sdk_node_path: CONTAINER.sdkNodePath } : {}),
  };
  writeFileSync(l.configFile, JSON.stringify(config, null, 2), { mode: 0o644 });
  chmodSync(l.configFile, 0o644);
  const configPath = inside(l.configFile, `${CONTAINER.egress}/init.json`);
  const initScript = inside(join(o.programsDir, 'init.js'), `${CONTAINER.programs}/init.js`);
  return {
    layout: l,
    spec: {
      command: docker
        ? ['/usr/bin/tini', '-s', '--', 'node', initScript]
        : // Under Electron (desktop VS Code), its binary is a Node only with ELECTRON_RUN_AS_NODE.
          [...(process.versions.electron ? ['/usr/bin/env', 'ELECTRON_RUN_AS_NODE=1'] : []), process.execPath, initScript],
      env: {
        [INIT_CONFIG_ENV]: configPath,
        // git refuses a repository owned by another uid (the mounted workspace, as the sandbox sees it).
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: 'safe.directory',
        GIT_CONFIG_VALUE_0: '*',
      },
      binds,
      workdir: inside(hostWorkdir, CONTAINER.workdir),
    },
  };
}

/** A git worktree of `repo` at `path` on `branch` (created from HEAD); reused when it exists. */
export async function ensureWorktree(repo: string, path: string, branch: string): Promise<{ path: string; commonDir: string }> {
  // The user chose this folder: trust it even when another uid owns it (git's "dubious ownership").
  const git = (args: string[], cwd = repo) => run('git', ['-c', `safe.directory=*`, ...args], { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } }).then((r) => r.stdout.trim());
  let top: string;
  try {
    top = await git(['rev-parse', '--show-toplevel']);
  } catch {
    throw new Error(`workspace mode "worktree" needs a git repository, and ${repo} is not one`);
  }
  const common = await git(['rev-parse', '--git-common-dir']);
  const commonDir = isAbsolute(common) ? common : resolve(repo, common);
  if (!existsSync(join(path, '.git'))) {
    try {
      await git(['worktree', 'add', '-b', branch, path, 'HEAD'], top);
    } catch (err) {
      const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
      if (/already exists/.test(msg) && !existsSync(path)) await git(['worktree', 'add', path, branch], top);
      else throw new Error(`could not create a worktree of ${top} on branch ${branch}: ${msg.split('\n').pop()}`);
    }
  }
  return { path, commonDir };
}

/** A bridge running as root hands the folders it made to the sandbox's uid so the agent can write them. */
function handOver(dir: string, uid: number | undefined): void {
  if (uid === undefined || process.getuid?.() !== 0 || uid === 0) return;
  chownTree(dir, uid, uid, () => true);
}

/** Entries owned by root under `dir` go to uid:gid (a bridge running as root touched the repository). */
function chownNewEntries(dir: string, uid: number, gid: number): void {
  for (const name of readdirSync(dir)) chownTree(join(dir, name), uid, gid, (st) => st.uid === 0);
}

/** `path` and everything below it (symlinks not followed) to uid:gid where `which` says so. */
function chownTree(path: string, uid: number, gid: number, which: (st: Stats) => boolean): void {
  const st = lstatSync(path);
  if (which(st)) chownSync(path, uid, gid);
  if (st.isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid, which);
}

/** The ingress socket, refusing anything that is not a socket (a symlink planted by the sandbox). */
export function checkIngressSocket(path: string, uid: number | undefined): string | undefined {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 'the harness server is not listening (no ingress socket)';
  }
  if (!st.isSocket()) return 'the ingress socket is not a socket';
  if (uid !== undefined && st.uid !== uid) return `the ingress socket belongs to uid ${st.uid}, not the sandbox's ${uid}`;
  return undefined;
}
