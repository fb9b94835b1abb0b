/**
 * The few private parts of @xterm/headless the mirror reads, in one place.
 *
 * Pinned to @xterm/headless 6.0.0 (package.json has `^6.0.0`; these are not API and may change in any
 * release). `mirrorInternals.test.ts` exercises every accessor against the installed version and fails
 * when a field moves or means something else; `xtermInternals()` also refuses a terminal whose shape
 * does not match, so a changed xterm degrades to an error at session start instead of wrong screens.
 *
 * Why each is needed (no public API exposes it):
 * - the normal buffer's line list and its trim event: a cached scrollback line is addressed by its
 *   position, and trims (a full scrollback, ED3) shift every position;
 * - each buffer's scroll region (DECSTBM) and saved cursor (DECSC): a snapshot restores them;
 * - the current SGR attributes: a snapshot ends with them, as the serialize addon does;
 * - the parser's and the UTF-8 decoder's state: skipping queued output is only sound between
 *   sequences and characters;
 * - `writeSync`: the mirror runs in a worker of its own and parses synchronously, one chunk per turn
 *   of its event loop (the public `write` waits a timer turn before every idle write).
 */
import type { Terminal } from '@xterm/headless';

export const PINNED_XTERM_HEADLESS = '6.0.0';

/** The colour and flag accessors of xterm's AttributeData; IBufferCell has the same ones. */
export interface Style {
  isInverse(): number;
  isBold(): number;
  isUnderline(): number;
  isBlink(): number;
  isInvisible(): number;
  isItalic(): number;
  isDim(): number;
  isStrikethrough(): number;
  isOverline(): number;
  isFgRGB(): boolean;
  isBgRGB(): boolean;
  isFgPalette(): boolean;
  isBgPalette(): boolean;
  isFgDefault(): boolean;
  isBgDefault(): boolean;
  getFgColor(): number;
  getBgColor(): number;
}

interface Emitted<T> {
  (listener: (value: T) => void): { dispose(): void };
}

interface PrivateBuffer {
  lines: { onTrim: Emitted<number>; length: number };
  scrollTop: number;
  scrollBottom: number;
  savedX: number;
  savedY: number;
  savedCurAttrData: Style;
  x: number;
  y: number;
  ybase: number;
}

interface PrivateCore {
  buffers: { normal: PrivateBuffer; alt: PrivateBuffer; active: PrivateBuffer };
  writeSync(data: Uint8Array | string): void;
  _inputHandler: {
    _curAttrData: Style;
    _parser: { currentState: number };
    _utf8Decoder: { interim: Uint8Array };
  };
}

/** A buffer's state that the serialize addon leaves out. Rows are 0-based, relative to the screen. */
export interface BufferExtras {
  scrollTop: number;
  scrollBottom: number;
  /** Where ESC 8 would put the cursor now (xterm keeps the saved row as a buffer line). */
  savedRow: number;
  savedCol: number;
  savedStyle: Style;
}

export interface XtermInternals {
  /** The normal buffer's line list object: replaced on a full reset (RIS). */
  normalLines(): object;
  /** Fires with the number of lines dropped from the top of the normal buffer. */
  onNormalTrim(listener: (count: number) => void): { dispose(): void };
  extras(which: 'normal' | 'alternate'): BufferExtras;
  currentStyle(): Style;
  /** The parser is between sequences (GROUND) and no partial UTF-8 character is pending. */
  atRest(): boolean;
  /** Parses now, synchronously. */
  writeSync(data: Uint8Array): void;
}

const GROUND = 0;

export function xtermInternals(term: Terminal): XtermInternals {
  const core = (term as unknown as { _core?: PrivateCore })._core;
  const shapeOk =
    !!core &&
    typeof core.writeSync === 'function' &&
    typeof core.buffers?.normal?.lines?.onTrim === 'function' &&
    typeof core.buffers.normal.scrollTop === 'number' &&
    typeof core.buffers.normal.savedY === 'number' &&
    typeof core.buffers.normal.savedCurAttrData?.isBold === 'function' &&
    typeof core._inputHandler?._curAttrData?.isBold === 'function' &&
    typeof core._inputHandler._parser?.currentState === 'number' &&
    core._inputHandler._utf8Decoder?.interim instanceof Uint8Array;
  if (!core || !shapeOk) throw new Error(`@xterm/headless internals differ from ${PINNED_XTERM_HEADLESS}, which the terminal mirror was written against`);
  const buffer = (which: 'normal' | 'alternate') => (which === 'normal' ? core.buffers.normal : core.buffers.alt);
  return {
    normalLines: () => core.buffers.normal.lines,
    onNormalTrim: (listener) => core.buffers.normal.lines.onTrim(listener),
    extras: (which) => {
      const b = buffer(which);
      return {
        scrollTop: b.scrollTop,
        scrollBottom: b.scrollBottom,
        savedRow: Math.max(b.savedY - b.ybase, 0),
        savedCol: b.savedX,
        savedStyle: b.savedCurAttrData,
      };
    },
    currentStyle: () => core._inputHandler._curAttrData,
    atRest: () => core._inputHandler._parser.currentState === GROUND && core._inputHandler._utf8Decoder.interim[0] === 0,
    writeSync: (data) => core.writeSync(data),
  };
}
