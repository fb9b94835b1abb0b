import type * as vscode from 'vscode';

/**
 * Base for every owner of resources. `register()` disposes at once when the owner is already
 * disposed (so late registrations never leak); `dispose()` is idempotent and disposes in reverse order.
 */
export class Disposable implements vscode.Disposable {
  private readonly owned: { dispose(): unknown }[] = [];
  private disposed = false;

  get isDisposed(): boolean {
    return this.disposed;
  }

  register<T extends { dispose(): unknown }>(d: T): T {
    if (this.disposed) d.dispose();
    else this.owned.push(d);
    return d;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.owned.splice(0).reverse()) {
      try {
        d.dispose();
      } catch {
        // One failing disposer must not keep the others alive.
      }
    }
  }
}
