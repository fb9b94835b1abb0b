/**
 * One session's terminal: the sandbox's PTY bytes are mirrored into a headless xterm in a worker
 * thread (mirror.ts; so any client that attaches first receives the current screen and scrollback,
 * serialized) and fanned out to every attached WebSocket client, batched. Input comes from any
 * client; the last resize wins.
 *
 * Byte offsets keep snapshot and live stream exact: a snapshot covers everything queued to the
 * mirror before offset `mark`, and a client is sent only live bytes at or after its mark.
 * A slow client never holds back the others or grows memory without bound: past a high-water mark
 * on its socket buffer it is paused and, once drained, resynchronised from a fresh snapshot.
 *
 * Flow clients (the extension's: `?flow=1` on the URL, answered with `x-sandbox-agents-flow: ack`;
 * protocol/terminal.ts) acknowledge the output they have consumed with text frames
 * `{"type":"ack","bytes":N}`. At most FLOW_WINDOW bytes are in flight to one, unacknowledged; what
 * comes later waits in its queue, and while any flow client is at its window the PTY is paused, so
 * the program blocks and input (Ctrl+C) is answered after at most a window of output instead of after
 * whatever the socket buffers held. A flow client that sends no ack for FLOW_STALL_MS with its window
 * full stops holding the PTY: its queue is dropped and it is resynchronised from a snapshot once it
 * has acknowledged what it was sent, like a slow client. For other clients (`lap`, scripts) nothing
 * changes. Output flushed while a client's snapshot is being taken is kept for it and follows the
 * snapshot from its mark on.
 */
import type { WebSocket } from 'ws';
import { TtyAckFrame } from '../protocol/terminal';
import { Emitter, type Disposable, type ExitInfo, type SandboxProcess } from './runtimes/runtime';
import type { BridgeLog } from './log';
import { Mirror } from './mirror';

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
/** Output in flight to a flow client, sent and not acknowledged: at most this. */
export const FLOW_WINDOW = 32 * 1024;
/** A flow client at its window that sends no ack for this long no longer holds the PTY. */
const FLOW_STALL_MS = 2_000;
/** A flow client dropped for stalling is resynchronised once its unacknowledged bytes are down to this. */
const FLOW_CAUGHT_UP = FLOW_WINDOW / 4;
/** Erases the client's screen and scrollback before a snapshot, so a reattach repaints cleanly. */
const RESET = '\x1bc';

interface Client {
  ws: WebSocket;
  /** Live bytes from this offset on belong to it; earlier ones came in its snapshot. */
  from: number;
  state: 'syncing' | 'live' | 'paused';
  /** Output flushed while its snapshot is being taken: what is past the snapshot's mark follows it. */
  pending: { start: number; data: Buffer }[];
  /** Set when it acknowledges output (it asked with `?flow=1`). */
  flow: ClientFlow | undefined;
}

interface ClientFlow {
  /** Bytes sent to it and not acknowledged yet. */
  unacked: number;
  /** Live output waiting for room in its window, in order. */
  queue: Buffer[];
  queued: number;
  /** Runs while it is live at its window (and then it holds the PTY); refreshed by every ack. */
  stall: NodeJS.Timeout | undefined;
}

export function clampSize(cols: unknown, rows: unknown): { cols: number; rows: number } | undefined {
  if (typeof cols !== 'number' || typeof rows !== 'number' || !Number.isFinite(cols) || !Number.isFinite(rows)) return undefined;
  return {
    cols: Math.min(MAX_COLS, Math.max(MIN_COLS, Math.round(cols))),
    rows: Math.min(MAX_ROWS, Math.max(MIN_ROWS, Math.round(rows))),
  };
}

export class TerminalHub {
  private readonly mirror: Mirror;
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
  private lastFlush = 0;
  /** Why the sandbox's output is not being read: each reason pauses it, and it resumes once none is left. */
  private readonly holds = new Set<'mirror' | 'clients'>();
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
    // Parsed in a worker thread; holds the PTY while the mirror is too far behind (mirror.ts).
    this.mirror = new Mirror({ cols: opts.cols, rows: opts.rows, scrollback: opts.scrollback ?? 10_000 }, (on) => this.setHold('mirror', on), log, label);
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

  /** `flow`: the client acknowledges output (it asked with `?flow=1` and was answered so). */
  attach(ws: WebSocket, opts: { flow?: boolean } = {}): void {
    if (this.clients.size >= MAX_CLIENTS) {
      ws.close(1013, 'too many clients on this session');
      return;
    }
    const client: Client = {
      ws,
      from: Number.MAX_SAFE_INTEGER,
      state: 'syncing',
      pending: [],
      flow: opts.flow ? { unacked: 0, queue: [], queued: 0, stall: undefined } : undefined,
    };
    this.clients.add(client);
    ws.on('message', (data, isBinary) => this.fromClient(client, data as Buffer | Buffer[] | ArrayBuffer, isBinary));
    ws.on('close', () => this.detach(client));
    ws.on('error', () => this.detach(client));
    void this.sync(client);
  }

  private detach(client: Client): void {
    if (!this.clients.delete(client)) return;
    if (client.flow) clearTimeout(client.flow.stall);
    client.pending = [];
    this.updateClientHold();
  }

  /** Sends a fresh snapshot, then live bytes from the snapshot's mark on. */
  private async sync(client: Client): Promise<void> {
    client.state = 'syncing';
    client.pending = [];
    const { text, mark } = await this.snapshot();
    if (!this.clients.has(client)) return;
    client.from = mark;
    client.state = 'live';
    // The snapshot goes out whole, whatever the window: it counts as unacknowledged output.
    this.sendTo(client, Buffer.from(RESET + text, 'utf8'), true);
    for (const { start, data } of client.pending.splice(0)) {
      const skip = mark - start;
      if (skip < data.length) this.sendTo(client, skip > 0 ? data.subarray(skip) : data);
    }
    if (this.ended) this.closeClient(client);
  }

  private snapshot(): Promise<{ text: string; mark: number }> {
    // The request is queued in the mirror behind every byte written so far: the snapshot covers
    // exactly the bytes before `mark` (= this.written: everything written goes to the mirror).
    return this.mirror.snapshot();
  }

  private output(data: Buffer): void {
    // The mirror holds the PTY (setHold) while it is too far behind, which keeps memory flat and
    // snapshots quick, and makes the program block on its writes, so Ctrl+C is answered at once.
    this.mirror.write(data);
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
      if (client.state === 'syncing') client.pending.push({ start, data: all });
      if (client.state !== 'live') continue;
      const skip = client.from - start;
      if (skip >= all.length) continue;
      this.sendTo(client, skip > 0 ? all.subarray(skip) : all);
    }
  }

  /** `whole`: past a flow client's window too (a snapshot; everything once the program has exited). */
  private sendTo(client: Client, data: Buffer, whole = false): void {
    if (client.ws.readyState !== client.ws.OPEN) return;
    if (client.ws.bufferedAmount > HIGH_WATER) {
      // Too far behind: stop feeding it; resynchronise from a snapshot once it drains.
      this.drop(client, `${client.ws.bufferedAmount} bytes buffered`);
      return;
    }
    if (!client.flow) {
      client.ws.send(data, { binary: true });
      return;
    }
    client.flow.queue.push(data);
    client.flow.queued += data.length;
    this.pump(client, whole || this.ended !== undefined);
  }

  /** Sends a flow client's queued output while its window has room (all of it when `whole`). */
  private pump(client: Client, whole = false): void {
    const flow = client.flow!;
    while (flow.queue.length > 0 && (whole || flow.unacked < FLOW_WINDOW)) {
      let chunk = flow.queue[0];
      const room = whole ? chunk.length : FLOW_WINDOW - flow.unacked;
      if (chunk.length > room) {
        flow.queue[0] = chunk.subarray(room);
        chunk = chunk.subarray(0, room);
      } else flow.queue.shift();
      flow.queued -= chunk.length;
      flow.unacked += chunk.length;
      client.ws.send(chunk, { binary: true });
    }
    // At its window, a live client holds the PTY until it acknowledges or stalls.
    const full = client.state === 'live' && flow.unacked >= FLOW_WINDOW;
    if (full && !flow.stall) {
      flow.stall = setTimeout(() => this.stalled(client), FLOW_STALL_MS);
      flow.stall.unref();
    } else if (!full && flow.stall) {
      clearTimeout(flow.stall);
      flow.stall = undefined;
    }
    this.updateClientHold();
  }

  private acked(client: Client, bytes: number): void {
    const flow = client.flow!;
    flow.unacked = Math.max(0, flow.unacked - bytes);
    if (client.state === 'paused') {
      if (flow.unacked <= FLOW_CAUGHT_UP && client.ws.bufferedAmount <= LOW_WATER) void this.sync(client);
      return;
    }
    flow.stall?.refresh();
    this.pump(client);
  }

  private stalled(client: Client): void {
    const flow = client.flow!;
    flow.stall = undefined;
    if (!this.clients.has(client) || client.state !== 'live') return this.updateClientHold();
    this.drop(client, `no acknowledgement for ${FLOW_STALL_MS} ms with ${flow.unacked} bytes in flight`);
  }

  /** Stops feeding a client that fell behind (its queue is dropped); it resyncs once it has caught up. */
  private drop(client: Client, why: string): void {
    client.state = 'paused';
    if (client.flow) {
      clearTimeout(client.flow.stall);
      client.flow.stall = undefined;
      client.flow.queue = [];
      client.flow.queued = 0;
    }
    this.log.debug(`${this.label}: client paused (${why})`);
    this.updateClientHold();
    this.watchDrain();
  }

  /** The PTY is held while any live flow client is at its window (and has not stalled). */
  private updateClientHold(): void {
    let holding = false;
    for (const c of this.clients) if (c.flow?.stall) holding = true;
    this.setHold('clients', holding);
  }

  private setHold(reason: 'mirror' | 'clients', on: boolean): void {
    const was = this.holds.size > 0;
    if (on) this.holds.add(reason);
    else this.holds.delete(reason);
    const is = this.holds.size > 0;
    if (is && !was) this.proc.pause();
    else if (!is && was) this.proc.resume();
  }

  private watchDrain(): void {
    this.drainTimer ??= setInterval(() => {
      let paused = 0;
      for (const c of this.clients) {
        if (c.state !== 'paused') continue;
        if (c.ws.bufferedAmount <= LOW_WATER && (!c.flow || c.flow.unacked <= FLOW_CAUGHT_UP)) void this.sync(c);
        else paused++;
      }
      if (paused === 0) {
        clearInterval(this.drainTimer);
        this.drainTimer = undefined;
      }
    }, 25);
  }

  private fromClient(client: Client, data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
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
          if (m.type === 'ack' && client.flow) {
            const ack = TtyAckFrame.safeParse(msg);
            if (ack.success) this.acked(client, ack.data.bytes);
            return;
          }
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
