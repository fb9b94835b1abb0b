import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SerializeAddon } from '@xterm/addon-serialize';
import type { Terminal } from '@xterm/headless';
import { xtermInternals } from './mirrorInternals';
import { SnapshotWriter } from './mirrorSnapshot';
import { cells, fed, firstDifference, parsed, random, terminal } from './mirrorTesting';

const RESET = '\x1bc';

function mirror(cols: number, rows: number, scrollback: number) {
  const term = terminal(cols, rows, scrollback);
  const serializer = new SerializeAddon();
  term.loadAddon(serializer);
  const writer = new SnapshotWriter(term, serializer, xtermInternals(term));
  return {
    term,
    writer,
    full: () => serializer.serialize({ scrollback }),
    /** Writes, then lets the idle-time cache catch up, as the mirror does between outputs. */
    async write(...data: string[]) {
      for (const d of data) {
        term.write(d);
        await parsed(term);
        while (writer.fill(50));
      }
    },
  };
}

async function repaint(term: Terminal, snapshot: string, scrollback: number): Promise<string[]> {
  return cells(await fed(term.cols, term.rows, scrollback, RESET + snapshot));
}

/** The cached snapshot repaints as the full serialize does, cell by cell; and the cache was used. */
async function assertSameAsFull(m: ReturnType<typeof mirror>, scrollback: number, minCached = 1): Promise<void> {
  const cached = m.writer.snapshot();
  assert.ok(m.writer.cachedLines >= minCached, `only ${m.writer.cachedLines} lines were cached`);
  const viaCache = await repaint(m.term, cached, scrollback);
  const viaFull = await repaint(m.term, m.full(), scrollback);
  assert.equal(firstDifference(viaCache, viaFull), undefined);
  // And both are the mirror itself.
  assert.equal(firstDifference(viaCache, cells(m.term)), undefined);
}

function colouredLines(n: number, from = 0): string {
  let s = '';
  for (let i = from; i < from + n; i++) {
    const style = [`3${i % 8}`, `1;3${i % 8}`, `4;38;5;${i % 256}`, `38;2;${i % 256};100;200`, `7`, `2;3`][i % 6];
    s += `\x1b[${style}m${String(i).padStart(6, '0')}\x1b[0m the quick brown fox jumps over the lazy dog\r\n`;
  }
  return s;
}

describe('mirror snapshots (cached scrollback)', () => {
  test('coloured scrollback, more lines than the buffer keeps, repaints as a full serialize', async () => {
    const m = mirror(100, 30, 1000);
    await m.write(colouredLines(800), colouredLines(700, 800));
    assert.equal(m.term.buffer.normal.length, 1030, 'the buffer is full and has been trimming');
    await assertSameAsFull(m, 1000, 900);
  });

  test('wrapped lines (long, wide characters at the edge, exactly the width) repaint as a full serialize', async () => {
    const m = mirror(40, 10, 200);
    const rnd = random(7);
    let s = '';
    for (let i = 0; i < 120; i++) {
      const k = i % 6;
      if (k === 0) s += `\x1b[32m${'long line '.repeat(9)}\x1b[0m\r\n`;
      else if (k === 1) s += `${'x'.repeat(39)}中文 wraps a wide character\r\n`;
      else if (k === 2) s += `${'y'.repeat(40)}\r\n`; // exactly the width
      else if (k === 3) s += `\x1b[1;34m${'z'.repeat(Math.floor(rnd() * 120))}\x1b[0m\r\n`;
      else if (k === 4) s += '\r\n';
      else s += `${'é'.repeat(50)} ✓\r\n`;
    }
    await m.write(s);
    await assertSameAsFull(m, 200, 100);
  });

  test('after a resize (reflow) the cache is rebuilt and the snapshot still repaints as a full serialize', async () => {
    const m = mirror(60, 12, 300);
    await m.write(colouredLines(200), `\x1b[35m${'w'.repeat(150)}\x1b[0m\r\n`.repeat(5));
    assert.ok(m.writer.cachedLines > 100);
    m.term.resize(37, 9);
    m.writer.invalidate(); // what the engine does with every resize
    assert.equal(m.writer.cachedLines, 0);
    await assertSameAsFull(m, 300, 0); // nothing cached yet: the snapshot caches as it goes
    await m.write(colouredLines(50, 200));
    await assertSameAsFull(m, 300, 100);
    m.term.resize(90, 14);
    m.writer.invalidate();
    await m.write('after\r\n');
    await assertSameAsFull(m, 300, 100);
  });

  test('after clear (ED2 + ED3) the cached scrollback is gone, as in the mirror', async () => {
    const m = mirror(80, 24, 500);
    await m.write(colouredLines(400));
    assert.ok(m.writer.cachedLines > 300);
    await m.write('\x1b[H\x1b[2J\x1b[3J', 'fresh screen\r\n');
    assert.equal(m.writer.cachedLines, 0);
    assert.equal(m.term.buffer.normal.length, 24);
    await assertSameAsFull(m, 500, 0);
    await m.write(colouredLines(60, 1000));
    await assertSameAsFull(m, 500, 30);
    const viaCache = await repaint(m.term, m.writer.snapshot(), 500);
    assert.ok(!viaCache.some((row) => row.includes('|0|1 ') && row.includes('0000')), 'no line from before the clear');
  });

  test('after a full reset (ESC c) the cache starts over on the new buffer', async () => {
    const m = mirror(50, 10, 100);
    await m.write(colouredLines(150));
    await m.write('\x1bc', colouredLines(40, 500));
    await assertSameAsFull(m, 100, 20);
  });

  test('backgrounds: the cached snapshot repaints the mirror exactly (where a full serialize can be off by one row)', async () => {
    // Coloured backgrounds, erase-to-end-of-line with a background, backgrounds carried over line
    // ends (xterm erases scrolled-in lines with the current background), wide characters, wraps.
    for (let seed = 1; seed <= 12; seed++) {
      const rnd = random(seed);
      const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
      let s = '';
      for (let i = 0; i < 2500; i++) {
        const k = rnd();
        if (k < 0.25) s += `\x1b[3${Math.floor(rnd() * 8)}m`;
        else if (k < 0.37) s += `\x1b[4${Math.floor(rnd() * 8)}m`;
        else if (k < 0.42) s += '\x1b[0m';
        else if (k < 0.47) s += '\x1b[K';
        else if (k < 0.58) s += '\r\n';
        else if (k < 0.61) s += '中文';
        else if (k < 0.63) s += '\x1b[1;7m';
        else s += pick(['hello ', 'x'.repeat(Math.floor(rnd() * 60)), 'abc', ' ', '   end']);
      }
      const m = mirror(40, 10, 200);
      for (let i = 0; i < s.length; i += 700) await m.write(s.slice(i, i + 700));
      const viaCache = await repaint(m.term, m.writer.snapshot(), 200);
      assert.ok(m.writer.cachedLines > 150);
      assert.equal(firstDifference(viaCache, cells(m.term)), undefined, `seed ${seed}`);
    }
  });
});

describe('mirror snapshots restore what the serialize addon leaves out', () => {
  /** Feeds `more` to the mirror and to a terminal repainted from `snapshot`; returns both screens. */
  async function continued(term: Terminal, snapshot: string, more: string): Promise<[string[], string[]]> {
    const repainted = await fed(term.cols, term.rows, 100, RESET + snapshot, more);
    term.write(more);
    await parsed(term);
    return [cells(repainted), cells(term)];
  }

  // A full-screen program: a scroll region below a header, the cursor saved in it with attributes.
  const program = '\x1b[H\x1b[2J\x1b[7m header \x1b[0m\x1b[3;18r\x1b[5;7H\x1b[1;31mX\x1b7\x1b[0m\x1b[12;4H\x1b[4mtyping';
  // What it does next: scroll its region, then restore the saved cursor and write there.
  const next = '\x1b[18;1H\r\nscrolled\r\n\x1b8Y\x1b[Hhead';

  test('scroll region (DECSTBM) and saved cursor (DECSC) are restored, then the cursor and its attributes', async () => {
    const m = mirror(60, 20, 100);
    await m.write('some output\r\n'.repeat(30), program);
    const snapshot = m.writer.snapshot();
    const repainted = await fed(60, 20, 100, RESET + snapshot);
    assert.equal(firstDifference(cells(repainted), cells(m.term)), undefined, 'same screen and cursor');
    const [after, expected] = await continued(m.term, snapshot, next);
    assert.equal(firstDifference(after, expected), undefined);
    // The same continuation after the addon's own serialize shows why: the region and saved cursor are lost.
    const m2 = mirror(60, 20, 100);
    await m2.write('some output\r\n'.repeat(30), program);
    const [lost, expected2] = await continued(m2.term, m2.full(), next);
    assert.notEqual(firstDifference(lost, expected2), undefined);
  });

  test('in the alternate screen, with origin mode, both buffers keep their region and saved cursor', async () => {
    const m = mirror(50, 16, 100);
    // The shell saves its cursor (DECSC) in the normal buffer; the program switches (1049 saves it
    // too), sets a region and origin mode, saves its own cursor, and leaves it elsewhere.
    await m.write('$ prompt\r\n$ vim\r\n', '\x1b[32m\x1b7\x1b[0m', '\x1b[?1049h\x1b[2;12r\x1b[?6h\x1b[3;5H\x1b[33mS\x1b7\x1b[0m\x1b[6;2Hcursor');
    const snapshot = m.writer.snapshot();
    const [after, expected] = await continued(m.term, snapshot, '\x1b[11;1H\r\nscroll\x1b8Z\x1b[?6l\x1b[r\x1b[?1049l\x1b8back');
    assert.equal(firstDifference(after, expected), undefined);
  });

  test('an unusual state costs nothing when absent: a plain screen snapshot is the addon\'s output', async () => {
    const m = mirror(50, 10, 100);
    await m.write('$ ls\r\nfile\r\n$ ');
    assert.equal(m.writer.snapshot(), m.full());
  });
});
