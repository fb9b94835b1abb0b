/**
 * Messages between the terminal webview and the extension host (`webview/terminal` ⇄
 * `extension/terminalPanel.ts`), declared once. Host → webview messages are trusted (we send them);
 * webview → host messages are parsed with zod on the host before use. Also the one extension we make
 * to the platform's `/tty` protocol: flow control by acknowledgement (at the end).
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

// ---------------------------------------------------------------------------------------------
// `/tty` flow control by acknowledgement: an extension of ours, negotiated per socket.
//
// The platform's `/tty` has no flow control (platform-api.md) and treats any text frame that is not
// a control message as input, so a client never sends an ack unless the server offered it:
//   1. the client adds `?flow=1` to the `/tty` URL (servers ignore query parameters they do not know);
//   2. a server that supports it (our bridge) answers the upgrade with `x-sandbox-agents-flow: ack`;
//   3. only then the client sends text frames `{"type":"ack","bytes":N}`, N being the output bytes
//      (the payload lengths of the server's frames) it has consumed since its previous ack.
// The server then keeps at most a window of unacknowledged output in flight to that client and
// pauses the program's PTY while the client is behind, so input (Ctrl+C) is answered after at most
// a window of output. Without the header the client falls back to pausing its socket reads.

/** The query parameter by which a client asks for ack flow control (value `1`). */
export const TTY_FLOW_QUERY = 'flow';
/** The upgrade response header by which the server accepts it (value `ack`). */
export const TTY_FLOW_HEADER = 'x-sandbox-agents-flow';
export const TTY_FLOW_ACCEPTED = 'ack';

/** Client → server, only after the server accepted: output bytes consumed since the previous ack. */
export const TtyAckFrame = z.object({ type: z.literal('ack'), bytes: z.int().check(z.minimum(0)) });
export type TtyAckFrame = z.infer<typeof TtyAckFrame>;

export function ttyAckFrame(bytes: number): string {
  return JSON.stringify({ type: 'ack', bytes } satisfies TtyAckFrame);
}
