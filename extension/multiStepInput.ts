/**
 * Multi-step quick input with a Back button: each step is a function that shows one input and
 * returns the next step. Back re-runs the previous step with its earlier answer prefilled;
 * Escape cancels the whole flow (CancelledError).
 */
import * as vscode from 'vscode';
import { CancelledError } from './errors';

export type Step<S> = (input: MultiStepInput, state: S) => Promise<Step<S> | undefined>;

class BackSignal extends Error {}

export interface PickOptions<T extends vscode.QuickPickItem> {
  title: string;
  step: number;
  totalSteps: number;
  items: readonly T[] | Promise<readonly T[]>;
  placeholder?: string;
  activeItem?: T;
  /** Lets the person type a value that is not in the list (returned as a label-only item). */
  allowCustom?: (value: string) => T | undefined;
}

export interface InputOptions {
  title: string;
  step: number;
  totalSteps: number;
  value: string;
  prompt: string;
  placeholder?: string;
  password?: boolean;
  /** Synchronous check on every keystroke: a message, or undefined when valid. */
  validate?: (value: string) => string | undefined;
  /** Asynchronous check on accept (e.g. the name is free on the backend). */
  validateOnAccept?: (value: string) => Promise<string | undefined>;
}

export class MultiStepInput {
  private current?: vscode.QuickInput;
  private readonly history: Step<any>[] = [];

  static async run<S>(start: Step<S>, state: S): Promise<S> {
    const input = new MultiStepInput();
    await input.stepThrough(start, state);
    return state;
  }

  private async stepThrough<S>(start: Step<S>, state: S): Promise<void> {
    let step: Step<S> | undefined = start;
    while (step) {
      this.history.push(step);
      try {
        step = await step(this, state);
      } catch (err) {
        if (err instanceof BackSignal) {
          this.history.pop();
          step = this.history.pop();
        } else {
          this.current?.dispose();
          throw err;
        }
      }
    }
    this.current?.dispose();
  }

  get canGoBack(): boolean {
    return this.history.length > 1;
  }

  pick<T extends vscode.QuickPickItem>(o: PickOptions<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const qp = vscode.window.createQuickPick<T>();
      qp.title = o.title;
      qp.step = o.step;
      qp.totalSteps = o.totalSteps;
      qp.placeholder = o.placeholder;
      qp.ignoreFocusOut = true;
      qp.matchOnDescription = true;
      qp.buttons = this.canGoBack ? [vscode.QuickInputButtons.Back] : [];
      qp.busy = true;
      const subs: vscode.Disposable[] = [];
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        subs.forEach((s) => s.dispose());
        fn();
      };
      Promise.resolve(o.items).then(
        (items) => {
          qp.items = items;
          if (o.activeItem) qp.activeItems = items.filter((i) => i.label === o.activeItem!.label);
          qp.busy = false;
        },
        (err) => finish(() => reject(err)),
      );
      subs.push(
        qp.onDidTriggerButton((b) => b === vscode.QuickInputButtons.Back && finish(() => reject(new BackSignal()))),
        qp.onDidAccept(() => {
          const chosen = qp.selectedItems[0] ?? qp.activeItems[0];
          if (chosen) return finish(() => resolve(chosen));
          const custom = o.allowCustom?.(qp.value.trim());
          if (custom) finish(() => resolve(custom));
        }),
        qp.onDidHide(() => finish(() => reject(new CancelledError()))),
      );
      this.swap(qp);
    });
  }

  input(o: InputOptions): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const box = vscode.window.createInputBox();
      box.title = o.title;
      box.step = o.step;
      box.totalSteps = o.totalSteps;
      box.value = o.value;
      box.prompt = o.prompt;
      box.placeholder = o.placeholder;
      box.password = !!o.password;
      box.ignoreFocusOut = true;
      box.buttons = this.canGoBack ? [vscode.QuickInputButtons.Back] : [];
      const subs: vscode.Disposable[] = [];
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        subs.forEach((s) => s.dispose());
        fn();
      };
      const check = (v: string) => (box.validationMessage = o.validate?.(v));
      check(o.value);
      subs.push(
        box.onDidTriggerButton((b) => b === vscode.QuickInputButtons.Back && finish(() => reject(new BackSignal()))),
        box.onDidChangeValue(check),
        box.onDidAccept(async () => {
          const value = box.value;
          if (o.validate?.(value)) return;
          if (o.validateOnAccept) {
            box.enabled = false;
            box.busy = true;
            const problem = await o.validateOnAccept(value).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
            box.enabled = true;
            box.busy = false;
            if (problem) {
              box.validationMessage = problem;
              return;
            }
          }
          finish(() => resolve(value));
        }),
        box.onDidHide(() => finish(() => reject(new CancelledError()))),
      );
      this.swap(box);
    });
  }

  private swap(next: vscode.QuickInput): void {
    const previous = this.current;
    this.current = next;
    next.show();
    previous?.dispose();
  }
}
