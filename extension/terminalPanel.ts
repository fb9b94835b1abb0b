/**
 * Terminal tabs: an editor-area WebviewPanel per TUI session running xterm.js, attached to the
 * session's `/tty` through a TtyConnection in the extension host (browsers cannot set WebSocket
 * headers, so the socket never lives in the webview). Output is batched per frame; the webview's
 * acks (xterm has parsed the bytes) drive the connection's flow control. Tabs are restored after a
 * reload by the panel serializer and reattach by themselves. Closing a tab only detaches.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { TUI_HARNESSES, type Agent, type Session } from '../protocol/platform';
import { TerminalToHost, type HostToTerminal, type TerminalAppearance } from '../protocol/terminal';
import type { Backend, BackendRegistry } from './backends';
import type { Notifier } from './commands';
import { InvalidInputError } from './errors';
import { setting } from './config';
import { Disposable } from './disposable';
import type { Logger } from './logger';
import { TtyConnection } from './ttyConnection';

export const TERMINAL_VIEW_TYPE = 'sandboxAgents.terminal';
const FRAME_MS = 8;
/** One `output` message carries at most this: xterm acks per message, so acks follow its parsing closely. */
const POST_BYTES = 16 * 1024;

/** What a restored tab needs to find its session again. */
export interface TerminalTabState {
  backendId: string;
  sessionId: string;
  title: string;
  harness: string;
}

export function appearance(): TerminalAppearance {
  const t = vscode.workspace.getConfiguration('terminal.integrated');
  const e = vscode.workspace.getConfiguration('editor');
  const cursor = t.get<string>('cursorStyle', 'block');
  return {
    fontFamily: t.get<string>('fontFamily') || e.get<string>('fontFamily') || 'monospace',
    fontSize: t.get<number>('fontSize') || e.get<number>('fontSize') || 14,
    lineHeight: t.get<number>('lineHeight') || 1,
    cursorStyle: cursor === 'line' ? 'bar' : cursor === 'underline' ? 'underline' : 'block',
    cursorBlink: t.get<boolean>('cursorBlinking', false),
    copyOnSelection: t.get<boolean>('copyOnSelection', false),
    scrollback: t.get<number>('scrollback', 1000),
  };
}

class TerminalTab extends Disposable {
  private readonly conn: TtyConnection;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private lastPost = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private ready = false;

  constructor(
    readonly panel: vscode.WebviewPanel,
    readonly backend: Backend,
    readonly state: TerminalTabState,
    private readonly extensionUri: vscode.Uri,
    private readonly log: Logger,
    private readonly onRestart: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {
    super();
    panel.title = state.title;
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'sandbox-agents.svg');
    panel.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview')] };
    panel.webview.html = this.html();
    this.conn = new TtyConnection({
      sessionId: state.sessionId,
      // Both resolved on every attempt: a local bridge that died is started again (on a new port).
      baseUrl: () => backend.client.baseUrl,
      getSession: async (signal?: AbortSignal) => {
        await backend.ready(signal);
        return backend.client.getSession(state.sessionId, { signal });
      },
      fallbackUrl: setting('platform.ttyFallbackUrl') || undefined,
      log,
    });
    this.register({ dispose: () => this.conn.dispose() });
    this.register({ dispose: () => clearTimeout(this.flushTimer) });
    this.register(this.conn.onData((bytes) => this.output(bytes)));
    this.register(this.conn.onState((s) => this.post({ type: 'state', state: s })));
    this.register(panel.webview.onDidReceiveMessage((raw) => this.fromWebview(raw)));
    this.register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('terminal.integrated') || e.affectsConfiguration('editor.fontFamily')) this.post({ type: 'appearance', appearance: appearance() });
      }),
    );
    this.register(panel.onDidChangeViewState(() => panel.active && this.post({ type: 'focus' })));
  }

  reveal(): void {
    this.panel.reveal();
  }

  private post(msg: HostToTerminal): void {
    if (this.ready) void this.panel.webview.postMessage(msg);
  }

  /**
   * Output is batched per frame: what arrives within ~8 ms of the last post waits for the next one,
   * however many socket frames it came in; output after a quiet spell (an echo) is posted at once.
   */
  private output(bytes: Buffer): void {
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.flushTimer) return;
    const wait = this.lastPost + FRAME_MS - Date.now();
    if (wait <= 0) this.flush();
    else this.flushTimer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.lastPost = Date.now();
    const chunks = this.pending.splice(0);
    let left = this.pendingBytes;
    this.pendingBytes = 0;
    if (left === 0) return;
    if (!this.ready) return this.conn.ack(left);
    // Each message gets an ArrayBuffer of its own (a view would carry its whole underlying buffer along).
    let part = new Uint8Array(Math.min(POST_BYTES, left));
    let at = 0;
    for (const chunk of chunks) {
      for (let from = 0; from < chunk.length; ) {
        const n = Math.min(part.length - at, chunk.length - from);
        part.set(chunk.subarray(from, from + n), at);
        at += n;
        from += n;
        if (at < part.length) continue;
        this.post({ type: 'output', data: part });
        left -= part.length;
        if (left > 0) part = new Uint8Array(Math.min(POST_BYTES, left));
        at = 0;
      }
    }
  }

  private fromWebview(raw: unknown): void {
    const parsed = TerminalToHost.safeParse(raw);
    if (!parsed.success) {
      this.log.warn(`terminal ${this.state.sessionId}: ignoring a malformed message from the webview`);
      return;
    }
    const msg = parsed.data;
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        this.post({ type: 'appearance', appearance: appearance() });
        this.post({ type: 'state', state: this.conn.state });
        this.conn.resize(msg.cols, msg.rows);
        void this.conn.connect();
        return;
      case 'input':
        if (!this.conn.write(msg.data)) this.log.debug(`terminal ${this.state.sessionId}: input dropped (${this.conn.state.kind})`);
        return;
      case 'resize':
        // A hidden retained webview measures tiny (32×8): never pass that on to the agent's PTY.
        if (this.panel.visible) this.conn.resize(msg.cols, msg.rows);
        return;
      case 'ack':
        this.conn.ack(msg.bytes);
        return;
      case 'openLink':
        if (/^https?:\/\//i.test(msg.url)) void vscode.env.openExternal(vscode.Uri.parse(msg.url));
        return;
      case 'action':
        if (msg.action === 'reconnect') this.conn.reconnectNow();
        else if (msg.action === 'close') this.panel.dispose();
        else if (msg.action === 'signIn') void vscode.commands.executeCommand('sandboxAgents.signIn');
        else if (msg.action === 'restart') {
          this.onRestart().then(
            () => this.conn.reconnectNow(),
            (err: unknown) => this.onError(err),
          );
        }
        return;
    }
  }

  private html(): string {
    const nonce = randomBytes(16).toString('base64');
    const webview = this.panel.webview;
    const asset = (file: string) => webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', file)).toString();
    const state = JSON.stringify(this.state).replace(/</g, '\\u003c');
    // xterm's DOM renderer adds <style> elements at run time (the webview gives them the script's
    // nonce) and sets `style` attributes on truecolour cells (style-src-attr).
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'nonce-${nonce}'; style-src ${webview.cspSource} 'nonce-${nonce}'; style-src-attr 'unsafe-inline'; font-src ${webview.cspSource}; img-src ${webview.cspSource} data:;">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset('terminal.css')}">
<title>${escapeHtml(this.state.title)}</title>
</head>
<body>
<div id="terminal" aria-label="Terminal: ${escapeHtml(this.state.title)}"></div>
<script type="application/json" id="sa-state" nonce="${nonce}">${state}</script>
<script nonce="${nonce}" src="${asset('terminal.js')}"></script>
</body>
</html>`;
  }
}

export class TerminalManager extends Disposable implements vscode.WebviewPanelSerializer<TerminalTabState> {
  private readonly tabs = new Map<string, TerminalTab>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly backends: BackendRegistry,
    private readonly notifier: Notifier,
    private readonly log: Logger,
    private readonly restart: (backend: Backend, sessionId: string) => Promise<void>,
  ) {
    super();
    this.register(vscode.window.registerWebviewPanelSerializer(TERMINAL_VIEW_TYPE, this));
  }

  async open(backend: Backend, session: Session, agent: Pick<Agent, 'name' | 'id' | 'harness_id'>): Promise<void> {
    if (!TUI_HARNESSES.has(agent.harness_id) && session.supports_tui === false) {
      throw new InvalidInputError(`${agent.name || agent.id} is a chat agent (${agent.harness_id}): it has no terminal.`);
    }
    const key = `${backend.id}/${session.id}`;
    const existing = this.tabs.get(key);
    if (existing) return existing.reveal();
    const panel = vscode.window.createWebviewPanel(TERMINAL_VIEW_TYPE, agent.name || agent.id, vscode.ViewColumn.Active, {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview')],
    });
    this.adopt(panel, backend, { backendId: backend.id, sessionId: session.id, title: agent.name || agent.id, harness: agent.harness_id });
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: TerminalTabState | undefined): Promise<void> {
    await this.backends.ready();
    const backend = state && this.backends.get(state.backendId);
    if (!state || !backend) {
      panel.webview.html = `<!DOCTYPE html><html><body><p>This terminal's backend is not available (signed out?). Close this tab and open the terminal again.</p></body></html>`;
      return;
    }
    try {
      await backend.ready();
    } catch (err) {
      this.notifier.showError(err, 'Could not reattach a terminal');
    }
    this.adopt(panel, backend, state);
  }

  private adopt(panel: vscode.WebviewPanel, backend: Backend, state: TerminalTabState): void {
    const key = `${state.backendId}/${state.sessionId}`;
    const tab = new TerminalTab(panel, backend, state, this.extensionUri, this.log, () => this.restart(backend, state.sessionId), (err) => this.notifier.showError(err, 'Could not restart the session'));
    this.tabs.set(key, tab);
    panel.onDidDispose(() => {
      this.tabs.delete(key);
      tab.dispose();
    });
    this.register({ dispose: () => panel.dispose() });
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
