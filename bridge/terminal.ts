/**
 * One session's terminal: the sandbox's PTY bytes are mirrored into a headless xterm (so any client
 * that attaches first receives the current screen and scrollback, serialized) and fanned out to
 * every attached WebSocket client, batched. Input comes from any client; the last resize wins.
 *
 * Byte offsets keep snapshot and live stream exact: a snapshot covers everything queued to the
 * mirror before offset `mark`, and a client is sent only live bytes at or after its mark.
 * A slow client never holds back the others or grows memory without bound: past a high-water mark
 * on its socket buffer it is paused and, once drained, resynchronised from a fresh snapshot.
 */
import { Terminal } from '@xterm/headless';
import { SerializeAddon } from '@xterm/addon-serialize';
import type { WebSocket } from 'ws';
import { Emitter, type Disposable, type ExitInfo, type SandboxProcess } from './runtimes/runtime';
import type { BridgeLog } from './log';

export const MIN_COLS = 2;
export const MAX_COLS = 1000;
export const MIN_ROWS = 1;
export const MAX_ROWS = 500;
const FLUSH_DELAY_MS = 4;
const FLUSH_BYTES = 64 * 1024;
const SMALL_READ = 1024;
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 64 * 1024;
const MAX_CLIENTS = 32;
/** Output queued in the mirror but not yet parsed: above HIGH the sandbox is not read, below LOW it is again. */
const MIRROR_HIGH = 512 * 1024;
const MIRROR_LOW = 128 * 1024;
/** Erases the client's screen and scrollback before a snapshot, so a reattach repaints cleanly. */
const RESET = '\x1bc';

interface Client {
  ws: WebSocket;
  /** Live bytes from this offset on belong to it; earlier ones came in its snapshot. */
  from: number;
  state: 'syncing' | 'live' | 'paused';
}

export function clampSize(cols: unknown, rows: unknown): { cols: number; rows: number } | undefined {
  if (typeof cols !== 'number' || typeof rows !== 'number' || !Number.isFinite(cols) || !Number.isFinite(rows)) return undefined;
  return {
    cols: Math.min(MAX_COLS, Math.max(MIN_COLS, Math.round(cols))),
    rows: Math.min(MAX_ROWS, Math.max(MIN_ROWS, Math.round(rows))),
  };
}

export class TerminalHub {
  private readonly mirror: Terminal;
  private readonly serializer = new SerializeAddon();
  private readonly clients = new Set<Client>();
  private readonly subs: Disposable[] = [];
  private readonly exited = new Emitter<ExitInfo>();
  readonly onExit = this.exited.on.bind(this.exited);
  /** Bytes queued to the mirror so far. */
  private written = 0;
  private batch: { start: number; data: Buffer }[] = [];
  private batchBytes = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private ended: ExitInfo | undefined;
  private unparsed = 0;
  private lastFlush = 0;
  private readingPaused = false;
  cols: number;
  rows: number;

  constructor(
    private readonly proc: SandboxProcess,
    opts: { cols: number; rows: number; scrollback?: number },
    private readonly log: BridgeLog,
    private readonly label: string,
  ) {
    this.cols = opts.cols;
    this.rows = opts.rows;
    this.mirror = new Terminal({ cols: opts.cols, rows: opts.rows, scrollback: opts.scrollback ?? 10_000, allowProposedApi: true });
    this.mirror.loadAddon(this.serializer);
    this.subs.push(proc.onData((d) => this.output(d)));
    this.subs.push(proc.onExit((info) => this.exit(info)));
  }

  get clientCount(): number {
    return this.clients.size;
  }

  get hasExited(): boolean {
    return this.ended !== undefined;
  }

  /** Writes earlier output into the mirror (after adoption), before any client attaches. */
  seed(history: Buffer): void {
    if (history.length === 0) return;
    this.mirror.write(history);
    this.written += history.length;
  }

  attach(ws: WebSocket): void {
    if (this.clients.size >= MAX_CLIENTS) {
      ws.close(1013, 'too many clients on this session');
      return;
    }
    const client: Client = { ws, from: Number.MAX_SAFE_INTEGER, state: 'syncing' };
    this.clients.add(client);
    ws.on('message', (data, isBinary) => this.fromClient(data as Buffer | Buffer[] | ArrayBuffer, isBinary));
    ws.on('close', () => this.clients.delete(client));
    ws.on('error', () => this.clients.delete(client));
    void this.sync(client);
  }

  /** Sends a fresh snapshot, then live bytes from the snapshot's mark on. */
  private async sync(client: Client): Promise<void> {
    client.state = 'syncing';
    const { text, mark } = await this.snapshot();
    if (!this.clients.has(client)) return;
    client.from = mark;
    client.state = 'live';
    this.sendTo(client, Buffer.from(RESET + text, 'utf8'));
    if (this.ended) this.closeClient(client);
  }

  private snapshot(): Promise<{ text: string; mark: number }> {
    const mark = this.written;
    // The callback runs right after everything queued before it is parsed, and before anything
    // queued later: serializing inside it captures exactly the bytes before `mark`.
    return new Promise((resolve) => this.mirror.write('', () => resolve({ text: this.serializer.serialize({ scrollback: 10_000 }), mark })));
  }

  private output(data: Buffer): void {
    // Flow control: the mirror parses slower than a `yes` flood arrives. Bounding what waits to be
    // parsed keeps memory flat and snapshots (reattach, resync) quick, and makes the program block on
    // its writes, so Ctrl+C is answered at once instead of after a backlog.
    this.unparsed += data.length;
    this.mirror.write(data, () => {
      this.unparsed -= data.length;
      if (this.readingPaused && this.unparsed <= MIRROR_LOW) {
        this.readingPaused = false;
        this.proc.resume();
      }
    });
    if (!this.readingPaused && this.unparsed > MIRROR_HIGH) {
      this.readingPaused = true;
      this.proc.pause();
    }
    this.batch.push({ start: this.written, data });
    this.written += data.length;
    this.batchBytes += data.length;
    // A small read with nothing pending (an echoed keystroke, a prompt) goes out at once; larger reads
    // (a flood fills the PTY's buffer) are batched, so a flood costs one frame per batch, not per read.
    if (this.batchBytes >= FLUSH_BYTES || (!this.flushTimer && (data.length < SMALL_READ || Date.now() - this.lastFlush > FLUSH_DELAY_MS))) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_DELAY_MS);
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.lastFlush = Date.now();
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    this.batchBytes = 0;
    const all = batch.length === 1 ? batch[0].data : Buffer.concat(batch.map((c) => c.data));
    const start = batch[0].start;
    for (const client of this.clients) {
      if (client.state !== 'live') continue;
      const skip = client.from - start;
      if (skip >= all.length) continue;
      this.sendTo(client, skip > 0 ? all.subarray(skip) : all);
    }
  }

  private sendTo(client: Client, data: Buffer): void {
    if (client.ws.readyState !== client.ws.OPEN) return;
    if (client.ws.bufferedAmount > HIGH_WATER) {
      // Too far behind: stop feeding it; resynchronise from a snapshot once it drains.
      client.state = 'paused';
      this.log.debug(`${this.label}: client paused (${client.ws.bufferedAmount} bytes buffered)`);
      this.watchDrain();
      return;
    }
    client.ws.send(data, { binary: true });
  }

  private watchDrain(): void {
    this.drainTimer ??= setInterval(() => {
      let paused = 0;
      for (const c of this.clients) {
        if (c.state !== 'paused') continue;
        if (c.ws.bufferedAmount <= LOW_WATER) void this.sync(c);
        else paused++;
      }
      if (paused === 0) {
        clearInterval(this.drainTimer);
        this.drainTimer = undefined;
      }
    }, 25);
  }

  private fromClient(data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
    if (this.ended) return;
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (!isBinary) {
      const text = buf.toString('utf8');
      // Text that parses as a control message is one; any other text is input (as the platform does).
      if (text.startsWith('{')) {
        let msg: unknown;
        try {
          msg = JSON.parse(text);
        } catch {
          msg = undefined;
        }
        if (msg && typeof msg === 'object' && 'type' in msg) {
          const m = msg as { type: unknown; cols?: unknown; rows?: unknown };
          if (m.type === 'ping') return;
          if (m.type === 'resize') {
            const size = clampSize(m.cols, m.rows);
            if (size) this.resize(size.cols, size.rows);
            return;
          }
        }
      }
    }
    this.proc.write(buf);
  }

  resize(cols: number, rows: number): void {
    if (cols === this.cols && rows === this.rows) return;
    this.cols = cols;
    this.rows = rows;
    this.mirror.resize(cols, rows);
    this.proc.resize(cols, rows);
  }

  private exit(info: ExitInfo): void {
    if (this.ended) return;
    this.ended = info;
    const what = info.reason ?? `process exited (code ${info.code ?? '?'}${info.signal ? `, signal ${info.signal}` : ''})`;
    this.output(Buffer.from(`\r\n\x1b[2m[bridge] ${what}\x1b[0m\r\n`));
    this.flush();
    for (const c of this.clients) this.closeClient(c);
    this.exited.emit(info);
  }

  private closeClient(c: Client): void {
    // Let the last bytes go out first; `close()` without a code gives the platform's 1005.
    setTimeout(() => c.ws.close(), 20);
  }

  /** Stops mirroring; clients are closed with 1001 (going away) unless the sandbox is kept running. */
  dispose(opts: { code?: number; reason?: string } = {}): void {
    clearTimeout(this.flushTimer);
    clearInterval(this.drainTimer);
    for (const s of this.subs.splice(0)) s.dispose();
    for (const c of this.clients) c.ws.close(opts.code ?? 1001, opts.reason ?? 'bridge shutting down');
    this.clients.clear();
    this.exited.clear();
    this.mirror.dispose();
  }
}
