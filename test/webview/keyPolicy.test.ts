// The terminal's key policy (webview/terminal/keyPolicy.ts), as a table a user can read: which keys
// the agent gets, which VS Code gets, which copy and which paste. Plain Node, no browser.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyAction, type KeyAction, type KeyInput } from '../../webview/terminal/keyPolicy';

/** "Ctrl+Shift+P" → a keydown as Chromium reports it (key is upper-case with Shift). */
function key(chord: string, code?: string): KeyInput {
  const parts = chord.split('+');
  const name = parts.pop()!;
  const mods = new Set(parts);
  const shiftKey = mods.has('Shift');
  const key = name.length === 1 && shiftKey ? name.toUpperCase() : name.length === 1 ? name.toLowerCase() : name;
  return {
    type: 'keydown',
    key,
    code: code ?? (/^[a-z]$/i.test(name) ? `Key${name.toUpperCase()}` : name),
    ctrlKey: mods.has('Ctrl'),
    shiftKey,
    altKey: mods.has('Alt'),
    metaKey: mods.has('Cmd'),
  };
}

function check(isMac: boolean, hasSelection: boolean, table: Array<[string, KeyAction]>): void {
  for (const [chord, expected] of table) {
    assert.equal(keyAction(key(chord), { isMac, hasSelection }), expected, `${isMac ? 'macOS' : 'Linux/Windows'} ${chord}${hasSelection ? ' (with a selection)' : ''}`);
  }
}

test('Linux and Windows: the agent gets its control keys, VS Code its navigation keys', () => {
  check(false, false, [
    ['Ctrl+C', 'terminal'],
    ['Ctrl+D', 'terminal'],
    ['Ctrl+R', 'terminal'],
    ['Ctrl+K', 'terminal'],
    ['Ctrl+B', 'terminal'],
    ['Escape', 'terminal'],
    ['Shift+Tab', 'terminal'],
    ['Tab', 'terminal'],
    ['Alt+B', 'terminal'],
    ['F5', 'terminal'],
    ['PageUp', 'terminal'],
    ['a', 'terminal'],
    ['F1', 'workbench'],
    ['Ctrl+Shift+P', 'workbench'],
    ['Ctrl+P', 'workbench'],
    ['Ctrl+W', 'workbench'],
    ['Ctrl+Tab', 'workbench'],
    ['Ctrl+Shift+Tab', 'workbench'],
    ['Ctrl+PageUp', 'workbench'],
    ['Ctrl+PageDown', 'workbench'],
    ['Ctrl+V', 'paste'],
    ['Ctrl+Shift+V', 'paste'],
    ['Ctrl+Shift+C', 'copy'],
  ]);
});

test('Linux and Windows: Ctrl+C copies only while text is selected', () => {
  check(false, true, [
    ['Ctrl+C', 'copy'],
    ['Ctrl+Shift+C', 'copy'],
    ['Ctrl+D', 'terminal'],
  ]);
});

test('macOS: Cmd is VS Code\'s and the clipboard\'s, Ctrl stays the agent\'s', () => {
  check(true, false, [
    ['Ctrl+C', 'terminal'],
    ['Ctrl+P', 'terminal'],
    ['Ctrl+W', 'terminal'],
    ['Ctrl+V', 'terminal'],
    ['Cmd+C', 'terminal'],
    ['Cmd+V', 'paste'],
    ['Cmd+P', 'workbench'],
    ['Cmd+Shift+P', 'workbench'],
    ['Cmd+W', 'workbench'],
    ['Ctrl+Tab', 'workbench'],
    ['Cmd+Alt+ArrowRight', 'workbench'],
    ['F1', 'workbench'],
  ]);
  check(true, true, [
    ['Cmd+C', 'copy'],
    ['Ctrl+C', 'terminal'],
  ]);
});

test('letters follow the layout: Dvorak by key, non-Latin layouts by physical key', () => {
  const ctx = { isMac: false, hasSelection: false };
  // Dvorak: the key labelled J sits where QWERTY has C; Ctrl+J is ^J, not a copy.
  assert.equal(keyAction({ ...key('Ctrl+J'), code: 'KeyC' }, { ...ctx, hasSelection: true }), 'terminal');
  // Russian layout: Ctrl+М (on the V key) pastes, Ctrl+З (on the P key) is Quick Open.
  assert.equal(keyAction({ ...key('Ctrl+V'), key: 'м' }, ctx), 'paste');
  assert.equal(keyAction({ ...key('Ctrl+P'), key: 'з' }, ctx), 'workbench');
});
