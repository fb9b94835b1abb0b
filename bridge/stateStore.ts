/**
 * Agents and sessions survive bridge restarts in one versioned JSON file, written atomically
 * (write to a temp file, fsync, rename) and debounced so bursts of changes cost one write.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { BridgeLog } from './log';

export const STATE_VERSION = 1;

export interface StoredAgent {
  id: string;
  name: string;
  model: string;
  prompt: string | null;
  harness_id: string;
  repo_url: string | null;
  branch: string | null;
  tools: unknown[];
  mcp_servers: string[];
  env_var_hosts: Record<string, string[]>;
  allow_out: string[];
  deny_out: string[];
  /** Names only: values are credentials and never touch disk. */
  env_var_names: string[];
  /** Bridge extension: a host folder mounted at /work/repo. */
  workspace_path: string | null;
  /** Bridge extension: mount | worktree | clone | none (absent: mount with a path, clone with a repo). */
  workspace_mode?: 'mount' | 'worktree' | 'clone' | 'none' | null;
  resources: { memory_mb?: number; cpus?: number; pids?: number } | null;
  created_at: string;
  updated_at: string;
}

export interface StoredSession {
  id: string;
  agent_id: string;
  title: string | null;
  status: 'creating' | 'ready' | 'failed' | 'dead';
  phase: string | null;
  phase_detail: string | null;
  failure_reason: string | null;
  tty_token: string;
  runtime: 'docker' | 'host';
  /** Container id (docker) or holder socket path (host), once created. */
  sandbox_ref: string | null;
  cols: number;
  rows: number;
  created_at: string;
  last_seen_at: string;
  ended_at: string | null;
  /** Sessions run through the in-sandbox init: the per-session folder (egress/ingress sockets, init
   *  config, clone or worktree) and the stub keys its sandbox holds (stubs are not secrets). */
  sandbox_dir?: string | null;
  stubs?: Record<string, string>;
  /** The harness server's session (API harnesses) and the last reply. */
  harness_session_id?: string | null;
  response?: unknown;
}

export interface StateFile {
  version: number;
  bridge_id: string;
  agents: StoredAgent[];
  sessions: StoredSession[];
}

export class StateStore {
  private readonly path: string;
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;

  constructor(
    dir: string,
    private readonly state: StateFile,
    private readonly log: BridgeLog,
  ) {
    this.path = join(dir, 'state.json');
  }

  static load(dir: string, newBridgeId: () => string, log: BridgeLog): StateStore {
    const path = join(dir, 'state.json');
    let state: StateFile = { version: STATE_VERSION, bridge_id: newBridgeId(), agents: [], sessions: [] };
    if (existsSync(path)) {
      try {
        const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<StateFile>;
        if (parsed.version !== STATE_VERSION) throw new Error(`unsupported state version ${parsed.version}`);
        if (!Array.isArray(parsed.agents ?? []) || !Array.isArray(parsed.sessions ?? [])) throw new Error('agents and sessions must be arrays');
        for (const s of parsed.sessions ?? []) if (typeof s?.id !== 'string' || typeof s?.created_at !== 'string' || typeof s?.tty_token !== 'string') throw new Error('a session lacks its id, created_at or tty_token');
        for (const a of parsed.agents ?? []) if (typeof a?.id !== 'string' || typeof a?.name !== 'string') throw new Error('an agent lacks its id or name');
        state = { version: STATE_VERSION, bridge_id: parsed.bridge_id || state.bridge_id, agents: parsed.agents ?? [], sessions: parsed.sessions ?? [] };
      } catch (err) {
        const aside = `${path}.broken-${Date.now()}`;
        renameSync(path, aside);
        log.error(`state file unreadable (${(err as Error).message}); moved aside to ${aside}, starting empty`);
      }
    }
    const store = new StateStore(dir, state, log);
    store.flushNow();
    return store;
  }

  get data(): StateFile {
    return this.state;
  }

  /** Marks the state changed; it is written within 50 ms (for frequent, unimportant changes). */
  changedSoon(): void {
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      try {
        this.flushNow();
      } catch (err) {
        this.log.error(`could not write the state file: ${(err as Error).message}`);
      }
    }, 50);
  }

  /** Writes the change now: lifecycle changes must survive a crash right after them. */
  changed(): void {
    this.flushNow();
  }

  flushNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const tmp = `${this.path}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(this.state, null, 1));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    this.dirty = false;
  }

  flushIfDirty(): void {
    if (this.dirty || this.timer) this.flushNow();
  }
}
