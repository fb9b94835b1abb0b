/**
 * The chat transcript of an API-harness session (opencode, claude-agent-sdk), as the extension host
 * keeps it: the thread from `GET /sessions/{id}/messages`, kept current by the harness's bus events
 * (`message.updated`, `message.part.updated`, `message.part.delta`, `session.idle`, `session.error`)
 * arriving through `message_stream` / `events`. Pure: no I/O, no `vscode`; the reducer returns a new
 * transcript and never throws on odd input (unknown events are ignored, out-of-order and repeated
 * events converge on the same state).
 */
import * as z from 'zod/mini';
import './zod';
import { ATTACHMENT_MAX_BYTES, ATTACHMENT_MIME_TYPES, ATTACHMENTS_MAX_COUNT, MessageInfo, Part, type Message } from './platform';

export interface TranscriptMessage {
  info: MessageInfo;
  /** In arrival order; a part is replaced whole by `message.part.updated`, grown by deltas. */
  parts: Part[];
}

export interface Transcript {
  messages: TranscriptMessage[];
  /** A turn is running (sent, and no `session.idle` yet). */
  busy: boolean;
  /** The last turn's error, shown inline with Retry. */
  error?: string;
  /** Set when the user stopped the turn. */
  aborted?: boolean;
}

export const emptyTranscript = (): Transcript => ({ messages: [], busy: false });

/** A bus event as the harness publishes it: `{type, properties}`. */
export const BusEvent = z.looseObject({ type: z.string(), properties: z._default(z.record(z.string(), z.unknown()), {}) });
export type BusEvent = z.infer<typeof BusEvent>;

/** What the host does to a transcript besides bus events. */
export type TranscriptAction =
  | { type: 'history'; messages: readonly Message[] }
  | { type: 'sent' }
  | { type: 'aborted' }
  | { type: 'failed'; message: string }
  | { type: 'event'; event: unknown };

export function reduceTranscript(t: Transcript, action: TranscriptAction): Transcript {
  switch (action.type) {
    case 'history': {
      // The backend's thread is the truth; parts streamed meanwhile for the same ids are in it.
      const messages = action.messages.map((m) => ({ info: m.info, parts: [...m.parts] }));
      return { ...t, messages: sortMessages(mergeById(messages, t.messages)) };
    }
    case 'sent':
      return { ...t, busy: true, error: undefined, aborted: false };
    case 'aborted':
      return { ...t, busy: false, aborted: true };
    case 'failed':
      return { ...t, busy: false, error: action.message };
    case 'event':
      return reduceEvent(t, action.event);
  }
}

function reduceEvent(t: Transcript, raw: unknown): Transcript {
  const parsed = BusEvent.safeParse(raw);
  if (!parsed.success) return t;
  const { type, properties: p } = parsed.data;
  switch (type) {
    case 'message.updated': {
      const info = MessageInfo.safeParse(p.info);
      if (!info.success) return t;
      return withMessage(t, info.data.id, (m) => ({ ...m, info: { ...m.info, ...info.data } }), info.data);
    }
    case 'message.part.updated': {
      const part = Part.safeParse(p.part);
      if (!part.success || !part.data.messageID) return t;
      const incoming = part.data;
      return withMessage(t, incoming.messageID!, (m) => ({ ...m, parts: upsertPart(m.parts, incoming) }));
    }
    case 'message.part.delta': {
      const messageID = str(p.messageID);
      const partID = str(p.partID);
      const field = str(p.field) ?? 'text';
      const delta = str(p.delta);
      if (!messageID || !partID || delta === undefined || (field !== 'text' && field !== 'output')) return t;
      return withMessage(t, messageID, (m) => {
        const i = m.parts.findIndex((x) => x.id === partID);
        if (i < 0) return { ...m, parts: [...m.parts, { id: partID, messageID, type: 'text', text: delta } as Part] };
        const part = m.parts[i] as Part & { text?: string };
        if (field !== 'text' || typeof part.text !== 'string') return m;
        const parts = [...m.parts];
        parts[i] = { ...part, text: part.text + delta } as Part;
        return { ...m, parts };
      });
    }
    case 'session.idle':
      return t.busy ? { ...t, busy: false } : t;
    case 'session.error': {
      const err = p.error as { name?: string; data?: { message?: string } } | undefined;
      // An abort the user asked for is not an error.
      if (err?.name === 'MessageAbortedError') return { ...t, busy: false, aborted: true };
      return { ...t, busy: false, error: err?.data?.message ?? err?.name ?? 'the harness reported an error' };
    }
    default:
      return t;
  }
}

function withMessage(t: Transcript, id: string, change: (m: TranscriptMessage) => TranscriptMessage, info?: MessageInfo): Transcript {
  const i = t.messages.findIndex((m) => m.info.id === id);
  if (i < 0) {
    // A part or delta before its message: a placeholder the message's own event fills in later.
    const created = change({ info: info ?? ({ id, role: 'assistant' } as MessageInfo), parts: [] });
    return { ...t, messages: sortMessages([...t.messages, created]) };
  }
  const messages = [...t.messages];
  messages[i] = change(messages[i]);
  return { ...t, messages: info ? sortMessages(messages) : messages };
}

/** `message.part.updated` carries the whole part: it replaces what deltas built. */
function upsertPart(parts: readonly Part[], part: Part): Part[] {
  const i = part.id ? parts.findIndex((x) => x.id === part.id) : -1;
  if (i < 0) return [...parts, part];
  const next = [...parts];
  const current = parts[i] as Part & { text?: string };
  const incoming = part as Part & { text?: string };
  // An update older than the deltas already shown (out of order) must not cut the text short.
  if (typeof current.text === 'string' && typeof incoming.text === 'string' && current.text.startsWith(incoming.text) && current.text.length > incoming.text.length) {
    next[i] = { ...part, text: current.text } as Part;
  } else next[i] = part;
  return next;
}

function mergeById(fromHistory: TranscriptMessage[], live: readonly TranscriptMessage[]): TranscriptMessage[] {
  const ids = new Set(fromHistory.map((m) => m.info.id));
  return [...fromHistory, ...live.filter((m) => !ids.has(m.info.id))];
}

/** By creation time; messages without one keep their place after the timed ones before them. */
function sortMessages(messages: TranscriptMessage[]): TranscriptMessage[] {
  return messages
    .map((m, i) => ({ m, i }))
    .sort((a, b) => {
      const ta = a.m.info.time?.created ?? undefined;
      const tb = b.m.info.time?.created ?? undefined;
      if (ta !== undefined && tb !== undefined && ta !== tb) return ta - tb;
      return a.i - b.i;
    })
    .map((x) => x.m);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A file the user pasted or dropped, before it is read. */
export interface AttachmentCandidate {
  name: string;
  mimeType: string;
  bytes: number;
}

/**
 * The platform's attachment rules, checked before anything is read or sent: images (png, jpeg, gif,
 * webp), each at most 5 MiB, at most 10. Null when fine, else one message naming what is wrong.
 */
export function attachmentProblem(files: readonly AttachmentCandidate[], alreadyAttached = 0): string | null {
  if (files.length + alreadyAttached > ATTACHMENTS_MAX_COUNT) return `At most ${ATTACHMENTS_MAX_COUNT} images per message (${files.length + alreadyAttached} given).`;
  for (const f of files) {
    if (!ATTACHMENT_MIME_TYPES.includes(f.mimeType)) return `${f.name || 'The file'} is ${f.mimeType || 'of an unknown type'}: only PNG, JPEG, GIF and WebP images can be attached.`;
    if (f.bytes > ATTACHMENT_MAX_BYTES) return `${f.name || 'The image'} is ${(f.bytes / 1024 / 1024).toFixed(1)} MiB: at most ${ATTACHMENT_MAX_BYTES / 1024 / 1024} MiB per image.`;
    if (f.bytes === 0) return `${f.name || 'The image'} is empty.`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Between the extension host and the chat webview (checked with zod on the host).

/** A session the picker offers: `key` is `<backendId>/<sessionId>`. */
export interface ChatSessionItem {
  key: string;
  label: string;
  description: string;
  ready: boolean;
}

export type ToChatWebview =
  | { type: 'sessions'; items: ChatSessionItem[]; selected?: string }
  | { type: 'transcript'; key: string; transcript: Transcript; startedAt?: number }
  | { type: 'notice'; message: string };

export const FromChatWebview = z.union([
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('select'), key: z.string() }),
  z.object({
    type: z.literal('send'),
    text: z.string().check(z.maxLength(1_000_000)),
    attachments: z._default(z.array(z.object({ name: z.string(), mime_type: z.string(), base64: z.string() })), []),
  }),
  z.object({ type: z.literal('abort') }),
  z.object({ type: z.literal('retry') }),
  z.object({ type: z.literal('startSession') }),
  z.object({ type: z.literal('copy'), text: z.string() }),
  z.object({ type: z.literal('insert'), text: z.string() }),
]);
export type FromChatWebview = z.infer<typeof FromChatWebview>;
