/**
 * Writes text to the clipboard from a key or selection handler. `navigator.clipboard` works in a VS
 * Code webview (its iframe is allowed `clipboard-write`); where it is refused, `execCommand('copy')`
 * with our own `copy` listener still works during the user's keystroke.
 */
export async function copyText(text: string): Promise<void> {
  if (!text) return;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const onCopy = (e: ClipboardEvent): void => {
      e.clipboardData?.setData('text/plain', text);
      e.preventDefault();
    };
    document.addEventListener('copy', onCopy, { capture: true, once: true });
    try {
      document.execCommand('copy');
    } finally {
      document.removeEventListener('copy', onCopy, { capture: true });
    }
  }
}
