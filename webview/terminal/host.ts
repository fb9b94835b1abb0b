/**
 * The webview's side of the channel to the extension host (`extension/terminalPanel.ts`): typed
 * `postMessage` to the host and the host's messages from `window`. The message types live in
 * `protocol/terminal.ts`; host → webview messages are trusted, so they are only shape-checked here.
 */
import type { HostToTerminal, TerminalToHost } from '../../protocol/terminal';

interface VsCodeApi {
  postMessage(message: unknown): void;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

export interface HostChannel {
  post(message: TerminalToHost): void;
  /** Calls `handler` for each message from the host; returns a function that stops listening. */
  onMessage(handler: (message: HostToTerminal) => void): () => void;
}

/** `acquireVsCodeApi()` may be called once per webview: this is the one call. */
export function connectToHost(): HostChannel {
  const api = acquireVsCodeApi();
  // The host embeds which session this tab shows; kept as the webview state, it is what VS Code hands
  // the panel serializer to reopen and reattach the tab after a reload.
  const embedded = document.getElementById('sa-state')?.textContent;
  if (embedded) {
    try {
      api.setState(JSON.parse(embedded));
    } catch {
      /* a tab without state is simply not restored */
    }
  }
  return {
    post: (message) => api.postMessage(message),
    onMessage(handler) {
      const listener = (event: MessageEvent<unknown>): void => {
        const message = event.data;
        if (isHostMessage(message)) handler(message);
      };
      window.addEventListener('message', listener);
      return () => window.removeEventListener('message', listener);
    },
  };
}

function isHostMessage(value: unknown): value is HostToTerminal {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return type === 'output' || type === 'state' || type === 'appearance' || type === 'focus';
}
