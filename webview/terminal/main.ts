/**
 * The agent terminal webview: xterm.js in a VS Code `WebviewPanel`, talking to
 * `extension/terminalPanel.ts` with the messages of `protocol/terminal.ts`.
 *
 *   webview                                   host
 *   ready {cols, rows}            ──────────▶  (posts nothing before this)
 *                                 ◀──────────  appearance, state, output…, focus
 *   input {data}                  ──────────▶  keys, pastes, mouse reports
 *   resize {cols, rows}           ──────────▶  only when the fitted size changed
 *   ack {bytes}                   ──────────▶  output parsed (per ≥ 16 KB, or after 10 ms)
 *   action {reconnect|restart|close|signIn}, openLink {url}  ──▶  banner buttons, clicked links
 *
 * Key policy: ./keyPolicy.ts and ./README.md.
 */
import '@xterm/xterm/css/xterm.css';
import './terminal.css';
import { FitAddon } from '@xterm/addon-fit';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Terminal } from '@xterm/xterm';
import type { HostToTerminal, TerminalAppearance } from '../../protocol/terminal';
import { ConnectionBanner } from './banner';
import { copyText } from './clipboard';
import { TerminalFitter } from './fit';
import { AckBatcher } from './flowControl';
import { connectToHost } from './host';
import { keyAction } from './keyPolicy';
import { currentScriptNonce, nonceDynamicStyles } from './styleNonce';
import { readTheme, watchTheme } from './theme';

// Before xterm exists, and while this bundle's <script> is still `document.currentScript`.
const nonce = currentScriptNonce();
if (nonce) nonceDynamicStyles(nonce);

function start(): void {
  const host = connectToHost();
  const isMac = /Mac|iPhone|iPad/.test(navigator.userAgent);

  const container = document.createElement('div');
  container.className = 'terminal-container';
  const banner = new ConnectionBanner((action) => host.post({ type: 'action', action }));
  document.body.append(container, banner.element);

  const defaults = editorFont();
  const openLink = (url: string): void => host.post({ type: 'openLink', url });
  const term = new Terminal({
    allowProposedApi: true, // `term.unicode`
    fontFamily: defaults.fontFamily,
    fontSize: defaults.fontSize,
    theme: readTheme(),
    // OSC 8 hyperlinks: the host opens them (a webview cannot open windows).
    linkHandler: { activate: (_event, url) => openLink(url) },
  });
  const fitAddon = new FitAddon();
  term.loadAddon(fitAddon);
  term.loadAddon(new WebLinksAddon((_event, url) => openLink(url)));
  term.loadAddon(new Unicode11Addon());
  term.unicode.activeVersion = '11';
  term.open(container);

  let copyOnSelection = false;
  term.attachCustomKeyEventHandler((ev) => {
    switch (keyAction(ev, { isMac, hasSelection: term.hasSelection() })) {
      case 'terminal':
        return true;
      case 'workbench': // xterm leaves it alone: it bubbles to the webview host, which forwards it to VS Code
      case 'paste': // the browser fires `paste`; xterm's paste handler brackets it when the app asked
        return false;
      case 'copy':
        if (ev.type === 'keydown') {
          const text = term.getSelection();
          term.clearSelection();
          void copyText(text);
        }
        ev.preventDefault();
        ev.stopPropagation(); // desktop VS Code would run its own Ctrl+Shift+C (external terminal)
        return false;
    }
  });
  term.onData((data) => host.post({ type: 'input', data }));
  term.onBinary((data) => host.post({ type: 'input', data }));
  term.onSelectionChange(() => {
    if (copyOnSelection && term.hasSelection()) void copyText(term.getSelection());
  });

  const acks = new AckBatcher((bytes) => host.post({ type: 'ack', bytes }));
  const fitter = new TerminalFitter(term, fitAddon, ({ cols, rows }) => host.post({ type: 'resize', cols, rows }));
  watchTheme(() => {
    term.options.theme = readTheme();
  });

  const applyAppearance = (a: TerminalAppearance): void => {
    term.options.fontFamily = a.fontFamily.trim() || defaults.fontFamily;
    term.options.fontSize = a.fontSize > 0 ? a.fontSize : defaults.fontSize;
    term.options.lineHeight = a.lineHeight >= 1 ? a.lineHeight : 1;
    term.options.cursorStyle = a.cursorStyle;
    term.options.cursorBlink = a.cursorBlink;
    term.options.scrollback = Math.max(0, Math.floor(a.scrollback));
    copyOnSelection = a.copyOnSelection;
    // New cell size: fit once xterm has measured the new font (and again once a web font loaded).
    fitter.schedule();
    void document.fonts.ready.then(() => fitter.schedule());
  };

  host.onMessage((message: HostToTerminal) => {
    switch (message.type) {
      case 'output': {
        const data = message.data as Uint8Array | ArrayBuffer;
        const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
        term.write(bytes, () => acks.parsed(bytes.byteLength));
        break;
      }
      case 'state':
        banner.show(message.state);
        break;
      case 'appearance':
        applyAppearance(message.appearance);
        break;
      case 'focus':
        term.focus();
        fitter.schedule(); // the panel may just have become visible again
        break;
    }
  });

  const { cols, rows } = fitter.fitInitial();
  host.post({ type: 'ready', cols, rows });
  fitter.observe(container);
  // The first fit can run before the font's metrics are final (one column short, measured).
  void document.fonts.ready.then(() => fitter.schedule());
}

/** VS Code's editor font, the integrated terminal's default too, until the host sends `appearance`. */
function editorFont(): { fontFamily: string; fontSize: number } {
  const style = getComputedStyle(document.body);
  const fontFamily = style.getPropertyValue('--vscode-editor-font-family').trim() || 'monospace';
  const fontSize = Number.parseFloat(style.getPropertyValue('--vscode-editor-font-size')) || 14;
  return { fontFamily, fontSize };
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
else start();
