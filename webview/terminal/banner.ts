/**
 * The connection banner over the terminal: what the connection is doing and what the user can do
 * about it. Plain DOM, announced politely to screen readers (`role="status"`), hidden while the
 * connection is open.
 */
import type { TerminalToHost, TtyState } from '../../protocol/terminal';

type Action = Extract<TerminalToHost, { type: 'action' }>['action'];

interface Button {
  label: string;
  action: Action;
  secondary?: boolean;
}

interface View {
  tone: 'info' | 'warning' | 'error';
  text: string;
  detail?: string;
  buttons: Button[];
}

/** What the banner shows for a state; undefined hides it. */
export function bannerView(state: TtyState): View | undefined {
  switch (state.kind) {
    case 'open':
      return undefined;
    case 'connecting':
      return { tone: 'info', text: 'Connecting…', buttons: [] };
    case 'reconnecting':
      return {
        tone: 'warning',
        text: `Reconnecting… attempt ${state.attempt}`,
        detail: state.reason || undefined,
        buttons: [{ label: 'Retry Now', action: 'reconnect' }],
      };
    case 'ended':
      return {
        tone: 'error',
        text: `Session ended: ${state.reason}`,
        buttons: [
          { label: 'Restart Session', action: 'restart' },
          { label: 'Close', action: 'close', secondary: true },
        ],
      };
    case 'unauthorized':
      return { tone: 'error', text: state.message, buttons: [{ label: 'Sign In', action: 'signIn' }] };
    case 'failed':
      return { tone: 'error', text: state.message, buttons: [{ label: 'Retry', action: 'reconnect' }] };
    case 'closed':
      return { tone: 'info', text: 'Disconnected.', buttons: [{ label: 'Reconnect', action: 'reconnect' }] };
  }
}

export class ConnectionBanner {
  readonly element: HTMLElement;
  private readonly text: HTMLElement;
  private readonly detail: HTMLElement;
  private readonly buttons: HTMLElement;

  constructor(private readonly onAction: (action: Action) => void) {
    this.element = document.createElement('div');
    this.element.className = 'connection-banner';
    this.element.setAttribute('role', 'status');
    this.element.setAttribute('aria-live', 'polite');
    this.element.hidden = true;
    this.text = this.element.appendChild(document.createElement('span'));
    this.text.className = 'connection-banner-text';
    this.detail = this.element.appendChild(document.createElement('span'));
    this.detail.className = 'connection-banner-detail';
    this.buttons = this.element.appendChild(document.createElement('span'));
    this.buttons.className = 'connection-banner-buttons';
  }

  show(state: TtyState): void {
    const view = bannerView(state);
    this.element.hidden = !view;
    if (!view) {
      this.text.textContent = '';
      this.detail.textContent = '';
      this.buttons.replaceChildren();
      return;
    }
    this.element.dataset['tone'] = view.tone;
    this.element.dataset['state'] = state.kind;
    this.text.textContent = view.text;
    this.detail.textContent = view.detail ?? '';
    this.detail.hidden = !view.detail;
    this.buttons.replaceChildren(
      ...view.buttons.map((b) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.textContent = b.label;
        if (b.secondary) button.classList.add('secondary');
        button.addEventListener('click', () => this.onAction(b.action));
        return button;
      }),
    );
  }
}
