/**
 * Which keys the agent gets and which VS Code gets, as measured in a VS Code webview
 * (shared/docs/webview-terminal.md → "Key table"). In short: the terminal owns every key xterm
 * has an encoding for (Ctrl+C, Ctrl+D, Esc, Shift+Tab, Ctrl+R, arrows, Alt+letters…), except
 *   - copy: Ctrl+C (Cmd+C on macOS) while text is selected, and Ctrl+Shift+C: copies the selection;
 *   - paste: Ctrl+V / Ctrl+Shift+V (Cmd+V on macOS): the browser pastes, xterm brackets it;
 *   - VS Code's own navigation keys, which xterm would otherwise turn into bytes and swallow:
 *     F1, Ctrl+Shift+P, Ctrl+P, Ctrl+W, Ctrl+Tab, Ctrl+Shift+Tab, Ctrl+PageUp/PageDown (Cmd for
 *     Ctrl in the first three on macOS, plus Cmd+Alt+←/→).
 * Keys xterm does not encode (Ctrl+`, Ctrl+Shift+E, Ctrl+,) reach VS Code unchanged.
 */

/** The fields of a `KeyboardEvent` the policy looks at. */
export interface KeyInput {
  readonly type: string;
  readonly key: string;
  readonly code: string;
  readonly ctrlKey: boolean;
  readonly shiftKey: boolean;
  readonly altKey: boolean;
  readonly metaKey: boolean;
}

/**
 * - `terminal`: xterm handles the key as usual (bytes to the agent).
 * - `workbench`: xterm ignores it, so it bubbles to the webview host, which forwards it to VS Code.
 * - `copy`: we copy xterm's selection ourselves (xterm's selection is not a DOM selection).
 * - `paste`: xterm ignores it, so the browser fires `paste`, which xterm turns into a (bracketed) paste.
 */
export type KeyAction = 'terminal' | 'workbench' | 'copy' | 'paste';

export interface KeyContext {
  readonly isMac: boolean;
  readonly hasSelection: boolean;
}

export function keyAction(ev: KeyInput, ctx: KeyContext): KeyAction {
  const letter = letterOf(ev);
  // VS Code's "CtrlCmd": Cmd on macOS, Ctrl elsewhere. On macOS, Ctrl+letter stays a control character.
  const mod = ctx.isMac ? ev.metaKey && !ev.ctrlKey : ev.ctrlKey && !ev.metaKey;
  const onlyMod = mod && !ev.altKey && !ev.shiftKey;
  const modShift = mod && !ev.altKey && ev.shiftKey;

  if (letter === 'c' && ((onlyMod && ctx.hasSelection) || modShift)) return 'copy';
  if (letter === 'v' && (onlyMod || modShift)) return 'paste';

  if (ev.key === 'F1' && !ev.ctrlKey && !ev.altKey && !ev.shiftKey && !ev.metaKey) return 'workbench';
  if (letter === 'p' && (onlyMod || modShift)) return 'workbench';
  if (letter === 'w' && onlyMod) return 'workbench';
  const ctrlOnly = ev.ctrlKey && !ev.altKey && !ev.metaKey;
  if (ev.key === 'Tab' && ctrlOnly) return 'workbench';
  if ((ev.key === 'PageUp' || ev.key === 'PageDown') && ctrlOnly && !ev.shiftKey) return 'workbench';
  if (ctx.isMac && ev.metaKey && ev.altKey && !ev.ctrlKey && (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight')) return 'workbench';
  return 'terminal';
}

/** The Latin letter a key stands for: `key` on Latin layouts (so Dvorak's Ctrl+J is J), the physical
 *  key (`code`) when the layout types another script (Ctrl+С on a Russian layout is Ctrl+C). */
function letterOf(ev: KeyInput): string | undefined {
  if (/^[a-z]$/i.test(ev.key)) return ev.key.toLowerCase();
  if (ev.key.length === 1 && /[^\x00-\x7f]/.test(ev.key)) {
    const m = /^Key([A-Z])$/.exec(ev.code);
    if (m) return m[1]!.toLowerCase();
  }
  return undefined;
}
