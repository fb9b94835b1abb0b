/**
 * Finds or starts the local bridge, on first local use. One bridge per user and runtime, shared by
 * every VS Code window: found through `bridge.json` in its state dir and verified with an
 * authenticated request; started detached (it survives window reloads) with the extension host's own
 * runtime (`process.execPath`, ELECTRON_RUN_AS_NODE); restarted when it died. The bridge's own lock
 * file settles races between windows. No `vscode` import: plain Node for tests.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BlockedList, type BridgeStatus } from '../protocol/harnesses';
import { sleep } from './async';
import type { Logger } from './logger';
import { PlatformClient } from './platformClient';

export interface BridgeSettings {
  runtime: 'docker' | 'host';
  /** Base of the state dirs; each runtime has its own (`<base>/<runtime>`). */
  stateBase: string;
  dockerHost?: string;
  image?: string;
  /** Build arg BASE of the harness images. */
  baseImage?: string;
}

export interface BridgeConnection {
  url: string;
  masterKey: string;
  pid: number;
  client: PlatformClient;
}

export class BridgeUnavailableError extends Error {
  override readonly name = 'BridgeUnavailableError';
}

/** The runtime cannot run sessions (Docker down, …): the bridge runs, but says why. */
export class RuntimeProblemError extends Error {
  override readonly name = 'RuntimeProblemError';
  constructor(
    readonly status: BridgeStatus,
  ) {
    super(status.problem ?? 'the local runtime is not available');
  }
}

export function defaultStateBase(): string {
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'sandbox-agents');
}

export class BridgeSupervisor {
  private current: BridgeConnection | undefined;
  private starting: Promise<BridgeConnection> | undefined;

  constructor(
    private readonly bridgeScript: string,
    private settings: BridgeSettings,
    private readonly log: Logger,
  ) {}

  get stateDir(): string {
    return join(this.settings.stateBase, this.settings.runtime);
  }

  get connection(): BridgeConnection | undefined {
    return this.current;
  }

  /** New settings take effect on the next `ensure` (a different runtime is a different bridge). */
  configure(settings: BridgeSettings): void {
    const changed = JSON.stringify(settings) !== JSON.stringify(this.settings);
    this.settings = settings;
    if (changed) this.current = undefined;
  }

  /** The running bridge, verified; started when there is none. */
  async ensure(signal?: AbortSignal): Promise<BridgeConnection> {
    if (this.current && (await this.verify(this.current))) return this.current;
    this.current = undefined;
    this.starting ??= this.findOrStart(signal).finally(() => (this.starting = undefined));
    this.current = await this.starting;
    return this.current;
  }

  async status(): Promise<BridgeStatus> {
    const c = await this.ensure();
    return getJson<BridgeStatus>(c, '/bridge/v1/status');
  }

  /** Gives the bridge a model provider's URL and key (memory only), or removes it. */
  async setProvider(provider: string, key: { base_url: string; api_key: string } | undefined): Promise<void> {
    const c = await this.ensure();
    const res = await fetch(`${c.url}/bridge/v1/providers/${encodeURIComponent(provider)}`, {
      method: key ? 'PUT' : 'DELETE',
      headers: { authorization: `Bearer ${c.masterKey}`, 'content-type': 'application/json' },
      body: key ? JSON.stringify(key) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    await res.text();
    if (!res.ok) throw new BridgeUnavailableError(`the bridge answered ${res.status} when given the ${provider} key`);
  }

  /** The full log of the bridge's last image build for a harness, if it made one. */
  async buildLog(harness: string): Promise<string | undefined> {
    const c = await this.ensure();
    const res = await fetch(`${c.url}/bridge/v1/builds/${encodeURIComponent(harness)}/log`, { headers: { authorization: `Bearer ${c.masterKey}` }, signal: AbortSignal.timeout(10_000) });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new BridgeUnavailableError(`the bridge answered ${res.status} to the build log request`);
    return ((await res.json()) as { log: string }).log;
  }

  /** Requests in which a session's sandbox sent a secret's stub toward a host it is not bound to. */
  async blocked(sessionId: string): Promise<BlockedList> {
    const c = await this.ensure();
    const res = await fetch(`${c.url}/bridge/v1/sessions/${encodeURIComponent(sessionId)}/blocked`, { headers: { authorization: `Bearer ${c.masterKey}` }, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new BridgeUnavailableError(`the bridge answered ${res.status} to the blocked-requests query`);
    return BlockedList.parse(await res.json());
  }

  private async findOrStart(signal?: AbortSignal): Promise<BridgeConnection> {
    const found = await this.find();
    if (found) return found;
    return this.start(signal);
  }

  /** A bridge already serving this state dir (another window's, or from before a reload). */
  private async find(): Promise<BridgeConnection | undefined> {
    const infoFile = join(this.stateDir, 'bridge.json');
    const keyFile = join(this.stateDir, 'master-key');
    if (!existsSync(infoFile) || !existsSync(keyFile)) return undefined;
    try {
      const info = JSON.parse(readFileSync(infoFile, 'utf8')) as { url: string; pid: number; settings?: Record<string, string | null> };
      const masterKey = readFileSync(keyFile, 'utf8').trim();
      const conn = this.connect(info.url, masterKey, info.pid);
      if (await this.verify(conn)) {
        const wanted = { docker_host: this.settings.dockerHost ?? null, image: this.settings.image ?? null, base_image: this.settings.baseImage ?? null };
        if (info.settings && JSON.stringify(info.settings) !== JSON.stringify(wanted)) {
          // Started with other settings (Docker host, images): restart it. Sessions keep running and
          // the new bridge re-adopts them.
          this.log.info(`the bridge (pid ${info.pid}) runs with other settings: restarting it`);
          await stopProcess(info.pid);
          return undefined;
        }
        this.log.info(`using the bridge at ${info.url} (pid ${info.pid})`);
        return conn;
      }
    } catch (err) {
      this.log.debug(`no usable bridge in ${this.stateDir}: ${(err as Error).message}`);
    }
    return undefined;
  }

  private async start(signal?: AbortSignal): Promise<BridgeConnection> {
    const args = [this.bridgeScript, 'serve', '--port', '0', '--state-dir', this.stateDir, '--runtime', this.settings.runtime];
    if (this.settings.dockerHost) args.push('--docker-host', this.settings.dockerHost);
    if (this.settings.image) args.push('--image', this.settings.image);
    if (this.settings.baseImage) args.push('--base-image', this.settings.baseImage);
    this.log.info(`starting the bridge: ${this.settings.runtime} runtime, state ${this.stateDir}`);
    const env: NodeJS.ProcessEnv = { ...process.env, ELECTRON_RUN_AS_NODE: '1' };
    delete env.SANDBOX_AGENTS_MASTER_KEY;
    // stderr goes to a file, not a pipe: the bridge outlives this window and must not write into a
    // closed pipe. Its tail explains a failed start.
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    const errFile = join(this.stateDir, 'bridge.stderr');
    const errFd = openSync(errFile, 'w', 0o600);
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', errFd], env });
    closeSync(errFd);
    const tail = () => {
      try {
        return readFileSync(errFile, 'utf8').trim().split('\n').slice(-3).join(' ');
      } catch {
        return '';
      }
    };
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new BridgeUnavailableError(`the bridge did not start within 20 s: ${tail()}`)), 20_000);
        const onAbort = () => reject(new BridgeUnavailableError('cancelled'));
        signal?.addEventListener('abort', onAbort, { once: true });
        createInterface({ input: child.stdout! }).once('line', (l) => {
          clearTimeout(timer);
          resolve(l);
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new BridgeUnavailableError(`the bridge exited (code ${code}): ${tail() || 'no output'}`));
        });
        child.once('error', (err) => reject(new BridgeUnavailableError(`the bridge could not be started: ${err.message}`)));
      });
      const { url, pid } = JSON.parse(line) as { url: string; pid: number };
      const masterKey = readFileSync(join(this.stateDir, 'master-key'), 'utf8').trim();
      this.log.info(`bridge started at ${url} (pid ${pid})`);
      return this.connect(url, masterKey, pid);
    } catch (err) {
      // Another window may have won the race for this state dir: use its bridge.
      if (/another bridge/.test(tail())) {
        for (let i = 0; i < 20; i++) {
          const found = await this.find();
          if (found) return found;
          await sleep(100, signal);
        }
      }
      child.kill();
      throw err;
    } finally {
      // Let the bridge outlive this window: drop our end of its stdout.
      child.stdout?.destroy();
      child.unref();
    }
  }

  private connect(url: string, masterKey: string, pid: number): BridgeConnection {
    return { url, masterKey, pid, client: new PlatformClient({ baseUrl: url, apiKey: masterKey, connectTimeoutMs: 3000, retries: 1 }) };
  }

  private async verify(c: BridgeConnection): Promise<boolean> {
    try {
      await c.client.listAgents({ limit: 1 });
      return true;
    } catch {
      return false;
    }
  }

  /** Stops the bridge this window uses (sessions keep running; a later use starts it again). */
  stop(): void {
    const c = this.current;
    this.current = undefined;
    if (c) {
      try {
        process.kill(c.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  }
}

async function getJson<T>(c: BridgeConnection, path: string): Promise<T> {
  const res = await fetch(`${c.url}${path}`, { headers: { authorization: `Bearer ${c.masterKey}` }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new BridgeUnavailableError(`the bridge answered ${res.status} to ${path}`);
  return (await res.json()) as T;
}

/** SIGTERM, then wait (up to 5 s) for the process to be gone. */
async function stopProcess(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
