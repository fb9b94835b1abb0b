/**
 * The terminal's colours from VS Code's theme: the `--vscode-terminal*` CSS variables VS Code sets on
 * a webview, falling back to the editor's colours where the theme leaves a terminal colour unset.
 * VS Code swaps those variables and the `vscode-light` / `vscode-dark` / `vscode-high-contrast`
 * classes on `body` when the user changes theme, so both are watched.
 */
import type { ITheme } from '@xterm/xterm';

const ANSI: ReadonlyArray<[keyof ITheme, string]> = [
  ['black', 'ansiBlack'],
  ['red', 'ansiRed'],
  ['green', 'ansiGreen'],
  ['yellow', 'ansiYellow'],
  ['blue', 'ansiBlue'],
  ['magenta', 'ansiMagenta'],
  ['cyan', 'ansiCyan'],
  ['white', 'ansiWhite'],
  ['brightBlack', 'ansiBrightBlack'],
  ['brightRed', 'ansiBrightRed'],
  ['brightGreen', 'ansiBrightGreen'],
  ['brightYellow', 'ansiBrightYellow'],
  ['brightBlue', 'ansiBrightBlue'],
  ['brightMagenta', 'ansiBrightMagenta'],
  ['brightCyan', 'ansiBrightCyan'],
  ['brightWhite', 'ansiBrightWhite'],
];

/** Reads the theme from the CSS variables in effect on `body`. Unset colours stay undefined, so
 *  xterm uses its own default for them. */
export function readTheme(): ITheme {
  const style = getComputedStyle(document.body);
  const css = (name: string): string | undefined => style.getPropertyValue(`--vscode-${name}`).trim() || undefined;
  const background = css('terminal-background') ?? css('editor-background');
  const foreground = css('terminal-foreground') ?? css('editor-foreground');
  const theme: ITheme = {
    background,
    foreground,
    cursor: css('terminalCursor-foreground') ?? foreground,
    cursorAccent: css('terminalCursor-background') ?? background,
    selectionBackground: css('terminal-selectionBackground') ?? css('editor-selectionBackground'),
    selectionForeground: css('terminal-selectionForeground'),
    selectionInactiveBackground: css('terminal-inactiveSelectionBackground') ?? css('editor-inactiveSelectionBackground'),
    scrollbarSliderBackground: css('scrollbarSlider-background'),
    scrollbarSliderHoverBackground: css('scrollbarSlider-hoverBackground'),
    scrollbarSliderActiveBackground: css('scrollbarSlider-activeBackground'),
  };
  for (const [key, variable] of ANSI) (theme as Record<string, string | undefined>)[key] = css(`terminal-${variable}`);
  return theme;
}

/** Calls `onChange` when VS Code changes theme: `body`'s class, or the variables VS Code writes into
 *  `html`'s (or `body`'s) `style` attribute. One call per batch of mutations. Returns a stop function. */
export function watchTheme(onChange: () => void): () => void {
  const observer = new MutationObserver(() => onChange());
  observer.observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['class', 'style'] });
  return () => observer.disconnect();
}
