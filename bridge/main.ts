/**
 * `node dist/bridge.js serve [--port 0] [--state-dir DIR] [--runtime docker|host] [--docker-host URL]
 *   [--image IMAGE] [--base-image IMAGE] [--build-network MODE] [--master-key-file F] [--allow-origin O]… [--idle-timeout-minutes N] [--verbose] [--extra-ca-file F]`
 *
 * A local agent platform: the platform API and /tty on 127.0.0.1, sessions in Docker containers (or
 * host processes). Prints exactly one line on stdout when ready:
 * `{"event":"listening","url":"http://127.0.0.1:<port>","pid":<pid>}`; logs go to stderr and to
 * `bridge.log` in the state dir. SIGTERM closes sockets and flushes state; sandboxes keep running.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Api } from './api';
import { CertificateAuthority } from './ca';
import { createLog, type BridgeLog } from './log';
import type Docker from 'dockerode';
import { ImageBuilder } from './images';
import { DockerRuntime, type ImageSource } from './runtimes/docker';
import { Providers } from './sandboxNet';
import { HostRuntime, runHolder } from './runtimes/host';
import type { Runtime } from './runtimes/runtime';
import type { BridgeStatus } from '../protocol/harnesses';
import { BridgeServer } from './server';
import { SessionService } from './sessions';
import { StateStore } from './stateStore';

export const BRIDGE_VERSION = '0.1.0';

export interface ServeOptions {
  port: number;
  stateDir: string;
  runtime: 'docker' | 'host';
  dockerHost?: string;
  /** `shell` sessions run their shell directly in this image (pulled when missing) instead of the built shell image. */
  image?: string;
  /** Build arg BASE of the harness images (default node:20-bookworm-slim; a corporate mirror's copy). */
  baseImage?: string;
  /** Docker network mode for image builds (`host` where the default bridge network is unavailable). */
  buildNetwork?: string;
  masterKeyFile?: string;
  allowOrigins: string[];
  idleTimeoutMinutes: number;
  verbose: boolean;
  /** PEM files of CAs the egress proxy trusts for intercepted upstreams besides Node's roots (tests). */
  extraCaFiles?: string[];
}

export function defaultStateDir(): string {
  const base = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'sandbox-agents', 'bridge');
}

function usage(message?: string): never {
  if (message) process.stderr.write(`bridge: ${message}\n`);
  process.stderr.write(
    'usage: bridge.js serve [--port N] [--state-dir DIR] [--runtime docker|host] [--docker-host URL] [--image IMAGE]\n' +
      '                       [--base-image IMAGE] [--build-network MODE] [--master-key-file FILE] [--allow-origin ORIGIN]... [--idle-timeout-minutes N] [--verbose] [--extra-ca-file FILE]\n',
  );
  process.exit(2);
}

export function parseServeArgs(argv: string[]): ServeOptions {
  const o: ServeOptions = { port: 0, stateDir: defaultStateDir(), runtime: 'docker', allowOrigins: [], idleTimeoutMinutes: 24 * 60, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) usage(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--port': {
        const p = Number(value());
        if (!Number.isInteger(p) || p < 0 || p > 65535) usage('--port must be 0..65535');
        o.port = p;
        break;
      }
      case '--state-dir':
        o.stateDir = resolve(value());
        break;
      case '--runtime': {
        const r = value();
        if (r !== 'docker' && r !== 'host') usage('--runtime must be docker or host');
        o.runtime = r;
        break;
      }
      case '--docker-host':
        o.dockerHost = value();
        break;
      case '--image':
        o.image = value();
        break;
      case '--base-image':
        o.baseImage = value();
        break;
      case '--build-network':
        o.buildNetwork = value();
        break;
      case '--master-key-file':
        o.masterKeyFile = resolve(value());
        break;
      case '--allow-origin':
        o.allowOrigins.push(value());
        break;
      case '--idle-timeout-minutes': {
        const n = Number(value());
        if (!Number.isFinite(n) || n < 0) usage('--idle-timeout-minutes must be ≥ 0 (0: never)');
        o.idleTimeoutMinutes = n;
        break;
      }
      case '--verbose':
        o.verbose = true;
        break;
      case '--extra-ca-file':
        (o.extraCaFiles ??= []).push(resolve(value()));
        break;
      default:
        usage(`unknown argument ${a}`);
    }
  }
  return o;
}

/** Env, else the given file, else a 256-bit key created once in the state dir (mode 0600). */
function masterKey(o: ServeOptions): string {
  const fromEnv = process.env.SANDBOX_AGENTS_MASTER_KEY?.trim();
  if (fromEnv) return fromEnv;
  const file = o.masterKeyFile ?? join(o.stateDir, 'master-key');
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim();
    if (key.length < 16) throw new Error(`the master key in ${file} is shorter than 16 characters`);
    return key;
  }
  if (o.masterKeyFile) throw new Error(`--master-key-file ${file} does not exist`);
  const key = `sa-${randomBytes(32).toString('base64url')}`;
  writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}

/** One bridge per state dir: a lock file holding the owner's pid, created atomically (written
 *  under a private name, then hard-linked into place); a stale one is moved aside before retrying. */
function takeLock(dir: string): () => void {
  const path = join(dir, 'bridge.lock');
  const mine = join(dir, `bridge.lock.${process.pid}`);
  writeFileSync(mine, String(process.pid), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(mine, path);
        return () => rmSync(path, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let pid = 0;
      try {
        pid = Number(readFileSync(path, 'utf8').trim());
      } catch {
        continue; // removed meanwhile: try again
      }
      if (pid && pid !== process.pid && alive(pid)) throw new Error(`another bridge (pid ${pid}) is serving ${dir}`);
      // Stale: move it aside (atomic, so two starters cannot both take it over), then retry.
      try {
        renameSync(path, join(dir, `bridge.lock.stale.${process.pid}`));
        rmSync(join(dir, `bridge.lock.stale.${process.pid}`), { force: true });
      } catch {
        /* another starter moved it first */
      }
    }
    throw new Error(`could not lock ${dir}`);
  } finally {
    rmSync(mine, { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The harness image builder for the Docker runtime (images from harness-containers/, next to dist/). */
function imageSource(o: ServeOptions, log: BridgeLog): (docker: Docker) => ImageSource {
  return (docker) => {
    const builder = new ImageBuilder({ docker, baseImage: o.baseImage, networkMode: o.buildNetwork });
    return {
      ensure: (harness, opts) =>
        builder.ensure(harness, {
          signal: opts.signal,
          onProgress: (p) => {
            log.debug(`build ${p.image}: ${p.line}`);
            opts.onProgress?.({ step: p.step, line: p.line });
          },
        }),
      log: (harness) => builder.log(harness) || undefined,
    };
  };
}

export async function serve(o: ServeOptions): Promise<{ url: string; close(): Promise<void> }> {
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  chmodSync(o.stateDir, 0o700);
  const release = takeLock(o.stateDir);
  let key: string;
  try {
    key = masterKey(o);
  } catch (err) {
    release();
    throw err;
  }
  const providers = new Providers();
  // The agents' secret values too, once the API (which holds them) exists.
  let agentSecrets: () => string[] = () => [];
  const log: BridgeLog = createLog({ file: join(o.stateDir, 'bridge.log'), verbose: o.verbose, secrets: () => [key, ...providers.secrets(), ...agentSecrets()] });
  // Our sandbox programs (init, the claude-agent-sdk server) sit next to the bundle, in dist/sandbox.
  const bundleDir = dirname(process.argv[1] ?? __filename);
  const store = StateStore.load(o.stateDir, () => randomUUID(), log);
  // The per-install CA for intercepting TLS toward hosts a secret is bound to; without it, plain tunnels.
  const ca = await CertificateAuthority.loadOrCreate(o.stateDir).catch((err: Error) => {
    log.warn(`no CA for the egress proxy (secrets bound to HTTPS hosts will not be swapped): ${err.message}`);
    return undefined;
  });
  const extraCa = (o.extraCaFiles ?? []).map((f) => readFileSync(f, 'utf8'));
  // Filled once the API exists: the agents' secret values live in its memory.
  let secretValues: ((agentId: string) => Record<string, string> | undefined) | undefined;
  const runtime: Runtime =
    o.runtime === 'docker'
      ? new DockerRuntime({ dockerHost: o.dockerHost, image: o.image, images: imageSource(o, log) }, log)
      : new HostRuntime({ stateDir: o.stateDir, bridgeScript: process.argv[1] }, log);
  const idleTimeoutMs = o.idleTimeoutMinutes * 60_000;
  const sessions = new SessionService(store, runtime, log, {
    shellCommand: o.runtime === 'docker' ? ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi'] : [process.env.SHELL || '/bin/bash', '-l'],
    idleTimeoutMs,
    scrollback: 10_000,
    // Host shells go through init too (stubs, CA and proxy env); only an explicit Docker shell image
    // (which may lack node) runs its shell directly.
    directShell: o.runtime === 'docker' && o.image !== undefined,
    stateDir: o.stateDir,
    programsDir: join(bundleDir, 'sandbox'),
    // The host runtime finds CLIs the extension carries (e.g. Claude Code in a development checkout).
    binDirs: [join(bundleDir, '..', 'node_modules', '.bin')],
    providers,
    secretValues: (agentId) => secretValues?.(agentId),
    ca,
    extraCa,
  });
  try {
    await runtime.preflight();
  } catch (err) {
    // Still serve: the API answers and sessions fail with this reason, so the user sees why.
    log.warn((err as Error).message);
  }
  await sessions.adoptAll();
  sessions.startReaper();
  const status = async (): Promise<BridgeStatus> => {
    const problem = await runtime.preflight().then(
      () => undefined,
      (err: Error) => err.message,
    );
    return {
      runtime: runtime.kind,
      sandboxed: runtime.sandboxed,
      available: !problem,
      problem,
      docker_host: o.runtime === 'docker' ? (o.dockerHost ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock') : undefined,
      version: BRIDGE_VERSION,
      pid: process.pid,
    };
  };
  const api = new Api(store, sessions, { idleTimeoutMs: idleTimeoutMs || 365 * 86_400_000, models: () => [], status, providers, log });
  secretValues = (agentId) => api.secretValues(agentId);
  agentSecrets = () => api.allSecretValues();
  // API harnesses: the harness session (and the initial prompt) once the sandbox is ready.
  sessions.onReady = (s) => void api.harness.sessionReady(s.id);
  const server = new BridgeServer(api, sessions, { masterKey: key, allowedOrigins: o.allowOrigins }, log);
  const url = await server.listen(o.port);
  // `settings`: what this bridge was started with, so a window wanting other settings restarts it.
  const settings = { docker_host: o.dockerHost ?? null, image: o.image ?? null, base_image: o.baseImage ?? null };
  writeFileSync(join(o.stateDir, 'bridge.json'), JSON.stringify({ url, pid: process.pid, runtime: o.runtime, settings, started_at: new Date().toISOString() }), { mode: 0o600 });
  log.info(`listening on ${url} (runtime ${o.runtime}, state ${o.stateDir})`);
  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        log.info('shutting down: sandboxes keep running');
        sessions.shutdown();
        await server.close();
        store.flushNow();
        rmSync(join(o.stateDir, 'bridge.json'), { force: true });
        release();
      })()),
  };
}

async function main(argv: string[]): Promise<void> {
  // Whoever started us may be gone (a closed VS Code window): a dead stdout/stderr must not kill us.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  // A bug in one request must not take every session's terminal down with it.
  process.on('unhandledRejection', (err) => process.stderr.write(`bridge: unhandled rejection: ${err instanceof Error ? err.stack : String(err)}\n`));
  process.on('uncaughtException', (err) => process.stderr.write(`bridge: uncaught exception: ${err.stack ?? err.message}\n`));
  const [command, ...rest] = argv;
  if (command === 'hold') return runHolder(rest);
  if (command !== 'serve') usage(command ? `unknown command ${command}` : undefined);
  const o = parseServeArgs(rest);
  let bridge: Awaited<ReturnType<typeof serve>>;
  try {
    bridge = await serve(o);
  } catch (err) {
    process.stderr.write(`bridge: ${(err as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: bridge.url, pid: process.pid })}\n`);
  const stop = () => void bridge.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main(process.argv.slice(2));
