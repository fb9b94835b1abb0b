/**
 * The one wrapper around every command: logs the failure with its stack, shows one secret-free
 * message with a next step, stays silent on cancellation. Messages are not awaited, so a command's
 * promise settles when its work does, not when a person dismisses a notification.
 */
import * as vscode from 'vscode';
import { Disposable } from './disposable';
import { CancelledError, InvalidInputError, PlatformError, PlatformProtocolError, PlatformUnreachableError, isCancellation, toUserMessage } from './errors';
import type { Logger } from './logger';

export type Severity = 'info' | 'warning' | 'error';

export interface ShownMessage {
  severity: Severity;
  message: string;
  actions: string[];
}

/** An action button on a message: its label and what it does. */
export interface MessageAction {
  title: string;
  run: () => unknown;
}

/** Errors that carry their own next steps (e.g. a failed session offers "Show Details", "Retry"). */
export class ActionableError extends Error {
  constructor(
    message: string,
    readonly actions: MessageAction[],
    readonly severity: Severity = 'error',
  ) {
    super(message);
    this.name = 'ActionableError';
  }
}

export class Notifier extends Disposable {
  private readonly shown = this.register(new vscode.EventEmitter<ShownMessage>());
  /** Every message shown to the user (the extension API exposes it to tests and integrations). */
  readonly onDidShowMessage = this.shown.event;

  constructor(
    private readonly log: Logger,
    private readonly secrets: () => readonly string[],
  ) {
    super();
  }

  private readonly recent = new Map<string, number>();

  /** Shows a message without waiting for it; the chosen action runs when clicked. The same
   *  message again within 10 s is not repeated (a refresh loop must not stack notifications). */
  show(severity: Severity, message: string, actions: MessageAction[] = []): void {
    const text = toUserMessage(message, this.secrets());
    const now = Date.now();
    if ((this.recent.get(text) ?? 0) > now - 10_000) return;
    this.recent.set(text, now);
    for (const [k, at] of this.recent) if (at < now - 10_000) this.recent.delete(k);
    this.shown.fire({ severity, message: text, actions: actions.map((a) => a.title) });
    const fn = severity === 'error' ? vscode.window.showErrorMessage : severity === 'warning' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    void Promise.resolve(fn(text, ...actions.map((a) => a.title))).then(async (choice) => {
      const action = actions.find((a) => a.title === choice);
      if (!action) return;
      try {
        await action.run();
      } catch (err) {
        this.showError(err);
      }
    });
  }

  /** The one place an error becomes a message with next steps. */
  showError(err: unknown, context?: string): void {
    if (isCancellation(err)) return;
    const secrets = this.secrets();
    const text = toUserMessage(err, secrets);
    const stack = err instanceof Error && err.stack ? toUserMessage(err.stack, secrets) : text;
    this.log.error(context ? `${context}: ${stack}` : stack);
    const showLog: MessageAction = { title: 'Show Log', run: () => vscode.commands.executeCommand('sandboxAgents.showLog') };
    const signIn: MessageAction = { title: 'Sign In', run: () => vscode.commands.executeCommand('sandboxAgents.signIn') };
    const message = context && !(err instanceof ActionableError) ? `${context}: ${text}` : text;
    if (err instanceof ActionableError) this.show(err.severity, message, err.actions);
    else if (err instanceof PlatformError && err.status === 401) this.show('error', message, [signIn]);
    else if (err instanceof PlatformUnreachableError) this.show('error', message, [signIn, showLog]);
    else if (err instanceof PlatformProtocolError) this.show('error', message, [signIn, showLog]);
    else if (err instanceof InvalidInputError) this.show('error', message);
    else this.show('error', message, [showLog]);
  }
}

/** Registers a command whose failures go through the notifier. Returns the command's result. */
export function registerCommand(
  notifier: Notifier,
  id: string,
  title: string,
  fn: (...args: any[]) => unknown,
): vscode.Disposable {
  return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
    try {
      return await fn(...args);
    } catch (err) {
      notifier.showError(err, err instanceof CancelledError ? undefined : title);
      return undefined;
    }
  });
}
