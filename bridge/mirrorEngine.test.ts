import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MirrorEngine, type MirrorProgress } from './mirrorEngine';
import { charBoundary, scanChunk } from './mirrorScan';
import { cells, fed, firstDifference, random } from './mirrorTesting';

const enc = (s: string) => new TextEncoder().encode(s);
const SIZE = { cols: 60, rows: 15, scrollback: 400 };

/** An engine fed `chunks` (over several event-loop turns when `spread`), and its snapshot when done. */
async function mirrored(chunks: (string | Uint8Array)[], opts: { spread?: boolean; size?: typeof SIZE } = {}) {
  const size = opts.size ?? SIZE;
  const progress: MirrorProgress[] = [];
  let snapshot: ((text: string) => void) | undefined;
  const engine = new MirrorEngine(size, (p) => progress.push(p), (_id, text) => snapshot?.(text));
  let i = 0;
  for (const c of chunks) {
    engine.write(typeof c === 'string' ? enc(c) : c);
    if (opts.spread && ++i % 4 === 0) await new Promise((r) => setImmediate(r));
  }
  const text = await new Promise<string>((resolve) => {
    snapshot = resolve;
    engine.snapshot(1);
  });
  const reference = await fed(size.cols, size.rows, size.scrollback, ...chunks);
  const total = chunks.reduce((n, c) => n + c.length, 0);
  return { engine, text, reference, progress, total };
}

/** The mirror equals a terminal that parsed every byte, and so does a terminal repainted from its snapshot. */
async function assertExact(m: Awaited<ReturnType<typeof mirrored>>): Promise<void> {
  const want = cells(m.reference);
  assert.equal(firstDifference(cells(m.engine.term), want), undefined, 'mirror vs parsing everything');
  const repainted = await fed(m.reference.cols, m.reference.rows, SIZE.scrollback, '\x1bc' + m.text);
  assert.equal(firstDifference(cells(repainted), want), undefined, 'snapshot vs parsing everything');
}

const LINE = 'the quick brown fox jumps over the lazy dog 0123456789\r\n';

describe('mirror engine: dropping plain floods unparsed, losslessly', () => {
  test('a `yes` flood: most of it is dropped, and the screen and scrollback are what parsing it all gives', async () => {
    const chunks = ['$ yes\r\n'];
    for (let i = 0; i < 300; i++) chunks.push(`${i} ${LINE.repeat(40)}`);
    chunks.push('^C\r\n$ ');
    const m = await mirrored(chunks);
    assert.ok(m.engine.skipped > m.total * 0.8, `dropped ${m.engine.skipped} of ${m.total}`);
    await assertExact(m);
    m.engine.dispose();
  });

  test('a flood of one endless line (no line feeds): whole rows of it are dropped, the cursor column kept', async () => {
    const chunks = ['$ head -c 1000000 /dev/zero | tr "\\0" x\r\n'];
    for (let i = 0; i < 400; i++) chunks.push('x'.repeat(2477)); // not a multiple of the width
    chunks.push('\r\n$ ');
    const m = await mirrored(chunks);
    assert.ok(m.engine.skipped > m.total * 0.6, `dropped ${m.engine.skipped} of ${m.total}`);
    await assertExact(m);
    m.engine.dispose();
  });

  test('bare line feeds (no CR) in a long-line flood: the cursor column is kept exactly', async () => {
    // A line feed keeps the column, so dropping must not move the cursor off its column — nor off
    // column 0, which whole rows of text leave at the far edge instead.
    const chunks = ['$ run\r\n'];
    for (let i = 0; i < 300; i++) chunks.push('x'.repeat(1800) + '\n' + 'z'.repeat(677));
    const m = await mirrored(chunks);
    assert.ok(m.engine.skipped > m.total * 0.5, `dropped ${m.engine.skipped} of ${m.total}`);
    await assertExact(m);
    m.engine.dispose();
  });

  test('arriving over time (parsing deferred while it arrives), cut anywhere, even inside UTF-8 characters', async () => {
    const text = enc(`héllo wörld ✓ 中文字 ${'ä'.repeat(30)}\r\n`.repeat(2000));
    const chunks: Uint8Array[] = [];
    for (let at = 0, k = 0; at < text.length; k++) {
      const n = 997 + ((k * 7919) % 4093);
      chunks.push(text.subarray(at, at + n));
      at += n;
    }
    const m = await mirrored(chunks, { spread: true });
    assert.ok(m.engine.skipped > 0);
    await assertExact(m);
    m.engine.dispose();
  });

  test('a flood with escape sequences (colours) is never dropped: all of it is parsed', async () => {
    const chunks: string[] = [];
    for (let i = 0; i < 200; i++) chunks.push(`\x1b[3${i % 8}m${i}\x1b[0m ${LINE.repeat(40)}`);
    const m = await mirrored(chunks);
    assert.equal(m.engine.skipped, 0);
    assert.ok(m.progress.some((p) => !p.plain), 'reported as not droppable (the PTY is held)');
    await assertExact(m);
    m.engine.dispose();
  });

  for (const [what, setup] of [
    ['a scroll region', '\x1b[3;10r'],
    ['the alternate screen', '\x1b[?1049h'],
    ['reverse wraparound', '\x1b[?45h'],
    ['an unterminated escape sequence', '\x1b]0;title without its terminator '],
  ] as const) {
    test(`plain text is not dropped with ${what}: there it can have lasting effects`, async () => {
      const chunks: string[] = [setup];
      for (let i = 0; i < 150; i++) chunks.push(`${i} ${LINE.repeat(40)}`);
      const m = await mirrored(chunks);
      assert.equal(m.engine.skipped, 0);
      await assertExact(m);
      m.engine.dispose();
    });
  }

  test('snapshots cover exactly what was written before they were asked for, resizes included', async () => {
    const engine = new MirrorEngine(SIZE, () => undefined, (id, text) => answers.set(id, text));
    const answers = new Map<number, string>();
    const parts = [`\x1b[32m${'first '.repeat(50)}\x1b[0m\r\n`, LINE.repeat(900), '\x1b[1mbold tail', LINE.repeat(300)];
    engine.write(enc(parts[0]));
    engine.snapshot(1);
    engine.write(enc(parts[1]));
    engine.write(enc(parts[2]));
    engine.snapshot(2);
    engine.resize(41, 11);
    engine.write(enc(parts[3]));
    engine.snapshot(3);
    while (answers.size < 3) await new Promise((r) => setImmediate(r));
    const expect = async (id: number, cols: number, rows: number, ...data: string[]) => {
      const reference = await fed(cols, rows, SIZE.scrollback, ...data);
      const repainted = await fed(cols, rows, SIZE.scrollback, '\x1bc' + answers.get(id));
      assert.equal(firstDifference(cells(repainted), cells(reference)), undefined, `snapshot ${id}`);
    };
    await expect(1, 60, 15, parts[0]);
    await expect(2, 60, 15, parts[0], parts[1], parts[2]);
    const reference = await fed(60, 15, SIZE.scrollback, parts[0], parts[1], parts[2]);
    reference.resize(41, 11);
    reference.write(parts[3]);
    await new Promise<void>((r) => reference.write('', r));
    const repainted = await fed(41, 11, SIZE.scrollback, '\x1bc' + answers.get(3));
    assert.equal(firstDifference(cells(repainted), cells(reference)), undefined, 'snapshot 3');
    engine.dispose();
  });

  test('random plain and escape-bearing chunks, cut anywhere: always exact', async () => {
    for (let seed = 1; seed <= 6; seed++) {
      const rnd = random(seed);
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < 120; i++) {
        const k = rnd();
        const s =
          k < 0.5
            ? LINE.repeat(1 + Math.floor(rnd() * 60))
            : k < 0.7
              ? 'y'.repeat(Math.floor(rnd() * 5000))
              : k < 0.8
                ? `\x1b[4${Math.floor(rnd() * 8)}m tinted \x1b[0m\r\n`
                : k < 0.9
                  ? `${'é✓'.repeat(Math.floor(rnd() * 300))}\r\n`
                  : '\x1b[2;9r\x1b[5;1Hin a region\r\n\x1b[r';
        const bytes = enc(s);
        const cut = Math.floor(rnd() * bytes.length);
        chunks.push(bytes.subarray(0, cut), bytes.subarray(cut));
      }
      const m = await mirrored(chunks, { spread: seed % 2 === 0, size: { cols: 37, rows: 9, scrollback: 120 } });
      const want = cells(m.reference);
      assert.equal(firstDifference(cells(m.engine.term), want), undefined, `seed ${seed}`);
      m.engine.dispose();
    }
  });
});

describe('mirror scan', () => {
  test('plain text is printable characters, CR, LF, TAB, BS and BEL; not ESC, other controls, DEL or C1', () => {
    assert.ok(scanChunk(enc('a b\tc\bd\x07\r\né✓中'), 80).plain);
    for (const s of ['\x1b[0m', 'a\x00', 'a\x0e', 'a\x7f', 'a\x0b', 'a\x0c']) assert.ok(!scanChunk(enc(s), 80).plain, JSON.stringify(s));
    assert.ok(!scanChunk(new Uint8Array([0x61, 0xc2, 0x9b, 0x33, 0x4a]), 80).plain, 'C1 CSI (U+009B)');
    assert.ok(!scanChunk(new Uint8Array([0x61, 0xc2, 0x85]), 80).plain, 'C1 NEL (U+0085)');
    assert.ok(scanChunk(new Uint8Array([0x61, 0xc2, 0xa9]), 80).plain, '©');
    assert.ok(!scanChunk(new Uint8Array([0xa9, 0x61]), 80).plain, 'starts inside a character');
  });

  test('counts line feeds and the wraps runs of printable ASCII certainly make', () => {
    const info = scanChunk(enc(`${'x'.repeat(25)}\n${'y'.repeat(10)}\r${'z'.repeat(21)}\n`), 10);
    assert.equal(info.lfs, 2);
    assert.equal(info.wraps, 2 + 0 + 2);
    assert.equal(info.hasCr, true);
    assert.equal(info.lfsAfterCr, 1);
    assert.equal(info.wrapsAfterCr, 2);
    assert.equal(info.asciiPrefix, 25);
  });

  test('a chunk ends on a whole UTF-8 character', () => {
    const check = enc('ab✓');
    assert.equal(charBoundary(check), 5);
    assert.equal(charBoundary(check.subarray(0, 4)), 2);
    assert.equal(charBoundary(check.subarray(0, 3)), 2);
    assert.equal(charBoundary(enc('abc')), 3);
  });
});
