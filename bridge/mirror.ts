/**
 * A session's terminal mirror, seen from the bridge's main thread. The headless xterm that parses the
 * output (mirrorEngine.ts) lives in a worker thread shared by all sessions (mirrorWorker.ts), so
 * parsing a flood and serializing a snapshot never stall the thread that reads PTYs and feeds clients.
 * Here the output is only copied to the worker, and the PTY is held when the worker falls behind:
 * beyond MIRROR_HIGH unparsed bytes, or beyond PLAIN_HIGH when the backlog is plain text the worker
 * can drop through without parsing it.
 *
 * A snapshot covers exactly the bytes written before it was asked for (`mark`): the request is queued
 * in the worker behind them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { MirrorProgress, MirrorSize } from './mirrorEngine';
import type { BridgeLog } from './log';

/** Unparsed output that pauses the PTY (and, below LOW, resumes it). */
const MIRROR_HIGH = 1024 * 1024;
const MIRROR_LOW = 512 * 1024;
/** The same when the backlog is plain text: the worker drops, rather than parses, most of a plain flood. */
const PLAIN_HIGH = 8 * 1024 * 1024;
const PLAIN_LOW = 4 * 1024 * 1024;
/** Output is handed to the worker in batches of about this much (each message has a fixed cost). */
const BATCH_BYTES = 256 * 1024;
/** A worker that dies is started again, at most this often. */
const RESTART_MS = 5_000;

export type ToMirrorWorker =
  | { t: 'open'; id: number; size: MirrorSize }
  | { t: 'data'; id: number; bytes: Uint8Array }
  | { t: 'resize'; id: number; cols: number; rows: number }
  | { t: 'snapshot'; id: number; request: number }
  | { t: 'close'; id: number };

export type FromMirrorWorker = ({ t: 'progress'; id: number } & MirrorProgress) | { t: 'snapshot'; id: number; request: number; text: string };

/** Where the worker's code is: beside the bundle (dist/bridge-mirror.js), or the source under tsx (unit tests). */
function startWorker(): Worker {
  // What it allocates per chunk dies young: a small young generation keeps its memory (and the
  // bridge's RSS under a flood) down, at the cost of more, cheap, scavenges.
  const resourceLimits = { maxYoungGenerationSizeMb: 4 };
  const bundled = join(__dirname, 'bridge-mirror.js');
  if (existsSync(bundled)) return new Worker(bundled, { resourceLimits });
  const source = join(__dirname, 'mirrorWorker.ts');
  const loader = 'tsx/cjs/api'; // a dev dependency, never bundled: not a literal for esbuild to resolve
  const tsx = require.resolve(loader);
  return new Worker(`require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(source)});`, { eval: true, execArgv: [], resourceLimits });
}

/** The one worker, started with the first mirror and restarted (empty) if it dies. */
class MirrorWorkerHost {
  private worker: Worker | undefined;
  private readonly mirrors = new Map<number, Mirror>();
  private nextId = 1;
  private lastStart = 0;
  private dead = false;
  /** Snapshots asked for and not answered: while there are any, the worker keeps the process alive. */
  private waiting = 0;

  open(mirror: Mirror, size: MirrorSize): number {
    const id = this.nextId++;
    this.mirrors.set(id, mirror);
    this.post({ t: 'open', id, size });
    return id;
  }

  close(id: number): void {
    if (!this.mirrors.delete(id)) return;
    this.post({ t: 'close', id });
  }

  /** False when the worker is gone for good (it kept dying). */
  post(m: ToMirrorWorker, transfer?: ArrayBuffer[]): boolean {
    const w = this.ensure();
    w?.postMessage(m, transfer);
    return w !== undefined;
  }

  private ensure(): Worker | undefined {
    if (this.worker || this.dead) return this.worker;
    this.lastStart = Date.now();
    const w = startWorker();
    w.on('message', (m: FromMirrorWorker) => this.mirrors.get(m.id)?.fromWorker(m));
    w.on('error', (err) => this.died(w, err));
    w.on('exit', (code) => this.died(w, new Error(`the mirror worker exited (${code})`)));
    // Idle, it does not keep the process alive (unref after the listeners: adding one refs it again).
    if (this.waiting === 0) w.unref();
    this.worker = w;
    return w;
  }

  waitingFor(delta: number): void {
    this.waiting += delta;
    if (this.waiting > 0) this.worker?.ref();
    else this.worker?.unref();
  }

  private died(w: Worker, err: Error): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    const again = Date.now() - this.lastStart > RESTART_MS;
    if (!again) this.dead = true;
    for (const mirror of this.mirrors.values()) mirror.lost(err, again);
  }
}

let host: MirrorWorkerHost | undefined;

export class Mirror {
  private readonly id: number;
  private written = 0;
  /** Bytes the worker has dealt with; its count starts at `base` (where a restarted worker took over). */
  private done = 0;
  private base = 0;
  private plain = false;
  private held = false;
  private nextRequest = 1;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private batchTimer: NodeJS.Immediate | undefined;
  private readonly requests = new Map<number, { mark: number; resolve: (s: { text: string; mark: number }) => void }>();
  private disposed = false;

  constructor(
    private size: MirrorSize,
    /** Called with true when the PTY should stop being read, false when it may be read again. */
    private readonly hold: (on: boolean) => void,
    private readonly log: BridgeLog,
    private readonly label: string,
  ) {
    host ??= new MirrorWorkerHost();
    this.id = host.open(this, size);
  }

  /** Bytes written so far: a snapshot asked for now covers exactly these. */
  get offset(): number {
    return this.written;
  }

  write(data: Buffer): void {
    if (this.disposed || data.length === 0) return;
    this.written += data.length;
    this.batch.push(data);
    this.batchBytes += data.length;
    if (this.batchBytes >= BATCH_BYTES) this.send();
    else this.batchTimer ??= setImmediate(() => this.send());
    this.flowControl();
  }

  /** Hands the batched output to the worker: one copy into a buffer of its own, moved, not cloned. */
  private send(): void {
    if (this.batchTimer) clearImmediate(this.batchTimer);
    this.batchTimer = undefined;
    if (this.batchBytes === 0) return;
    const bytes = new Uint8Array(this.batchBytes);
    let at = 0;
    for (const b of this.batch) {
      bytes.set(b, at);
      at += b.length;
    }
    this.batch = [];
    this.batchBytes = 0;
    host!.post({ t: 'data', id: this.id, bytes }, [bytes.buffer]);
  }

  resize(cols: number, rows: number): void {
    if (this.disposed) return;
    this.send();
    this.size = { ...this.size, cols, rows };
    host!.post({ t: 'resize', id: this.id, cols, rows });
  }

  /** Bytes that repaint a fresh terminal (after ESC c) as the session's is, covering output before `mark`. */
  snapshot(): Promise<{ text: string; mark: number }> {
    const mark = this.written;
    if (this.disposed) return Promise.resolve({ text: '', mark });
    const request = this.nextRequest++;
    this.send();
    return new Promise((resolve) => {
      host!.waitingFor(1);
      this.requests.set(request, {
        mark,
        resolve: (s) => {
          host!.waitingFor(-1);
          resolve(s);
        },
      });
      if (!host!.post({ t: 'snapshot', id: this.id, request })) this.lost(new Error('the mirror worker is gone'), false);
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.batchTimer) clearImmediate(this.batchTimer);
    this.batch = [];
    host?.close(this.id);
    for (const r of this.requests.values()) r.resolve({ text: '', mark: r.mark });
    this.requests.clear();
  }

  /** @internal */
  fromWorker(m: FromMirrorWorker): void {
    if (m.t === 'snapshot') {
      const r = this.requests.get(m.request);
      if (!r) return;
      this.requests.delete(m.request);
      r.resolve({ text: m.text, mark: r.mark });
      return;
    }
    this.done = this.base + m.done;
    this.plain = m.plain;
    this.flowControl();
  }

  /** @internal The worker died: what it held is gone. Start over with an empty screen (if it restarts). */
  lost(err: Error, restarted: boolean): void {
    this.log.error(`${this.label}: terminal mirror lost (${err.message})${restarted ? '; starting over with an empty screen' : ''}`);
    for (const r of this.requests.values()) r.resolve({ text: '', mark: r.mark });
    this.requests.clear();
    this.batch = [];
    this.batchBytes = 0;
    this.base = this.done = this.written;
    this.plain = false;
    this.flowControl();
    if (restarted && !this.disposed) host!.post({ t: 'open', id: this.id, size: this.size });
  }

  private flowControl(): void {
    const backlog = this.written - this.done;
    if (!this.held && backlog > (this.plain ? PLAIN_HIGH : MIRROR_HIGH)) {
      this.held = true;
      this.hold(true);
    } else if (this.held && backlog <= (this.plain ? PLAIN_LOW : MIRROR_LOW)) {
      this.held = false;
      this.hold(false);
    }
  }
}
