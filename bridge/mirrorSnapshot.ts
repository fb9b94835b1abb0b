/**
 * Snapshots of the mirror: bytes that repaint a fresh terminal (after ESC c) as the mirror is, screen
 * and scrollback, without serializing 10,000 lines on every attach.
 *
 * Scrollback lines do not change once they have left the screen, until a resize (reflow), a full reset
 * (new buffers) or a trim (the oldest lines fall off a full scrollback; ED3 trims them all). So each
 * logical scrollback line (a line plus the rows it wraps onto) is serialized once, while the mirror is
 * idle, with the serialize addon's `range` option, and kept by its position counted from the first line
 * the buffer ever had (trims move that origin; resizes and resets drop the cache). A snapshot then
 * serializes only what is not cached — in practice the screen — and joins the pieces.
 *
 * Joining is exact because each piece is drawn in the state the addon assumes at the start of any
 * serialize: default attributes, the cursor in column 0 of a blank line, blank lines below it, and no
 * scrolling while it is drawn (when content scrolls, xterm erases the new line with the current
 * background, which the addon does not always expect). So pieces are drawn a screenful at a time:
 * within one, `ESC [0m CR LF` starts the next piece on the next, still blank, line; between two,
 * `ESC [0m`, as many line feeds as the screen has rows and `ESC [H` push everything drawn into the
 * scrollback and leave a blank screen with the cursor at its top — a fresh terminal with that
 * scrollback. The screen itself is the addon's own serialize of the last rows (with the logical line
 * that wraps onto the screen's first row, if any), cursor, attributes, alternate screen and modes.
 *
 * The addon leaves out each buffer's scroll region (DECSTBM) and saved cursor (DECSC), so a full-screen
 * program drew wrongly after a reattach until it redrew; they are appended, then the cursor and its
 * attributes are put back.
 */
import type { Terminal } from '@xterm/headless';
import type { SerializeAddon } from '@xterm/addon-serialize';
import type { BufferExtras, Style, XtermInternals } from './mirrorInternals';

/** Alternate screen as the addon writes it (1049 also saves the normal buffer's cursor, DECSC). */
const ALT_SWITCH = '\x1b[?1049h\x1b[H';
const SGR_RESET = '\x1b[0m';

interface Piece {
  /** Position of its first line, counted from the first line the buffer ever had. */
  abs: number;
  lines: number;
  text: string;
}

export class SnapshotWriter {
  private pieces: Piece[] = [];
  private head = 0;
  /** Lines trimmed from the top of the normal buffer so far: position = abs - trimmed. */
  private trimmed = 0;
  /** Next line to cache, as an absolute position. */
  private next = 0;
  private lines: object;
  private trimSub: { dispose(): void };

  constructor(
    private readonly term: Terminal,
    private readonly serializer: SerializeAddon,
    private readonly internals: XtermInternals,
  ) {
    this.lines = internals.normalLines();
    this.trimSub = internals.onNormalTrim((n) => this.onTrim(n));
  }

  /** Drops the cache (the buffer reflowed). */
  invalidate(): void {
    this.pieces = [];
    this.head = 0;
    this.next = this.trimmed;
  }

  get cachedLines(): number {
    let n = 0;
    for (let i = this.head; i < this.pieces.length; i++) n += this.pieces[i].lines;
    return n;
  }

  /** Caches more scrollback lines for up to `budgetMs`; true while lines are left to cache. */
  fill(budgetMs: number): boolean {
    this.checkReset();
    const normal = this.term.buffer.normal;
    const deadline = performance.now() + budgetMs;
    for (;;) {
      const start = this.next - this.trimmed;
      // A logical line is frozen once it and the first row of the next one are in the scrollback (that
      // row's wrapped flag decides how the two join, and the screen's rows can still change).
      let end = start + 1;
      while (end < normal.baseY && normal.getLine(end)?.isWrapped) end++;
      if (end >= normal.baseY) return false;
      // The addon builds it by appending, a rope of small strings some 30 times its size: the cache
      // keeps a flat copy (a round trip through bytes is the one way to be sure to get one).
      const text = Buffer.from(this.serializer.serialize({ range: { start, end: end - 1 }, excludeAltBuffer: true, excludeModes: true })).toString();
      this.pieces.push({ abs: this.next, lines: end - start, text });
      this.next += end - start;
      if (performance.now() >= deadline) return true;
    }
  }

  snapshot(): string {
    this.fill(Infinity);
    const rows = this.term.rows;
    const normal = this.term.buffer.normal;
    const tail = this.tailStart();
    const pieces: { lines: number; text: string }[] = [];
    if (tail > 0 && this.head < this.pieces.length) {
      // What is left of a logical line whose first rows were trimmed starts the buffer.
      const first = this.pieces[this.head].abs - this.trimmed;
      if (first > 0) pieces.push({ lines: first, text: this.serializer.serialize({ range: { start: 0, end: first - 1 }, excludeAltBuffer: true, excludeModes: true }) });
      for (let i = this.head, at = first; i < this.pieces.length && at + this.pieces[i].lines <= tail; i++) {
        pieces.push(this.pieces[i]);
        at += this.pieces[i].lines;
      }
    }
    const blankScreen = SGR_RESET + '\r\n'.repeat(rows) + '\x1b[H';
    const out: string[] = [];
    let filled = 0;
    let previous: string | undefined;
    for (const p of pieces) {
      if (previous !== undefined) {
        if (filled + p.lines > rows) {
          out.push(blankScreen);
          filled = 0;
        } else out.push(previous.includes('\x1b') ? SGR_RESET + '\r\n' : '\r\n');
      }
      out.push(p.text);
      filled += p.lines;
      previous = p.text;
    }
    if (previous !== undefined) out.push(blankScreen);
    out.push(this.withExtras(this.serializer.serialize({ scrollback: normal.length - rows - tail })));
    return out.join('');
  }

  /**
   * Where the addon's own serialize (screen, cursor, alternate screen, modes) starts: a logical line
   * in the scrollback, so that more rows than the screen has are drawn (with no more, the addon drops
   * trailing rows that only have a background colour), and one whose first scroll, after a screenful,
   * scrolls in a line erased with the default background: the addon expects that there and it is the
   * case when the cells on either side of that row break have the default background.
   */
  private tailStart(): number {
    const normal = this.term.buffer.normal;
    const rows = this.term.rows;
    const cols = this.term.cols;
    const cell = normal.getNullCell();
    const plainBg = (y: number, x: number) => normal.getLine(y)?.getCell(x, cell)?.isBgDefault() ?? true;
    const startOf = (y: number) => {
      while (y > 0 && normal.getLine(y)?.isWrapped) y--;
      return y;
    };
    let start = startOf(normal.baseY - 1);
    for (let tries = 0; start > 0; tries++) {
      const last = start + rows - 1;
      if (plainBg(last, cols - 1) && plainBg(last, cols - 2) && plainBg(last + 1, 0)) return start;
      if (tries === 64) return 0;
      start = startOf(start - 1);
    }
    return 0;
  }

  dispose(): void {
    this.trimSub.dispose();
    this.pieces = [];
  }

  private onTrim(count: number): void {
    this.trimmed += count;
    while (this.head < this.pieces.length && this.pieces[this.head].abs < this.trimmed) this.head++;
    if (this.head === this.pieces.length) {
      this.pieces = [];
      this.head = 0;
    } else if (this.head > 256 && this.head * 2 > this.pieces.length) {
      this.pieces = this.pieces.slice(this.head);
      this.head = 0;
    }
    if (this.next < this.trimmed) this.next = this.trimmed;
  }

  /** A full reset (RIS) replaces the buffers: start over on the new ones. */
  private checkReset(): void {
    const lines = this.internals.normalLines();
    if (lines === this.lines) return;
    this.trimSub.dispose();
    this.lines = lines;
    this.trimSub = this.internals.onNormalTrim((n) => this.onTrim(n));
    this.trimmed = 0;
    this.invalidate();
  }

  /** Appends what the addon leaves out: scroll regions, saved cursors, and the cursor put back after them. */
  private withExtras(serialized: string): string {
    const term = this.term;
    const rows = term.rows;
    const origin = term.modes.originMode;
    const normal = this.internals.extras('normal');
    let out = serialized;
    let moved = false;
    if (term.buffer.active.type === 'alternate') {
      const at = serialized.indexOf(ALT_SWITCH);
      if (at >= 0) {
        // Put the normal buffer's region and saved cursor in place before switching: 1049 saves the
        // cursor and its attributes as leaving the alternate screen will restore them. The addon writes
        // the alternate screen assuming default attributes, so they are reset after the switch.
        const n = term.buffer.normal;
        let before = regionOf(normal, rows);
        if (before || normal.savedRow !== n.cursorY || normal.savedCol !== n.cursorX) before += cup(normal.savedRow, normal.savedCol, term.cols);
        out = serialized.slice(0, at) + before + sgr(normal.savedStyle) + ALT_SWITCH + SGR_RESET + serialized.slice(at + ALT_SWITCH.length);
      }
    }
    const active = this.internals.extras(term.buffer.active.type === 'alternate' ? 'alternate' : 'normal');
    const region = regionOf(active, rows);
    const saved = active.savedRow !== 0 || active.savedCol !== 0 || !isDefault(active.savedStyle);
    if (region || saved) {
      moved = true;
      // With origin mode on, CUP counts from the region's top and cannot leave it: off while placing.
      if (origin) out += '\x1b[?6l';
      out += region;
      if (saved) out += cup(active.savedRow, active.savedCol, term.cols) + sgr(active.savedStyle) + '\x1b7';
      if (origin) out += '\x1b[?6h';
    } else if (origin) moved = true; // the addon's mode list ends with ?6h, which homes the cursor
    if (moved) {
      const cursor = term.buffer.active;
      out += cup(cursor.cursorY - (origin ? active.scrollTop : 0), cursor.cursorX, term.cols) + sgr(this.internals.currentStyle());
    }
    return out;
  }
}

function regionOf(extras: BufferExtras, rows: number): string {
  return extras.scrollTop !== 0 || extras.scrollBottom !== rows - 1 ? `\x1b[${extras.scrollTop + 1};${extras.scrollBottom + 1}r` : '';
}

/** Cursor position (0-based row and column; a pending wrap at the last column cannot be set). */
function cup(row: number, col: number, cols: number): string {
  return `\x1b[${row + 1};${Math.min(col, cols - 1) + 1}H`;
}

function isDefault(s: Style): boolean {
  return sgr(s) === SGR_RESET;
}

/** The SGR sequence that sets exactly these attributes, from defaults. */
export function sgr(s: Style): string {
  const p: (number | string)[] = [0];
  if (s.isBold()) p.push(1);
  if (s.isDim()) p.push(2);
  if (s.isItalic()) p.push(3);
  if (s.isUnderline()) p.push(4);
  if (s.isBlink()) p.push(5);
  if (s.isInverse()) p.push(7);
  if (s.isInvisible()) p.push(8);
  if (s.isStrikethrough()) p.push(9);
  if (s.isOverline()) p.push(53);
  p.push(...colour(s.isFgRGB(), s.isFgPalette(), s.getFgColor(), 30));
  p.push(...colour(s.isBgRGB(), s.isBgPalette(), s.getBgColor(), 40));
  return `\x1b[${p.join(';')}m`;
}

function colour(rgb: boolean, palette: boolean, c: number, base: 30 | 40): number[] {
  if (rgb) return [base + 8, 2, (c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff];
  if (!palette) return [];
  if (c < 8) return [base + c];
  if (c < 16) return [base + 60 + c - 8];
  return [base + 8, 5, c];
}
