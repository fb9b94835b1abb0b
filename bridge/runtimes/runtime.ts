/**
 * Where sessions run. A runtime starts a sandboxed program on a PTY and gives back a handle for its
 * bytes; it can find its sandboxes again after the bridge restarts (`adopt`).
 */

export interface Disposable {
  dispose(): void;
}

export interface ExitInfo {
  code: number | null;
  signal?: string | null;
  /** Why, when the program did not simply exit (container removed, holder gone…). */
  reason?: string;
}

export interface SandboxSpec {
  sessionId: string;
  agentId: string;
  bridgeId: string;
  harness: string;
  /** Shell harness: the program to run (a login shell). */
  command: string[];
  env: Record<string, string>;
  /** Host folder mounted at /work/repo, if any (sessions without init). */
  workspacePath?: string;
  /** Docker: the image (default: the runtime's configured shell image). */
  image?: string;
  /** Docker: bind mounts (replace `workspacePath`'s when given). */
  binds?: { source: string; target: string; readOnly?: boolean }[];
  /** Working directory: a container path (docker) or a host path (host). */
  workdir?: string;
  cols: number;
  rows: number;
  resources: Resources;
}

export interface Resources {
  memoryMb: number;
  cpus: number;
  pids: number;
}

/** Documented defaults, overridable per agent (`resources`). */
export const DEFAULT_RESOURCES: Resources = { memoryMb: 4096, cpus: 2, pids: 1024 };

export interface SandboxProcess {
  /** Container id or holder socket path: stored so a restarted bridge can adopt it. */
  readonly ref: string;
  write(data: Buffer | string): void;
  resize(cols: number, rows: number): void;
  onData(listener: (data: Buffer) => void): Disposable;
  onExit(listener: (info: ExitInfo) => void): Disposable;
  /** Stops reading the sandbox's output (it then blocks on its own writes), and starts again:
   *  end-to-end flow control, so a flood cannot outrun the mirror or the clients. */
  pause(): void;
  resume(): void;
  /** Output the sandbox produced before this handle existed (adoption), to rebuild the mirror. */
  history(): Promise<Buffer>;
  /** Ends the sandbox for good (container removed, process killed). */
  destroy(): Promise<void>;
  /** Lets go of the sandbox, leaving it running (bridge shutdown). */
  detach(): void;
}

export interface Runtime {
  readonly kind: 'docker' | 'host';
  /** Host processes are not isolated; the session says so (`unsandboxed`). */
  readonly sandboxed: boolean;
  /** Throws a RuntimeUnavailableError with a precise reason when it cannot run sessions. */
  preflight(): Promise<void>;
  start(spec: SandboxSpec): Promise<SandboxProcess>;
  /** Reattaches to a sandbox started by an earlier bridge; undefined when it is gone. */
  adopt(ref: string, sessionId: string): Promise<SandboxProcess | undefined>;
  /** Removes what is left of a sandbox whose program ended (an exited container); no error when gone. */
  remove(ref: string): Promise<void>;
  /** Docker: the harness's image, built when missing or changed (progress through `onProgress`). */
  prepareImage?(harness: string, opts: { signal?: AbortSignal; onProgress?: (line: string) => void }): Promise<string>;
  /** The last image build's log for a harness, if any. */
  buildLog?(harness: string): string | undefined;
  /** uid the sandbox's processes run as, as the host sees it (for socket ownership checks). */
  sandboxUid?(): number | undefined;
  /** Refs of sandboxes this bridge owns that still run (for orphan cleanup). */
  running(bridgeId: string): Promise<{ ref: string; sessionId: string }[]>;
}

export class RuntimeUnavailableError extends Error {
  override readonly name = 'RuntimeUnavailableError';
}

/** A list of listeners with disposable subscriptions. With `holdUntilListened`, values emitted
 *  before the first listener are kept and delivered to it (no output is lost between a sandbox's
 *  start and its terminal hub subscribing). */
export class Emitter<T> {
  private listeners = new Set<(v: T) => void>();
  private held: T[] | undefined;
  constructor(holdUntilListened = false) {
    if (holdUntilListened) this.held = [];
  }
  on(listener: (v: T) => void): Disposable {
    this.listeners.add(listener);
    const held = this.held;
    this.held = undefined;
    if (held) for (const v of held) listener(v);
    return { dispose: () => this.listeners.delete(listener) };
  }
  emit(v: T): void {
    if (this.held) {
      this.held.push(v);
      return;
    }
    for (const l of [...this.listeners]) l(v);
  }
  clear(): void {
    this.listeners.clear();
  }
  get size(): number {
    return this.listeners.size;
  }
}

/** `p`, or a rejection with `message` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(message)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
