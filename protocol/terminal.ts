/**
 * Messages between the terminal webview and the extension host (`webview/terminal` ⇄
 * `extension/terminalPanel.ts`), declared once. Host → webview messages are trusted (we send them);
 * webview → host messages are parsed with zod on the host before use.
 */
import * as z from 'zod/mini';
import './zod';

/** The connection's state as the UI shows it (banner). */
export type TtyState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'open' }
  | { kind: 'reconnecting'; attempt: number; delayMs: number; reason: string }
  | { kind: 'ended'; reason: string; status: string }
  | { kind: 'unauthorized'; message: string }
  | { kind: 'failed'; message: string }
  | { kind: 'closed' };

export interface TerminalAppearance {
  fontFamily: string;
  fontSize: number;
  lineHeight: number;
  cursorStyle: 'block' | 'underline' | 'bar';
  cursorBlink: boolean;
  copyOnSelection: boolean;
  scrollback: number;
}

/** Host → webview. */
export type HostToTerminal =
  | { type: 'output'; data: Uint8Array }
  | { type: 'state'; state: TtyState }
  | { type: 'appearance'; appearance: TerminalAppearance }
  | { type: 'focus' };

/** Webview → host. */
export const TerminalToHost = z.discriminatedUnion('type', [
  /** Sent once the terminal exists, with its fitted size; the host posts nothing before it. */
  z.object({ type: z.literal('ready'), cols: z.int(), rows: z.int() }),
  z.object({ type: z.literal('input'), data: z.string().check(z.maxLength(1024 * 1024)) }),
  z.object({ type: z.literal('resize'), cols: z.int().check(z.minimum(1), z.maximum(1000)), rows: z.int().check(z.minimum(1), z.maximum(500)) }),
  /** Flow control: bytes of `output` the terminal has finished parsing. */
  z.object({ type: z.literal('ack'), bytes: z.int().check(z.minimum(0)) }),
  /** Banner buttons. */
  z.object({ type: z.literal('action'), action: z.enum(['reconnect', 'restart', 'close', 'signIn']) }),
  z.object({ type: z.literal('openLink'), url: z.string().check(z.maxLength(8192)) }),
]);
export type TerminalToHost = z.infer<typeof TerminalToHost>;
