/**
 * Helpers for the mirror's tests: terminals compared cell by cell (characters, widths, colours,
 * attributes, wrapped rows), cursor and buffer included. Not part of the bridge.
 */
import { Terminal } from '@xterm/headless';

export function terminal(cols: number, rows: number, scrollback: number): Terminal {
  return new Terminal({ cols, rows, scrollback, allowProposedApi: true, logLevel: 'off' });
}

export function parsed(term: Terminal): Promise<void> {
  return new Promise((resolve) => term.write('', resolve));
}

export async function fed(cols: number, rows: number, scrollback: number, ...data: (string | Uint8Array)[]): Promise<Terminal> {
  const term = terminal(cols, rows, scrollback);
  for (const d of data) term.write(d);
  await parsed(term);
  return term;
}

/**
 * Every cell of both buffers, one string per row, plus the cursor. A buffer's first row is never
 * reported as wrapped: no serialization can recreate that (its first rows were trimmed).
 */
export function cells(term: Terminal): string[] {
  const out: string[] = [];
  const active = term.buffer.active;
  out.push(`${active.type} buffer, cursor ${active.cursorX},${active.cursorY}, ${term.buffer.normal.length} lines`);
  const buffers = active.type === 'alternate' ? [term.buffer.normal, term.buffer.alternate] : [term.buffer.normal];
  for (const buffer of buffers) {
    const cell = buffer.getNullCell();
    for (let y = 0; y < buffer.length; y++) {
      const line = buffer.getLine(y)!;
      let row = `${buffer.type[0]}${y}${y > 0 && line.isWrapped ? '+' : ' '}`;
      for (let x = 0; x < line.length; x++) {
        const c = line.getCell(x, cell)!;
        const flags = [c.isBold(), c.isDim(), c.isItalic(), c.isUnderline(), c.isBlink(), c.isInverse(), c.isInvisible(), c.isStrikethrough(), c.isOverline()]
          .map((f) => (f ? 1 : 0))
          .join('');
        // An empty cell's foreground shows nowhere (unless inverse); serializers do not keep it.
        const fg = c.getChars() || c.isInverse() ? colour(c.getFgColorMode(), c.getFgColor()) : '-';
        row += `|${c.getChars() || '_'}${c.getWidth()} ${fg} ${colour(c.getBgColorMode(), c.getBgColor())} ${flags}`;
      }
      out.push(row);
    }
  }
  return out;
}

/** Palette colours 0–15 look the same set as 16-colour (SGR 31) or 256-colour (SGR 38;5;1) ones. */
function colour(mode: number, value: number): string {
  const m = mode >>> 24;
  return `${m === 2 && value < 16 ? 1 : m}:${value}`;
}

/** Where two cell dumps first differ (row and cell); undefined when they are the same. */
export function firstDifference(a: string[], b: string[]): string | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    const ca = a[i]?.split('|') ?? [];
    const cb = b[i]?.split('|') ?? [];
    let x = 0;
    while (x < Math.max(ca.length, cb.length) && ca[x] === cb[x]) x++;
    return `dump line ${i} (${ca[0] ?? cb[0]}), cell ${x - 1}: ${JSON.stringify(ca[x])} vs ${JSON.stringify(cb[x])}`;
  }
  return undefined;
}

/** A fixed pseudo-random sequence (tests stay reproducible). */
export function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}
