/**
 * What a chunk of PTY output can do to a terminal, found by one pass over its bytes: whether it is
 * plain text (so the mirror may skip it, see mirrorEngine.ts) and how many lines it certainly advances
 * the cursor by. Chunks are cut at UTF-8 character boundaries (`charBoundary`), so a character never
 * spans two of them.
 */

import { isAscii } from 'node:buffer';

/** Byte classes. */
const BAD = 0; // ESC, other C0 controls, DEL: may do anything
const PRINT = 1; // printable ASCII: one cell each
const LF = 2;
const CR = 3;
const HARMLESS = 4; // TAB, BS, BEL: move within the line or do nothing
const HIGH = 5; // part of a UTF-8 character

const CLASS = new Uint8Array(256);
for (let b = 0x20; b < 0x7f; b++) CLASS[b] = PRINT;
for (let b = 0x80; b < 0x100; b++) CLASS[b] = HIGH;
CLASS[0x0a] = LF;
CLASS[0x0d] = CR;
CLASS[0x09] = CLASS[0x08] = CLASS[0x07] = HARMLESS;

export interface ChunkInfo {
  /** Only text, CR, LF, TAB, BS and BEL: no escape, no other C0 control, no C1 control (U+0080–U+009F). */
  plain: boolean;
  /** Length of its leading run of printable ASCII. */
  asciiPrefix: number;
  /** Line feeds. */
  lfs: number;
  /** Wraps its runs of printable ASCII certainly cause at `cols` (with autowrap on), wherever they start. */
  wraps: number;
  hasCr: boolean;
  /** Line feeds and wraps after its first CR. */
  lfsAfterCr: number;
  wrapsAfterCr: number;
}

const CONTROLS = [...Array.from({ length: 0x20 }, (_, i) => i), 0x7f];

export function scanChunk(bytes: Uint8Array, cols: number): ChunkInfo {
  const info: ChunkInfo = { plain: true, asciiPrefix: bytes.length, lfs: 0, wraps: 0, hasCr: false, lfsAfterCr: 0, wrapsAfterCr: 0 };
  const n = bytes.length;
  // The common flood, one endless line of printable ASCII, with native scans (SIMD, memchr): several
  // times faster than looking at each byte here.
  if (n > 0 && typeof isAscii === 'function' && isAscii(bytes)) {
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, n);
    if (CONTROLS.every((c) => view.indexOf(c) < 0)) {
      info.wraps = ((n - 1) / cols) | 0;
      return info;
    }
  }
  let run = 0;
  const endRun = () => {
    // A run of r one-cell characters starting at any column wraps at least floor((r - 1) / cols) times.
    const w = ((run - 1) / cols) | 0;
    info.wraps += w;
    if (info.hasCr) info.wrapsAfterCr += w;
    run = 0;
  };
  /** One byte that is not known to be printable ASCII; false when the chunk is not plain. */
  const byte = (i: number): boolean => {
    const b = bytes[i];
    const c = CLASS[b];
    if (c === PRINT) {
      run++;
      return true;
    }
    if (run > 0) endRun();
    if (info.asciiPrefix === n) info.asciiPrefix = i;
    if (c === LF) {
      info.lfs++;
      if (info.hasCr) info.lfsAfterCr++;
    } else if (c === CR) info.hasCr = true;
    else if (c === BAD || (c === HIGH && ((b === 0xc2 && i + 1 < n && bytes[i + 1] >= 0x80 && bytes[i + 1] <= 0x9f) || (i === 0 && b < 0xc0)))) {
      // A C1 control is U+0080–U+009F, in UTF-8 C2 80 – C2 9F; a chunk starting inside a character is
      // not text either.
      info.plain = false;
      return false;
    }
    return true;
  };
  // Four bytes at a time where they are all printable ASCII (0x20–0x7e): no byte below 0x20, none
  // with the high bit, none equal to 0x7f (the usual has-less / has-zero bit tricks, per byte lane).
  const lead = Math.min(n, (4 - (bytes.byteOffset & 3)) & 3);
  const words = n - lead >= 4 ? new Uint32Array(bytes.buffer, bytes.byteOffset + lead, (n - lead) >> 2) : new Uint32Array(0);
  for (let i = 0; i < lead; i++) if (!byte(i)) return info;
  for (let w = 0; w < words.length; w++) {
    const x = words[w];
    const y = x ^ 0x7f7f7f7f;
    if (((((x - 0x20202020) & ~x) | x | ((y - 0x01010101) & ~y)) & 0x80808080) === 0) run += 4;
    else for (let i = lead + w * 4, e = i + 4; i < e; i++) if (!byte(i)) return info;
  }
  for (let i = lead + words.length * 4; i < n; i++) if (!byte(i)) return info;
  if (run > 0) endRun();
  return info;
}

/** The length of `bytes` without a UTF-8 character cut off at its end (0–3 bytes shorter). */
export function charBoundary(bytes: Uint8Array, end = bytes.length): number {
  for (let i = end - 1; i >= 0 && i >= end - 3; i--) {
    const b = bytes[i];
    if (b < 0x80) return end;
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return end - i >= need ? end : i;
    }
  }
  return end;
}
