/**
 * Keeps the terminal the size of its container and tells the host the size it ends up with: a
 * `ResizeObserver` on the container, debounced, then `fit()`; the host hears only sizes that differ
 * from the last one it heard, and always the final one.
 *
 * Hidden panels: VS Code shrinks a hidden (retained) webview to about 292×142 px, which fits to 32×8
 * (measured). The webview cannot tell it is hidden, so it reports that size too; the host must not
 * resize the agent's PTY while the panel is not visible. The size is reported again when the panel
 * is shown (it changes back).
 */
import type { FitAddon } from '@xterm/addon-fit';
import type { Terminal } from '@xterm/xterm';

export interface Size {
  cols: number;
  rows: number;
}

export class TerminalFitter {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private reported: Size | undefined;
  private observer: ResizeObserver | undefined;

  constructor(
    private readonly term: Terminal,
    private readonly fitAddon: FitAddon,
    private readonly onResize: (size: Size) => void,
    private readonly debounceMs = 50,
  ) {}

  /** Fits now and returns the size, which counts as reported (it goes out in `ready`). */
  fitInitial(): Size {
    this.fitAddon.fit();
    this.reported = { cols: this.term.cols, rows: this.term.rows };
    return this.reported;
  }

  /** Starts following the container's size. */
  observe(container: HTMLElement): void {
    this.observer = new ResizeObserver(() => this.schedule());
    this.observer.observe(container);
  }

  /** Fits after `debounceMs` of quiet (a drag of the sash fits once, at the end) and reports the
   *  size if it changed. */
  schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fitAndReport();
    }, this.debounceMs);
  }

  fitAndReport(): void {
    this.fitAddon.fit();
    const size = { cols: this.term.cols, rows: this.term.rows };
    if (this.reported && this.reported.cols === size.cols && this.reported.rows === size.rows) return;
    this.reported = size;
    this.onResize(size);
  }

  dispose(): void {
    this.observer?.disconnect();
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}
