/**
 * The integrated-terminal renderer (`sandboxAgents.terminal.renderer: integrated`): a Pseudoterminal
 * over the same TtyConnection, opened in the editor area, so a session can live in VS Code's own
 * terminal (its keybindings, find, links) instead of the webview tab.
 */
import * as vscode from 'vscode';
import { harnessInfo } from '../protocol/harnesses';
import type { TtyState } from '../protocol/terminal';
import type { Backend } from './backends';
import { setting } from './config';
import type { Logger } from './logger';
import { TtyConnection } from './ttyConnection';

export function describeState(s: TtyState): string | undefined {
  switch (s.kind) {
    case 'reconnecting':
      return `Reconnecting… attempt ${s.attempt} (${s.reason})`;
    case 'ended':
      return `Session ended: ${s.reason}`;
    case 'unauthorized':
      return s.message;
    case 'failed':
      return s.message;
    default:
      return undefined;
  }
}

export function createSessionPty(backend: Backend, sessionId: string, log: Logger): vscode.Pseudoterminal {
  const write = new vscode.EventEmitter<string>();
  const close = new vscode.EventEmitter<number | void>();
  const decoder = new TextDecoder('utf-8');
  const conn = new TtyConnection({
    sessionId,
    baseUrl: () => backend.client.baseUrl,
    getSession: async (signal?: AbortSignal) => {
      await backend.ready(signal);
      return backend.client.getSession(sessionId, { signal });
    },
    fallbackUrl: setting('platform.ttyFallbackUrl') || undefined,
    log,
  });
  conn.onData((bytes) => {
    write.fire(decoder.decode(bytes, { stream: true }));
    // A Pseudoterminal never says when VS Code has rendered a write: handed over counts as consumed.
    conn.ack(bytes.length);
  });
  conn.onState((s) => {
    const text = describeState(s);
    if (text) write.fire(`\r\n\x1b[2m[${text}]\x1b[0m\r\n`);
    if (s.kind === 'ended') close.fire(0);
  });
  return {
    onDidWrite: write.event,
    onDidClose: close.event,
    open: (dims) => {
      if (dims) conn.resize(dims.columns, dims.rows);
      void conn.connect();
    },
    close: () => {
      conn.dispose();
      write.dispose();
      close.dispose();
    },
    handleInput: (data) => conn.write(data),
    setDimensions: (dims) => conn.resize(dims.columns, dims.rows),
  };
}

export function openIntegratedTerminal(backend: Backend, session: { id: string }, agent: { name: string; id: string; harness_id: string }, log: Logger): vscode.Terminal {
  const terminal = vscode.window.createTerminal({
    name: agent.name || agent.id,
    pty: createSessionPty(backend, session.id, log),
    location: vscode.TerminalLocation.Editor,
    iconPath: new vscode.ThemeIcon(harnessInfo(agent.harness_id)?.icon ?? 'terminal'),
  });
  terminal.show();
  return terminal;
}
