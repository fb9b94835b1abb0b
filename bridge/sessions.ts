/**
 * Session lifecycle on the local runtime: `creating` (phases) → `ready` → `dead` (stopped, exited,
 * gone), or `failed`. Owns each session's sandbox process and terminal hub; re-adopts sandboxes
 * after a bridge restart; reaps sessions idle past the timeout.
 */
import { randomBytes, randomUUID } from 'node:crypto';
export { LOCAL_HARNESSES } from '../protocol/harnesses';
import type { BridgeLog } from './log';
import { DEFAULT_RESOURCES, type Runtime, type SandboxProcess } from './runtimes/runtime';
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
}

export class SessionService {
  private readonly procs = new Map<string, SandboxProcess>();
  private readonly hubs = new Map<string, TerminalHub>();
  private readonly seen = new Map<string, number>();
  /** Bumped by every start, restart and stop: a bring-up that finds it changed gives up its sandbox. */
  private readonly generation = new Map<string, number>();
  private reaper: NodeJS.Timeout | undefined;

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
    try {
      const res = agent.resources ?? {};
      const proc = await this.runtime.start({
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
      });
      if (!current()) {
        // Stopped or restarted while it was coming up.
        await proc.destroy().catch(() => undefined);
        return;
      }
      session.sandbox_ref = proc.ref;
      this.phase(session, 'waiting_harness', 'the program is starting');
      // Output from before the handle existed (a host holder's first bytes) opens the mirror.
      const history = await proc.history().catch(() => Buffer.alloc(0));
      if (!current()) {
        await proc.destroy().catch(() => undefined);
        return;
      }
      this.own(session, proc, history);
      session.status = 'ready';
      this.phase(session, 'ready', null);
      this.log.info(`session ${session.id} ready (${this.runtime.kind})`);
    } catch (err) {
      if (!current()) return;
      session.status = 'failed';
      session.failure_reason = `${session.phase}: ${(err as Error).message}`;
      session.ended_at = new Date().toISOString();
      this.store.changed();
      this.log.warn(`session ${session.id} failed: ${session.failure_reason}`);
    }
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

  /** After a restart of the bridge: reattach to the sandboxes that still run; the rest are dead. */
  async adoptAll(): Promise<void> {
    const live = this.store.data.sessions.filter((s) => s.status === 'creating' || s.status === 'ready');
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
    for (const [id, hub] of this.hubs) {
      hub.dispose({ code: 1012, reason: 'bridge restarting' });
      this.procs.get(id)?.detach();
    }
    this.hubs.clear();
    this.procs.clear();
  }

}
