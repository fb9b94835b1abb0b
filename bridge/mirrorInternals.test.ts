import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { PINNED_XTERM_HEADLESS, xtermInternals } from './mirrorInternals';
import { parsed, terminal } from './mirrorTesting';

// The mirror reads private parts of @xterm/headless (mirrorInternals.ts). Each test here fails when
// one of them moves or changes meaning in another version.

test(`@xterm/headless is the version the mirror's private accessors were checked against (${PINNED_XTERM_HEADLESS})`, () => {
  const installed = (JSON.parse(readFileSync(require.resolve('@xterm/headless/package.json'), 'utf8')) as { version: string }).version;
  assert.equal(installed, PINNED_XTERM_HEADLESS, 're-check bridge/mirrorInternals.ts against the new version (these tests), then update PINNED_XTERM_HEADLESS');
});

test('trims of the normal buffer are reported: a full scrollback, ED3; a full reset replaces the line list', async () => {
  const term = terminal(20, 5, 10);
  const x = xtermInternals(term);
  const trims: number[] = [];
  const sub = x.onNormalTrim((n) => trims.push(n));
  const lines = x.normalLines();
  term.write('line\r\n'.repeat(15)); // 16 lines into a buffer of 15
  await parsed(term);
  assert.equal(term.buffer.normal.length, 15);
  assert.equal(trims.reduce((a, b) => a + b, 0), 1);
  term.write('\x1b[3J');
  await parsed(term);
  assert.equal(trims.at(-1), 10, 'ED3 trims the whole scrollback');
  assert.equal(x.normalLines(), lines);
  term.write('\x1bc');
  await parsed(term);
  assert.notEqual(x.normalLines(), lines, 'RIS makes new buffers');
  sub.dispose();
});

test("each buffer's scroll region and saved cursor, and the current attributes, are read", async () => {
  const term = terminal(30, 10, 10);
  const x = xtermInternals(term);
  assert.deepEqual({ ...x.extras('normal'), savedStyle: undefined }, { scrollTop: 0, scrollBottom: 9, savedRow: 0, savedCol: 0, savedStyle: undefined });
  term.write('\x1b[3;8r\x1b[4;6H\x1b[1;32m\x1b7\x1b[0;4;41m');
  await parsed(term);
  const normal = x.extras('normal');
  assert.equal(normal.scrollTop, 2);
  assert.equal(normal.scrollBottom, 7);
  assert.equal(normal.savedRow, 3);
  assert.equal(normal.savedCol, 5);
  assert.ok(normal.savedStyle.isBold() && normal.savedStyle.isFgPalette() && normal.savedStyle.getFgColor() === 2);
  const now = x.currentStyle();
  assert.ok(now.isUnderline() && !now.isBold() && now.isBgPalette() && now.getBgColor() === 1);
  term.write('\x1b[?1049h\x1b[2;5r\x1b[3;3H\x1b7');
  await parsed(term);
  assert.deepEqual([x.extras('alternate').scrollTop, x.extras('alternate').scrollBottom, x.extras('alternate').savedRow], [1, 4, 2]);
  assert.equal(x.extras('normal').scrollTop, 2, 'the normal buffer keeps its own');
});

test('the parser is at rest only between sequences and whole UTF-8 characters; writeSync parses at once', () => {
  const term = terminal(30, 10, 10);
  const x = xtermInternals(term);
  assert.ok(x.atRest());
  x.writeSync(new Uint8Array([0x1b, 0x5b, 0x33])); // ESC [ 3
  assert.ok(!x.atRest(), 'inside a CSI sequence');
  x.writeSync(new Uint8Array([0x31, 0x6d, 0x41])); // 1 m A
  assert.ok(x.atRest());
  assert.equal(term.buffer.active.getLine(0)?.translateToString(true), 'A', 'parsed synchronously');
  x.writeSync(new Uint8Array([0xe2, 0x9c])); // the first two bytes of ✓
  assert.ok(!x.atRest(), 'inside a UTF-8 character');
  x.writeSync(new Uint8Array([0x93]));
  assert.ok(x.atRest());
  assert.equal(term.buffer.active.getLine(0)?.translateToString(true), 'A✓');
});
