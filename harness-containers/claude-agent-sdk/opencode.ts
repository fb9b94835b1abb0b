/**
 * The opencode wire shapes this server speaks (opencode's `session/message-v2.ts` and its bus events),
 * as plain types, plus opencode-style identifiers. Only what the platform, `lap` and our chat read:
 * messages `{info, parts}`, the part types text, reasoning, tool, file, step-start and step-finish,
 * and the named errors opencode puts in `info.error`.
 */
import { randomBytes } from 'node:crypto';

export interface Tokens {
  input: number;
  output: number;
  reasoning: number;
  cache: { read: number; write: number };
}

/** opencode's named errors: `{name, data: {message, …}}` (`MessageAbortedError`, `APIError`, `UnknownError`, …). */
export interface NamedError {
  name: string;
  data: { message: string; [key: string]: unknown };
}

export interface UserInfo {
  id: string;
  sessionID: string;
  role: 'user';
  time: { created: number };
  agent: string;
  model: { providerID: string; modelID: string };
}

export interface AssistantInfo {
  id: string;
  sessionID: string;
  role: 'assistant';
  time: { created: number; completed?: number };
  parentID: string;
  modelID: string;
  providerID: string;
  mode: string;
  agent: string;
  path: { cwd: string; root: string };
  cost: number;
  tokens: Tokens;
  finish?: string;
  error?: NamedError;
}

interface PartBase {
  id: string;
  sessionID: string;
  messageID: string;
}

export interface TextPart extends PartBase {
  type: 'text';
  text: string;
  synthetic?: boolean;
  time?: { start: number; end?: number };
}

export interface ReasoningPart extends PartBase {
  type: 'reasoning';
  text: string;
  time: { start: number; end?: number };
}

export interface FilePart extends PartBase {
  type: 'file';
  mime: string;
  filename?: string;
  url: string;
}

export type ToolState =
  | { status: 'pending'; input: Record<string, unknown>; raw: string }
  | { status: 'running'; input: Record<string, unknown>; title?: string; time: { start: number } }
  | {
      status: 'completed';
      input: Record<string, unknown>;
      output: string;
      title: string;
      metadata: Record<string, unknown>;
      time: { start: number; end: number };
      attachments?: FilePart[];
    }
  | { status: 'error'; input: Record<string, unknown>; error: string; time: { start: number; end: number } };

export interface ToolPart extends PartBase {
  type: 'tool';
  callID: string;
  tool: string;
  state: ToolState;
}

export interface StepStartPart extends PartBase {
  type: 'step-start';
}

export interface StepFinishPart extends PartBase {
  type: 'step-finish';
  reason: string;
  cost: number;
  tokens: Tokens;
}

export type Part = TextPart | ReasoningPart | FilePart | ToolPart | StepStartPart | StepFinishPart;

export interface UserMessage {
  info: UserInfo;
  parts: Part[];
}

export interface AssistantMessage {
  info: AssistantInfo;
  parts: Part[];
}

export type Message = UserMessage | AssistantMessage;

export interface SessionInfo {
  id: string;
  projectID: string;
  directory: string;
  title: string;
  version: string;
  time: { created: number; updated: number };
}

/** A bus event as `/event` sends it: `data: {"type":…,"properties":{…}}`. */
export interface BusEvent {
  type: string;
  properties: Record<string, unknown>;
}

export function zeroTokens(): Tokens {
  return { input: 0, output: 0, reasoning: 0, cache: { read: 0, write: 0 } };
}

export const ABORTED_ERROR: NamedError = { name: 'MessageAbortedError', data: { message: 'The operation was aborted.' } };

// ---------------------------------------------------------------------------------------------
// Identifiers: `<prefix>_` + 12 hex digits of (milliseconds × 4096 + a counter) + 14 random base62
// characters, so ids made later sort later (opencode orders parts and messages by id). Session ids
// use the complement of the time, so newer sessions sort first, as opencode's do.

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
let lastMs = 0;
let counter = 0;

export function newId(prefix: 'ses' | 'msg' | 'prt', descending = prefix === 'ses'): string {
  const ms = Date.now();
  counter = ms === lastMs ? counter + 1 : 0;
  lastMs = ms;
  let stamp = (BigInt(ms) << 12n) + BigInt(counter);
  if (descending) stamp = (1n << 48n) - 1n - stamp;
  const hex = (stamp & ((1n << 48n) - 1n)).toString(16).padStart(12, '0');
  const random = [...randomBytes(14)].map((b) => BASE62[b % 62]).join('');
  return `${prefix}_${hex}${random}`;
}
