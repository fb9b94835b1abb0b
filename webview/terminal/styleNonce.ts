/**
 * xterm.js 6 (DOM renderer, scrollbar) creates `<style>` elements at run time, which a strict
 * `style-src` blocks: 8 violations, proportional font, invisible text (measured, see
 * shared/docs/webview-terminal.md → "CSP"). Rather than `'unsafe-inline'`, every `<style>`
 * created through `document.createElement` gets the nonce of the script that loaded this bundle, so
 * the host's CSP can be `style-src ${cspSource} 'nonce-N'`. xterm has no nonce option: re-check on
 * xterm upgrades (the webview test counts CSP violations).
 *
 * A nonce cannot cover `style` *attributes*, which xterm's DOM renderer sets on 24-bit-colour and
 * selected cells (`setAttribute('style', …)`): the CSP also needs `style-src-attr 'unsafe-inline'`
 * (measured in test/webview: without it, truecolour text renders in the default colour).
 */

/** The nonce of the `<script>` running this bundle. Read it while the bundle's top level runs:
 *  `document.currentScript` is null afterwards. */
export function currentScriptNonce(): string | undefined {
  const script = document.currentScript;
  const nonce = script instanceof HTMLScriptElement ? script.nonce : document.querySelector<HTMLScriptElement>('script[nonce]')?.nonce;
  return nonce || undefined;
}

/** From now on, `<style>` elements created by `document.createElement` carry `nonce`. */
export function nonceDynamicStyles(nonce: string): void {
  const createElement = document.createElement;
  const patched = function (this: Document, tagName: string, options?: ElementCreationOptions): HTMLElement {
    const element = createElement.call(this, tagName, options);
    if (element instanceof HTMLStyleElement) element.nonce = nonce;
    return element;
  };
  document.createElement = patched as typeof document.createElement;
}
