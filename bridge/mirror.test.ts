import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { BridgeLog } from './log';
import { Mirror } from './mirror';
import { cells, fed, firstDifference } from './mirrorTesting';

const log: BridgeLog = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (e) => console.error(e) };
const SIZE = { cols: 80, rows: 24, scrollback: 1000 };
const LINE = 'the quick brown fox jumps over the lazy dog 0123456789\r\n';
const mirrors: Mirror[] = [];

function open(holds: boolean[] = []): Mirror {
  const m = new Mirror(SIZE, (on) => holds.push(on), log, 'test');
  mirrors.push(m);
  return m;
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

after(() => {
  for (const m of mirrors) m.dispose();
});

describe('mirror (worker thread)', () => {
  test('a snapshot covers exactly the bytes written before it was asked for', async () => {
    const m = open();
    const first = `\x1b[1;33mhello\x1b[0m\r\n${LINE.repeat(50)}`;
    m.write(Buffer.from(first));
    const s1 = m.snapshot();
    const second = `\x1b[41m${LINE.repeat(2000)}\x1b[0mend`;
    m.write(Buffer.from(second));
    const s2 = m.snapshot();
    const [a, b] = await Promise.all([s1, s2]);
    assert.equal(a.mark, Buffer.byteLength(first));
    assert.equal(b.mark, Buffer.byteLength(first) + Buffer.byteLength(second));
    const check = async (snap: { text: string }, ...data: string[]) => {
      const want = cells(await fed(80, 24, 1000, ...data));
      const got = cells(await fed(80, 24, 1000, '\x1bc' + snap.text));
      assert.equal(firstDifference(got, want), undefined);
    };
    await check(a, first);
    await check(b, first, second);
  });

  test('resizes apply between the bytes written before and after them', async () => {
    const m = open();
    m.write(Buffer.from(`${'w'.repeat(200)}\r\n`));
    m.resize(50, 10);
    m.write(Buffer.from(`${'v'.repeat(120)}\r\n`));
    const snap = await m.snapshot();
    const reference = await fed(80, 24, 1000, `${'w'.repeat(200)}\r\n`);
    reference.resize(50, 10);
    reference.write(`${'v'.repeat(120)}\r\n`);
    await new Promise<void>((r) => reference.write('', r));
    const got = cells(await fed(50, 10, 1000, '\x1bc' + snap.text));
    assert.equal(firstDifference(got, cells(reference)), undefined);
  });

  test('an escape-bearing flood holds the PTY until the worker has caught up; a plain one does not', async () => {
    const escHolds: boolean[] = [];
    const esc = open(escHolds);
    for (let i = 0; i < 200; i++) esc.write(Buffer.from(`\x1b[3${i % 8}m${LINE.repeat(200)}`)); // 2 MiB, written at once
    assert.deepEqual(escHolds, [true], 'held past 1 MiB unparsed');
    await until(() => escHolds.length === 2);
    assert.deepEqual(escHolds, [true, false], 'released once parsed');
    await esc.snapshot();

    const plainHolds: boolean[] = [];
    const plain = open(plainHolds);
    // The same 2 MiB, plain, arriving as a PTY delivers it: a read per event-loop turn.
    for (let i = 0; i < 200; i++) {
      plain.write(Buffer.from(LINE.repeat(200)));
      await new Promise((r) => setTimeout(r, 1));
    }
    const snap = await plain.snapshot();
    assert.deepEqual(plainHolds, [], 'never held: the worker drops most of it unparsed');
    const got = cells(await fed(80, 24, 1000, '\x1bc' + snap.text));
    const want = cells(await fed(80, 24, 1000, LINE.repeat(40_000)));
    assert.equal(firstDifference(got, want), undefined);
  });

  test('after dispose, a snapshot answers at once (empty)', async () => {
    const m = open();
    m.write(Buffer.from('bye'));
    m.dispose();
    assert.deepEqual(await m.snapshot(), { text: '', mark: 3 });
  });
});
