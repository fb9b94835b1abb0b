/**
 * One session's mirror: a headless xterm fed the session's output in order, with resizes and snapshot
 * requests queued between the bytes, so a snapshot covers exactly the output received before it was
 * asked for. It runs in the mirror worker (mirrorWorker.ts); the bridge's main thread only forwards.
 *
 * Parsing (~25 MiB/s) is slower than a flood arrives (~80 MiB/s). For ESC-bearing output the bridge
 * then pauses the PTY (mirror.ts), as before. Plain text, the common flood (`yes`, `cat` of a log), is
 * instead dropped from the front of the queue when dropping it is provably lossless — when parsing the
 * rest of the queue will leave the terminal exactly as parsing everything would:
 *
 * Let S be the bytes at the front of the queue (a chunk; or whole rows of text, which may end inside
 * the next chunk) and P the plain chunks after them. The mirror, having parsed everything before S,
 * is at rest (parser between sequences, no partial UTF-8 character), shows the normal buffer with a
 * full-screen scroll region and reverse-wraparound off. Plain text (printable characters, CR, LF,
 * TAB, BS, BEL) cannot change any of that, cannot move the cursor up, and changes only the cells it
 * is written on and the rows it scrolls out; attributes, modes, tab stops, charsets and saved cursors
 * stay as they are. Compare run A (S then P) with run B (P alone):
 * - Once the cursor reaches the bottom row, every line feed and every wrap scrolls. Reaching it takes
 *   at most rows - 1 line advances, in either run.
 * - Once both runs are at the bottom row in the same column, they stay in step byte for byte. That
 *   happens (case "line") at the first CR of P after rows - 1 advances, or (case "column") at once,
 *   when S is printable ASCII only, a multiple of the width long, and the cursor is past column 0 with
 *   autowrap on and insert mode off: writing S then leaves the cursor in the same column.
 * - From that point on, scrollback + rows scrolls push every line that existed then — every line S
 *   touched, and every line where the runs differ — out of the buffer, which holds scrollback + rows
 *   lines. After that, the two runs' buffers, cursors and every other state are equal.
 * So S may be dropped when P, counted conservatively (line feeds, plus the wraps of printable ASCII
 * runs; only whole chunks, only up to the next snapshot or resize), has enough advances: rows - 1,
 * then a CR, then scrollback + rows for "line"; rows - 1 + scrollback + rows for "column".
 *
 * While plain output keeps arriving, its parsing is deferred (DEFER_MS after the last chunk), so a
 * flood is dropped rather than parsed; anything else is parsed at once, a slice per event-loop turn.
 * When idle, the snapshot cache (mirrorSnapshot.ts) is filled.
 */
import { Terminal } from '@xterm/headless';
import { SerializeAddon } from '@xterm/addon-serialize';
import { xtermInternals, type XtermInternals } from './mirrorInternals';
import { charBoundary, scanChunk, type ChunkInfo } from './mirrorScan';
import { SnapshotWriter } from './mirrorSnapshot';

/** Largest queued chunk: one parse slice. */
const SLICE = 64 * 1024;
/**
 * Plain output is parsed once none has arrived for this long (or a snapshot or resize waits). Only
 * snapshots need the mirror up to date, and they wait for it; a short pause in a flood should not
 * make the mirror parse the ~10,000 lines it keeps just in case (that costs more than the dropping).
 */
const DEFER_MS = 100;
/** ...or once this much waits, whatever arrives. */
const PARSE_ANYWAY = 4 * 1024 * 1024;
/** Time the idle mirror spends filling the snapshot cache per event-loop turn. */
const FILL_MS = 4;
/** Progress is reported every this many bytes (and when the queue is empty, or it changes from or to plain). */
const REPORT_BYTES = 128 * 1024;
/** Chunks looked at one by one when deciding whether the front one may be dropped (sums are kept). */
const LOOKAHEAD = 256;

export interface MirrorSize {
  cols: number;
  rows: number;
  scrollback: number;
}

export interface MirrorProgress {
  /** Bytes dealt with: parsed, or dropped as provably without effect. */
  done: number;
  /** The queued output is plain text the mirror can drop through (so it need not hold up the PTY). */
  plain: boolean;
}

/** Running totals over the output, so a decision about the front chunk does not walk the queue. */
interface Totals {
  lfs: number;
  wraps: number;
  /** Chunks with a CR. */
  crs: number;
}

type Data = {
  kind: 'data';
  bytes: Uint8Array;
  info: ChunkInfo;
  /** Which run of consecutive plain chunks (no barrier between) it belongs to; -1 when not plain. */
  run: number;
  /** Totals over the chunks before it. */
  before: Totals;
};
type Item = Data | { kind: 'resize'; cols: number; rows: number } | { kind: 'snapshot'; id: number };

export class MirrorEngine {
  readonly term: Terminal;
  private readonly internals: XtermInternals;
  private readonly snapshots: SnapshotWriter;
  private queue: Item[] = [];
  private qhead = 0;
  private queuedBytes = 0;
  private nonPlainBytes = 0;
  private barriers = 0;
  private totals: Totals = { lfs: 0, wraps: 0, crs: 0 };
  private run = 0;
  /** Totals at the end of each run still queued. */
  private readonly runEnds = new Map<number, Totals>();
  private carry: Uint8Array | undefined;
  /** Width the queued output will be parsed at (after queued resizes). */
  private tailCols: number;
  private lastArrival = 0;
  private done = 0;
  private reported = { done: -1, plain: false };
  private scheduled: NodeJS.Immediate | undefined;
  private deferred: NodeJS.Timeout | undefined;
  private disposed = false;
  /** Bytes still to drop from the front chunk to complete whole rows (see trySkip). */
  private owed = 0;
  /** Bytes dropped unparsed, for tests and the log. */
  skipped = 0;

  constructor(
    private readonly size: MirrorSize,
    private readonly onProgress: (p: MirrorProgress) => void,
    private readonly onSnapshot: (id: number, text: string) => void,
  ) {
    this.term = new Terminal({ cols: size.cols, rows: size.rows, scrollback: size.scrollback, allowProposedApi: true, logLevel: 'off' });
    const serializer = new SerializeAddon();
    this.term.loadAddon(serializer);
    this.internals = xtermInternals(this.term);
    this.snapshots = new SnapshotWriter(this.term, serializer, this.internals);
    this.tailCols = size.cols;
  }

  write(bytes: Uint8Array): void {
    if (this.disposed || bytes.length === 0) return;
    this.lastArrival = performance.now();
    let data = bytes;
    if (this.carry) {
      data = new Uint8Array(this.carry.length + bytes.length);
      data.set(this.carry);
      data.set(bytes, this.carry.length);
      this.carry = undefined;
    }
    // Whole characters per chunk, at most a slice each; a character cut off at the end waits for the rest.
    const end = charBoundary(data);
    for (let at = 0; at < end; ) {
      const cut = at + SLICE >= end ? end : Math.max(charBoundary(data, at + SLICE), at + 1);
      this.push(data.subarray(at, cut));
      at = cut;
    }
    if (end < data.length) this.carry = data.slice(end);
    this.report(false);
    this.schedule();
  }

  resize(cols: number, rows: number): void {
    if (this.disposed) return;
    this.flushCarry();
    this.enqueue({ kind: 'resize', cols, rows });
    this.tailCols = cols;
    this.schedule();
  }

  /** Answers `onSnapshot(id, …)` once everything written before it has been dealt with. */
  snapshot(id: number): void {
    if (this.disposed) return;
    this.flushCarry();
    this.enqueue({ kind: 'snapshot', id });
    this.schedule();
  }

  dispose(): void {
    this.disposed = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    clearTimeout(this.deferred);
    this.snapshots.dispose();
    this.term.dispose();
  }

  private push(bytes: Uint8Array): void {
    const info = scanChunk(bytes, this.tailCols);
    const before = this.totals;
    this.totals = { lfs: before.lfs + info.lfs, wraps: before.wraps + info.wraps, crs: before.crs + (info.hasCr ? 1 : 0) };
    if (info.plain) this.runEnds.set(this.run, this.totals);
    this.enqueue({ kind: 'data', bytes, info, run: info.plain ? this.run : -1, before });
    if (!info.plain) this.run++;
    this.queuedBytes += bytes.length;
    if (!info.plain) this.nonPlainBytes += bytes.length;
  }

  private flushCarry(): void {
    if (!this.carry) return;
    this.push(this.carry);
    this.carry = undefined;
  }

  private enqueue(item: Item): void {
    if (item.kind !== 'data') {
      this.barriers++;
      this.run++;
    }
    this.queue.push(item);
  }

  private shift(): void {
    const item = this.queue[this.qhead];
    this.queue[this.qhead++] = undefined as unknown as Item;
    if (this.qhead > 1024 && this.qhead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qhead);
      this.qhead = 0;
    }
    if (item.kind !== 'data') this.barriers--;
    else if (item.run >= 0) {
      const next = this.queue[this.qhead];
      if (next?.kind !== 'data' || next.run !== item.run) this.runEnds.delete(item.run);
    }
  }

  private schedule(): void {
    if (this.disposed || this.scheduled) return;
    clearTimeout(this.deferred);
    this.deferred = undefined;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.turn();
    });
  }

  /** One event-loop turn of work: resizes and snapshots in order, drops, then one parse slice. */
  private turn(): void {
    if (this.disposed) return;
    for (let steps = 0; this.qhead < this.queue.length; steps++) {
      if (steps === 10_000) {
        // Drops are cheap but not free: let messages in between.
        this.report(false);
        this.schedule();
        return;
      }
      const item = this.queue[this.qhead];
      if (item.kind === 'resize') {
        this.shift();
        this.term.resize(item.cols, item.rows);
        this.snapshots.invalidate();
        continue;
      }
      if (item.kind === 'snapshot') {
        this.shift();
        this.onSnapshot(item.id, this.snapshots.snapshot());
        continue;
      }
      if (this.trySkip(item)) continue;
      if (this.shouldDefer(item)) {
        this.deferred = setTimeout(() => this.schedule(), Math.max(1, this.lastArrival + DEFER_MS - performance.now()));
        this.report(false);
        return;
      }
      this.internals.writeSync(item.bytes);
      this.consumed(item);
      this.report(false);
      this.schedule();
      return;
    }
    this.report(true);
    if (this.snapshots.fill(FILL_MS)) this.schedule();
  }

  private consumed(item: Data): void {
    this.shift();
    this.done += item.bytes.length;
    this.queuedBytes -= item.bytes.length;
    if (!item.info.plain) this.nonPlainBytes -= item.bytes.length;
  }

  private shouldDefer(item: Data): boolean {
    return item.info.plain && this.barriers === 0 && this.queuedBytes < PARSE_ANYWAY && performance.now() - this.lastArrival < DEFER_MS && this.skipState();
  }

  /** The mirror is where plain text can only write cells and scroll (see the top of this file). */
  private skipState(): boolean {
    const term = this.term;
    if (term.buffer.active.type !== 'normal' || term.modes.reverseWraparoundMode || !this.internals.atRest()) return false;
    const region = this.internals.extras('normal');
    return region.scrollTop === 0 && region.scrollBottom === term.rows - 1;
  }

  /** Drops the front chunk, or its leading whole rows of ASCII, when that is provably without effect. */
  private trySkip(item: Data): boolean {
    if (this.owed > 0) {
      // The rest of the rows begun by dropping the previous chunk whole (its next, this one, was
      // checked to start with at least a row of text, and nothing has been parsed since).
      const n = this.owed;
      this.owed = 0;
      this.partial(item, n, true);
      return true;
    }
    if (!item.info.plain || !this.skipState()) return false;
    // P: the run of plain chunks right behind it, up to the next non-plain chunk, resize or snapshot.
    const first = this.queue[this.qhead + 1];
    if (first?.kind !== 'data' || first.run < 0) return false;
    const end = this.runEnds.get(first.run)!;
    const { rows, cols } = this.term;
    const wrapping = this.term.modes.wraparoundMode;
    const advancesBetween = (from: Totals, to: Totals) => to.lfs - from.lfs + (wrapping ? to.wraps - from.wraps : 0);
    const evict = this.size.scrollback + rows;
    // Case "line": the whole chunk. rows - 1 advances, then a CR, then `evict` advances.
    if (advancesBetween(first.before, end) >= rows - 1 + evict) {
      let i = this.qhead + 1;
      let reached = 0;
      for (let seen = 0; seen < LOOKAHEAD && i < this.queue.length && reached < rows - 1; i++, seen++) {
        const d = this.queue[i] as Data;
        reached += d.info.lfs + (wrapping ? d.info.wraps : 0);
      }
      // Counting only from the next chunk on (conservative): the first chunk with a CR after that.
      const sync = this.queue[i] as Data | undefined;
      if (reached >= rows - 1 && sync?.kind === 'data' && sync.run === first.run && end.crs > sync.before.crs) {
        for (let seen = 0; seen < LOOKAHEAD && i < this.queue.length; i++, seen++) {
          const d = this.queue[i] as Data;
          if (d.run !== first.run) break;
          if (!d.info.hasCr) continue;
          const after = d.info.lfsAfterCr + (wrapping ? d.info.wrapsAfterCr : 0);
          const next: Totals = { lfs: d.before.lfs + d.info.lfs, wraps: d.before.wraps + d.info.wraps, crs: 0 };
          if (after + advancesBetween(next, end) >= evict) {
            this.skipped += item.bytes.length;
            this.consumed(item);
            return true;
          }
          break;
        }
      }
    }
    // Case "column": whole rows of printable ASCII, the cursor staying in its column.
    const prefix = item.info.asciiPrefix;
    if (!wrapping || this.term.modes.insertMode || prefix === 0) return false;
    const need = rows - 1 + evict;
    if (advancesBetween(first.before, end) < need) return false;
    if (this.term.buffer.active.cursorX === 0) {
      // Column 0 is the one column writing whole rows does not come back to: write one character first.
      this.partial(item, 1, false);
      return true;
    }
    // A whole chunk of text may go when the next one starts with at least a row of text: the next
    // drop takes from it what completes the rows (`owed`), so the two together are whole rows.
    const second = this.queue[this.qhead + 2];
    if (
      prefix === item.bytes.length &&
      first.info.asciiPrefix >= cols &&
      second?.kind === 'data' &&
      second.run === first.run &&
      advancesBetween(second.before, end) >= need
    ) {
      this.owed = (cols - (item.bytes.length % cols)) % cols;
      this.partial(item, item.bytes.length, true);
      return true;
    }
    if (prefix < cols) return false;
    this.partial(item, prefix - (prefix % cols), true);
    return true;
  }

  /** Parses (or drops) the first `n` bytes of the front chunk; the rest stays in front. True when none is left. */
  private partial(item: Data, n: number, drop: boolean): boolean {
    if (n >= item.bytes.length) {
      if (drop) this.skipped += item.bytes.length;
      else this.internals.writeSync(item.bytes);
      this.consumed(item);
      return true;
    }
    if (drop) this.skipped += n;
    else this.internals.writeSync(item.bytes.subarray(0, n));
    const rest = item.bytes.subarray(n);
    // Of the front chunk's counts only `plain` and `asciiPrefix` are used (it is never part of a
    // decision's P, and the running totals stay as they were).
    const info = n <= item.info.asciiPrefix ? { ...item.info, asciiPrefix: item.info.asciiPrefix - n } : scanChunk(rest, this.term.cols);
    this.queue[this.qhead] = { ...item, bytes: rest, info };
    this.done += n;
    this.queuedBytes -= n;
    return false;
  }

  private report(force: boolean): void {
    const plain = this.nonPlainBytes === 0 && this.skipState();
    const r = this.reported;
    const changed = plain !== r.plain;
    if (!changed && (this.done === r.done || (!force && this.done - r.done < REPORT_BYTES))) return;
    this.reported = { done: this.done, plain };
    this.onProgress({ done: this.done, plain });
  }
}
