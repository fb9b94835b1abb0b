/**
 * Session lifecycle on the local runtime: `creating` (phases) → `ready` → `dead` (stopped, exited,
 * gone), or `failed`. Owns each session's sandbox process and terminal hub; re-adopts sandboxes
 * after a bridge restart; reaps sessions idle past the timeout.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
export { LOCAL_HARNESSES } from '../protocol/harnesses';
import type { PhaseReport } from '../protocol/sandbox';
import type { BridgeLog } from './log';
import { DEFAULT_RESOURCES, withTimeout, type Runtime, type SandboxProcess, type SandboxSpec } from './runtimes/runtime';
import type { CertificateAuthority } from './ca';
import { checkIngressSocket, layout, makeSecretStubs, makeStubs, prepareSandbox, providerStubs, secretStubs, workspaceMode } from './sandboxSetup';
import { Providers, SandboxNet, type BlockedInterception } from './sandboxNet';
import type { StateStore, StoredAgent, StoredSession } from './stateStore';
import { TerminalHub } from './terminal';

const INITIAL_COLS = 100;
const INITIAL_ROWS = 30;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
  }
}

export interface SessionServiceOptions {
  /** Program for `shell` sessions. */
  shellCommand: string[];
  idleTimeoutMs: number;
  scrollback: number;
  /** `shell` runs its program directly, without init (host runtime; Docker with an explicit shell image). */
  directShell: boolean;
  /** Per-session folders live in `<stateDir>/sessions/<id>`. */
  stateDir: string;
  /** Host folder of the sandbox programs (dist/sandbox: init.js, claude-agent-sdk-server.js). */
  programsDir: string;
  /** Host runtime: folders searched for the harness CLIs first. */
  binDirs: string[];
  /** The real model keys (memory only). */
  providers: Providers;
  /** The agent's secret env var values (memory only; the API holds them). */
  secretValues?(agentId: string): Record<string, string> | undefined;
  /** The bridge's CA (intercepts TLS toward hosts a secret is bound to; its certificate goes to sandboxes). */
  ca?: CertificateAuthority;
  /** PEM certificates the egress proxy trusts for upstreams besides Node's roots (tests). */
  extraCa?: string[];
  /** How long a sandbox may take from start to its harness being ready. */
  readyTimeoutMs?: number;
}

const READY_TIMEOUT_MS = 10 * 60_000;
const ADOPT_RETRY_MS = 5000;

/** A bring-up given up: stopped or restarted meanwhile. */
class Superseded extends Error {}

export class SessionService {
  private readonly procs = new Map<string, SandboxProcess>();
  private readonly hubs = new Map<string, TerminalHub>();
  private readonly seen = new Map<string, number>();
  /** Bumped by every start, restart and stop: a bring-up that finds it changed gives up its sandbox. */
  private readonly generation = new Map<string, number>();
  /** Sessions run through init: their egress servers, and the bring-ups waiting for init's `ready`. */
  private readonly nets = new Map<string, SandboxNet>();
  private readonly waiting = new Map<string, { resolve(): void; reject(err: Error): void }>();
  private readonly aborts = new Map<string, AbortController>();
  private reaper: NodeJS.Timeout | undefined;
  private adoptRetry: NodeJS.Timeout | undefined;
  /** Called once an API harness session is ready (its initial prompt goes out then). */
  onReady: ((session: StoredSession, agent: StoredAgent) => void) | undefined;

  constructor(
    private readonly store: StateStore,
    private readonly runtime: Runtime,
    private readonly log: BridgeLog,
    private readonly opts: SessionServiceOptions,
  ) {}

  get bridgeId(): string {
    return this.store.data.bridge_id;
  }

  find(id: string): StoredSession | undefined {
    return this.store.data.sessions.find((s) => s.id === id);
  }

  get(id: string): StoredSession {
    const s = this.find(id);
    if (!s) throw new HttpError(404, { error: `session ${id} not found` });
    return s;
  }

  list(agentId: string | undefined, limit: number): StoredSession[] {
    return this.store.data.sessions
      .filter((s) => !agentId || s.agent_id === agentId)
      .sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id))
      .slice(0, limit);
  }

  hub(id: string): TerminalHub | undefined {
    return this.hubs.get(id);
  }

  create(agent: StoredAgent, title: string | undefined): StoredSession {
    const now = new Date().toISOString();
    const session: StoredSession = {
      id: randomUUID(),
      agent_id: agent.id,
      title: title ?? null,
      status: 'creating',
      phase: 'creating_sandbox',
      phase_detail: `starting a ${this.runtime.kind === 'docker' ? 'container' : 'host process'} for ${agent.harness_id}`,
      failure_reason: null,
      tty_token: randomBytes(24).toString('base64url'),
      runtime: this.runtime.kind,
      sandbox_ref: null,
      cols: INITIAL_COLS,
      rows: INITIAL_ROWS,
      created_at: now,
      last_seen_at: now,
      ended_at: null,
    };
    this.store.data.sessions.push(session);
    this.store.changed();
    void this.bringUp(session, agent);
    return session;
  }

  private async bringUp(session: StoredSession, agent: StoredAgent): Promise<void> {
    const gen = (this.generation.get(session.id) ?? 0) + 1;
    this.generation.set(session.id, gen);
    const current = () => this.generation.get(session.id) === gen && session.status === 'creating';
    const abort = new AbortController();
    this.aborts.set(session.id, abort);
    let proc: SandboxProcess | undefined;
    try {
      const res = agent.resources ?? {};
      const base: SandboxSpec = {
        sessionId: session.id,
        agentId: agent.id,
        bridgeId: this.bridgeId,
        harness: agent.harness_id,
        command: this.opts.shellCommand,
        env: { TERM: 'xterm-256color', COLORTERM: 'truecolor', LANG: 'C.UTF-8', SANDBOX_AGENTS_SESSION: session.id },
        workspacePath: agent.workspace_path ?? undefined,
        cols: session.cols,
        rows: session.rows,
        resources: {
          memoryMb: res.memory_mb ?? DEFAULT_RESOURCES.memoryMb,
          cpus: res.cpus ?? DEFAULT_RESOURCES.cpus,
          pids: res.pids ?? DEFAULT_RESOURCES.pids,
        },
      };
      // A direct shell cannot prepare a worktree or a clone: those always go through init.
      const viaInit = !(agent.harness_id === 'shell' && this.opts.directShell && ['mount', 'none'].includes(workspaceMode(agent)));
      let spec = base;
      if (viaInit) {
        if (this.runtime.prepareImage) {
          const harness = agent.harness_id;
          this.phase(session, 'creating_sandbox', `preparing the ${harness} image`);
          spec = {
            ...spec,
            image: await this.runtime.prepareImage(harness, {
              signal: abort.signal,
              onProgress: (line) => {
                if (!current()) return;
                // Many lines a second: the state file follows lazily.
                session.phase_detail = `building the ${harness} image: ${line.length > 160 ? `${line.slice(0, 159)}…` : line}`;
                this.store.changedSoon();
              },
            }),
          };
          if (!current()) throw new Superseded();
        }
        this.phase(session, 'injecting_files', 'preparing the work tree and the sandbox sockets');
        // Stubs only: the providers' keys and the agent's secrets (`env:NAME`); never values.
        const stubs = { ...(session.stubs ?? makeStubs()), ...makeSecretStubs(agent.env_var_names, session.stubs) };
        session.stubs = stubs;
        const sessionDir = join(this.opts.stateDir, 'sessions', session.id);
        const prepared = await prepareSandbox(
          {
            runtime: this.runtime.kind,
            session,
            agent,
            stubs,
            programsDir: this.opts.programsDir,
            binDirs: this.opts.binDirs,
            shellCommand: this.opts.shellCommand,
            sandboxUid: this.runtime.sandboxUid?.(),
            caCertPem: this.opts.ca?.certPem,
          },
          sessionDir,
        );
        session.sandbox_dir = sessionDir;
        this.store.changed();
        if (!current()) throw new Superseded();
        await this.serveNet(session, agent);
        spec = { ...spec, ...prepared.spec, env: { ...spec.env, ...prepared.spec.env } };
      }
      const ready = viaInit ? this.waitForInit(session.id) : undefined;
      proc = await this.runtime.start(spec);
      if (!current()) throw new Superseded();
      session.sandbox_ref = proc.ref;
      if (!viaInit) this.phase(session, 'waiting_harness', 'the program is starting');
      else this.store.changed();
      // Output from before the handle existed (a host holder's first bytes) opens the mirror.
      const history = await proc.history().catch(() => Buffer.alloc(0));
      if (!current()) throw new Superseded();
      this.own(session, proc, history);
      if (ready) {
        const exited = new Promise<never>((_, reject) =>
          this.hubs.get(session.id)?.onExit((info) => reject(new Error(info.reason ?? `the sandbox exited (code ${info.code ?? '?'}) before its harness was ready`))),
        );
        await withTimeout(Promise.race([ready, exited]), this.opts.readyTimeoutMs ?? READY_TIMEOUT_MS, `the harness was not ready within ${Math.round((this.opts.readyTimeoutMs ?? READY_TIMEOUT_MS) / 1000)} s`);
        if (!current()) throw new Superseded();
      }
      session.status = 'ready';
      this.phase(session, 'ready', null);
      this.log.info(`session ${session.id} ready (${this.runtime.kind}, ${agent.harness_id})`);
      this.onReady?.(session, agent);
    } catch (err) {
      this.waiting.delete(session.id);
      if (!current() || err instanceof Superseded) {
        // Stopped or restarted while it was coming up.
        if (proc && this.procs.get(session.id) !== proc) await proc.destroy().catch(() => undefined);
        return;
      }
      session.status = 'failed';
      session.failure_reason = `${session.phase}: ${(err as Error).message}`;
      session.ended_at = new Date().toISOString();
      this.store.changed();
      this.log.warn(`session ${session.id} failed: ${session.failure_reason}`);
      await this.destroySandbox(session);
    } finally {
      if (this.aborts.get(session.id) === abort) this.aborts.delete(session.id);
    }
  }

  private waitForInit(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  /** The session's egress server (gateway, proxy, phase reports), on its socket. */
  private async serveNet(session: StoredSession, agent: StoredAgent): Promise<void> {
    this.nets.get(session.id)?.close();
    const dir = session.sandbox_dir;
    if (!dir) return;
    const net = new SandboxNet({
      socketPath: layout(dir).egressSocket,
      label: `session ${session.id.slice(0, 8)}`,
      stubs: providerStubs(session.stubs),
      providers: this.opts.providers,
      allowOut: agent.allow_out,
      denyOut: agent.deny_out,
      onPhase: (r) => this.initPhase(session, r),
      log: this.log,
      secrets: Object.entries(secretStubs(session.stubs)).map(([name, stub]) => ({ name, stub, hosts: agent.env_var_hosts[name] ?? [] })),
      secretValue: (name) => this.opts.secretValues?.(agent.id)?.[name],
      ca: this.opts.ca,
      extraCa: this.opts.extraCa,
      // Beside the egress folder, not in it: the sandbox never sees it.
      blockedFile: join(dir, 'blocked.jsonl'),
    });
    await net.listen();
    this.nets.set(session.id, net);
  }

  /** Stubs this session sent toward hosts their secrets are not bound to (since its egress server started). */
  blocked(id: string): BlockedInterception[] | undefined {
    return this.nets.get(id)?.blocked();
  }

  private initPhase(session: StoredSession, r: PhaseReport): void {
    const waiter = this.waiting.get(session.id);
    if (r.phase === 'failed') {
      this.waiting.delete(session.id);
      waiter?.reject(new Error(r.detail ?? 'init failed'));
      return;
    }
    if (r.phase === 'ready') {
      this.waiting.delete(session.id);
      waiter?.resolve();
      return;
    }
    if (session.status === 'creating') this.phase(session, r.phase, r.detail ?? null);
  }

  /** Where the bridge reaches an API harness's server: the sandbox's ingress socket. */
  harnessEndpoint(id: string): { socketPath: string } | undefined {
    const s = this.find(id);
    if (!s?.sandbox_dir || s.status !== 'ready') return undefined;
    const path = layout(s.sandbox_dir).ingressSocket;
    const problem = checkIngressSocket(path, this.runtime.kind === 'docker' ? this.runtime.sandboxUid?.() : process.getuid?.());
    if (problem) {
      this.log.warn(`session ${id}: ${problem}`);
      return undefined;
    }
    return { socketPath: path };
  }

  /** The last image build's log for a harness (Docker). */
  buildLog(harness: string): string | undefined {
    return this.runtime.buildLog?.(harness);
  }

  private phase(session: StoredSession, phase: string, detail: string | null): void {
    session.phase = phase;
    session.phase_detail = detail;
    this.store.changed();
  }

  private own(session: StoredSession, proc: SandboxProcess, history?: Buffer): void {
    const hub = new TerminalHub(proc, { cols: session.cols, rows: session.rows, scrollback: this.opts.scrollback }, this.log, `session ${session.id.slice(0, 8)}`);
    if (history) hub.seed(history);
    this.procs.set(session.id, proc);
    this.hubs.set(session.id, hub);
    proc.onData(() => this.touch(session));
    hub.onExit((info) => {
      this.procs.delete(session.id);
      this.hubs.delete(session.id);
      setTimeout(() => hub.dispose(), 100);
      if (session.status === 'ready' || session.status === 'creating') {
        session.status = 'dead';
        session.failure_reason = info.reason ?? `process exited (code ${info.code ?? '?'}${info.signal ? `, signal ${info.signal}` : ''})`;
        session.ended_at = new Date().toISOString();
        this.store.changed();
        this.log.info(`session ${session.id} ended: ${session.failure_reason}`);
      }
      // An ended program leaves an exited container: remove it, as a stopped session's would be.
      if (session.sandbox_ref) void this.runtime.remove(session.sandbox_ref).catch((e: Error) => this.log.warn(`could not remove the sandbox of ${session.id}: ${e.message}`));
    });
  }

  /** Records activity (throttled) for the idle reaper and `last_seen_at`. */
  touch(session: StoredSession): void {
    const now = Date.now();
    if (now - (this.seen.get(session.id) ?? 0) < 5000) return;
    this.seen.set(session.id, now);
    session.last_seen_at = new Date(now).toISOString();
    this.store.changedSoon();
  }

  /** DELETE: the only stop. Answers `deleted`, or the terminal status when already ended. */
  async delete(id: string, reason = 'stopped'): Promise<{ id: string; status: string }> {
    const session = this.get(id);
    if (session.status === 'dead' || session.status === 'failed') {
      const status = session.status;
      if (status === 'failed') {
        session.status = 'dead';
        this.store.changed();
        return { id, status: 'deleted' };
      }
      return { id, status };
    }
    session.status = 'dead';
    session.failure_reason = reason;
    session.ended_at = new Date().toISOString();
    this.generation.set(id, (this.generation.get(id) ?? 0) + 1);
    this.store.changed();
    await this.destroySandbox(session);
    return { id, status: 'deleted' };
  }

  private async destroySandbox(session: StoredSession): Promise<void> {
    this.aborts.get(session.id)?.abort();
    this.nets.get(session.id)?.close();
    this.nets.delete(session.id);
    this.waiting.get(session.id)?.reject(new Superseded());
    this.waiting.delete(session.id);
    const hub = this.hubs.get(session.id);
    const proc = this.procs.get(session.id);
    this.hubs.delete(session.id);
    this.procs.delete(session.id);
    hub?.dispose({ code: 1000, reason: 'session stopped' });
    if (proc) await proc.destroy().catch((e: Error) => this.log.warn(`could not remove the sandbox of ${session.id}: ${e.message}`));
    else if (session.sandbox_ref) {
      const orphan = await this.runtime.adopt(session.sandbox_ref, session.id).catch(() => undefined);
      if (orphan) await orphan.destroy().catch(() => undefined);
      else await this.runtime.remove(session.sandbox_ref).catch(() => undefined);
    }
  }

  async restart(id: string): Promise<StoredSession> {
    const session = this.get(id);
    if (session.status === 'creating') throw new HttpError(409, { error: `session ${id} is creating; wait for it to settle before restarting` });
    const agent = this.store.data.agents.find((a) => a.id === session.agent_id);
    if (!agent) throw new HttpError(404, { error: `agent '${session.agent_id}' not found` });
    // `creating` at once, before any await: a second restart (or a stop) sees it.
    const old = { ...session };
    Object.assign(session, {
      status: 'creating',
      phase: 'creating_sandbox',
      phase_detail: 'restarting',
      failure_reason: null,
      sandbox_ref: null,
      ended_at: null,
      last_seen_at: new Date().toISOString(),
    } satisfies Partial<StoredSession>);
    this.generation.set(id, (this.generation.get(id) ?? 0) + 1);
    this.store.changed();
    await this.destroySandbox(old);
    if ((session.status as string) === 'creating') void this.bringUp(session, agent);
    return session;
  }

  /**
   * After a restart of the bridge: reattach to the sandboxes that still run; the rest are dead.
   * When the runtime cannot be reached (Docker not started yet), nothing is declared dead: the
   * sessions wait, and adoption is tried again every few seconds until it can be done.
   */
  async adoptAll(): Promise<void> {
    const unavailable = await this.runtime.preflight().then(
      () => undefined,
      (err: Error) => err.message,
    );
    if (unavailable) {
      const waiting = this.store.data.sessions.filter((s) => (s.status === 'creating' || s.status === 'ready') && s.runtime === this.runtime.kind && s.sandbox_ref);
      if (waiting.length > 0) {
        this.log.warn(`${waiting.length} session(s) wait for the runtime before they are re-adopted: ${unavailable}`);
        clearTimeout(this.adoptRetry);
        this.adoptRetry = setTimeout(() => void this.adoptAll(), ADOPT_RETRY_MS);
        this.adoptRetry.unref();
        return;
      }
    }
    const live = this.store.data.sessions.filter((s) => (s.status === 'creating' || s.status === 'ready') && !this.procs.has(s.id));
    for (const session of live) {
      const proc = session.sandbox_ref && session.runtime === this.runtime.kind ? await this.runtime.adopt(session.sandbox_ref, session.id).catch(() => undefined) : undefined;
      if (!proc) {
        session.status = 'dead';
        session.failure_reason = session.sandbox_ref ? 'the sandbox stopped while the bridge was not running' : 'the bridge stopped while the session was starting';
        session.ended_at = new Date().toISOString();
        this.store.changed();
        this.log.info(`session ${session.id}: ${session.failure_reason}`);
        continue;
      }
      const history = await proc.history().catch(() => Buffer.alloc(0));
      const agent = this.store.data.agents.find((a) => a.id === session.agent_id);
      if (session.sandbox_dir && agent) await this.serveNet(session, agent).catch((e: Error) => this.log.warn(`session ${session.id}: egress socket: ${e.message}`));
      this.own(session, proc, history);
      session.status = 'ready';
      this.phase(session, 'ready', null);
      // Nudge a repaint so full-screen programs redraw into the rebuilt mirror.
      proc.resize(session.cols, Math.max(1, session.rows - 1));
      setTimeout(() => proc.resize(session.cols, session.rows), 50);
      this.log.info(`session ${session.id} re-adopted (${this.runtime.kind})`);
    }
    const known = new Set(this.store.data.sessions.filter((s) => s.status === 'ready').map((s) => s.sandbox_ref));
    for (const r of await this.runtime.running(this.bridgeId).catch(() => [])) {
      if (r.sessionId && !known.has(r.ref)) this.log.warn(`sandbox ${r.ref.slice(0, 12)} of unknown session ${r.sessionId} left running`);
    }
  }

  /** Resize recorded for reattach and restart; the hub applies it. */
  noteSize(id: string, cols: number, rows: number): void {
    const s = this.find(id);
    if (!s || (s.cols === cols && s.rows === rows)) return;
    s.cols = cols;
    s.rows = rows;
    this.store.changedSoon();
  }

  startReaper(): void {
    if (this.opts.idleTimeoutMs <= 0) return;
    this.reaper = setInterval(() => {
      const now = Date.now();
      for (const s of this.store.data.sessions) {
        if (s.status !== 'ready') continue;
        if ((this.hubs.get(s.id)?.clientCount ?? 0) > 0) continue;
        if (now - Date.parse(s.last_seen_at) > this.opts.idleTimeoutMs) {
          this.log.info(`session ${s.id} idle for ${Math.round(this.opts.idleTimeoutMs / 60000)} min: stopping it`);
          void this.delete(s.id, `idle for ${Math.round(this.opts.idleTimeoutMs / 60000)} min`);
        }
      }
    }, 30_000);
    this.reaper.unref();
  }

  /** Bridge shutdown: let go of every sandbox, leaving it running. */
  shutdown(): void {
    clearInterval(this.reaper);
    clearTimeout(this.adoptRetry);
    for (const [id, hub] of this.hubs) {
      hub.dispose({ code: 1012, reason: 'bridge restarting' });
      this.procs.get(id)?.detach();
    }
    this.hubs.clear();
    this.procs.clear();
    for (const n of this.nets.values()) n.close();
    this.nets.clear();
  }

}
