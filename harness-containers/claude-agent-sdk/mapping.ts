/**
 * Between opencode's message model and the Claude Agent SDK.
 *
 * In: an opencode prompt's parts (`text`, `file` with a data/http/file URL, and the Anthropic-format
 * `image` parts the platform sends for attachments) become the content of one SDK user message.
 *
 * Out: `TurnMapper` follows one turn's SDK messages and builds what opencode would have stored and
 * published for it: the user message, then one assistant message per model call (opencode's "step"),
 * each with `step-start`, its `reasoning` (thinking), `text` and `tool` parts and a `step-finish` with
 * that call's tokens; tool results complete the tool parts; the turn's `result` closes the turn (its
 * cost on the last assistant message, since the SDK reports cost per turn, not per call) and maps
 * failures to opencode's named errors. Along the way it emits the bus events opencode emits:
 * `message.updated`, `message.part.updated`, `message.part.delta` (field `text`), `session.status`
 * (busy / retry / idle), `session.error` and `session.idle`.
 *
 * The SDK messages are read loosely (only the fields used here), so a newer SDK that adds message
 * types or fields does not break the mapping.
 */
import {
  ABORTED_ERROR,
  newId,
  zeroTokens,
  type AssistantMessage,
  type FilePart,
  type Message,
  type NamedError,
  type Part,
  type ReasoningPart,
  type TextPart,
  type Tokens,
  type ToolPart,
  type UserMessage,
} from './opencode';

// ---------------------------------------------------------------------------------------------
// In: prompt parts → SDK user content

/** A content block of an SDK (Anthropic API) user message. */
export type SdkContentBlock =
  | { type: 'text'; text: string }
  | { type: 'image'; source: { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string } }
  | { type: 'document'; source: { type: 'base64'; media_type: 'application/pdf'; data: string } };

export const IMAGE_TYPES: readonly string[] = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

export class BadPrompt extends Error {}

export interface PreparedPrompt {
  /** The parts as the user message stores them (ids filled in later). */
  parts: Array<Omit<TextPart, 'id' | 'sessionID' | 'messageID'> | Omit<FilePart, 'id' | 'sessionID' | 'messageID'>>;
  /** The SDK user message content. */
  content: SdkContentBlock[];
}

function dataUrl(url: string): { mime: string; base64: boolean; data: string } | undefined {
  const m = /^data:([^;,]*)((?:;[^;,]*)*),(.*)$/s.exec(url);
  if (!m) return undefined;
  return { mime: m[1] || 'text/plain', base64: /;base64/i.test(m[2] ?? ''), data: m[3] ?? '' };
}

/**
 * Checks and converts a prompt's parts. Throws `BadPrompt` (a 400) for anything opencode would
 * refuse: not an array, empty, a part that is not an object with a known `type`, or missing fields.
 */
export function preparePrompt(raw: unknown): PreparedPrompt {
  if (!Array.isArray(raw)) throw new BadPrompt('parts: expected an array of parts');
  if (raw.length === 0) throw new BadPrompt('parts: at least one part is required');
  const out: PreparedPrompt = { parts: [], content: [] };
  raw.forEach((p: unknown, i) => {
    const where = `parts[${i}]`;
    if (!p || typeof p !== 'object') throw new BadPrompt(`${where}: expected an object`);
    const part = p as Record<string, unknown>;
    switch (part.type) {
      case 'text': {
        if (typeof part.text !== 'string') throw new BadPrompt(`${where}.text: expected a string`);
        if (part.ignored === true) return;
        out.parts.push({ type: 'text', text: part.text, ...(part.synthetic === true ? { synthetic: true } : {}) });
        if (part.text) out.content.push({ type: 'text', text: part.text });
        return;
      }
      case 'file': {
        if (typeof part.url !== 'string' || !part.url) throw new BadPrompt(`${where}.url: expected a URL`);
        if (typeof part.mime !== 'string' || !part.mime) throw new BadPrompt(`${where}.mime: expected a MIME type`);
        const filename = typeof part.filename === 'string' ? part.filename : undefined;
        out.parts.push({ type: 'file', mime: part.mime, url: part.url, ...(filename ? { filename } : {}) });
        out.content.push(...fileContent(part.url, part.mime, filename));
        return;
      }
      case 'image': {
        // The platform's attachments: Anthropic-format image blocks.
        const source = part.source as Record<string, unknown> | undefined;
        if (!source || source.type !== 'base64' || typeof source.data !== 'string' || typeof source.media_type !== 'string') {
          throw new BadPrompt(`${where}.source: expected {type: "base64", media_type, data}`);
        }
        if (!IMAGE_TYPES.includes(source.media_type)) throw new BadPrompt(`${where}.source.media_type: must be one of ${IMAGE_TYPES.join(', ')}`);
        out.parts.push({ type: 'file', mime: source.media_type, filename: 'image', url: `data:${source.media_type};base64,${source.data}` });
        out.content.push({ type: 'image', source: { type: 'base64', media_type: source.media_type, data: source.data } });
        return;
      }
      default:
        throw new BadPrompt(`${where}.type: expected "text", "file" or "image", got ${JSON.stringify(part.type)}`);
    }
  });
  if (out.content.length === 0) throw new BadPrompt('parts: nothing to send (every text part is empty)');
  return out;
}

function fileContent(url: string, mime: string, filename: string | undefined): SdkContentBlock[] {
  const name = filename ?? 'file';
  const data = dataUrl(url);
  if (data) {
    const type = mime || data.mime;
    const base64 = data.base64 ? data.data : Buffer.from(decodeURIComponent(data.data), 'utf8').toString('base64');
    if (IMAGE_TYPES.includes(type)) return [{ type: 'image', source: { type: 'base64', media_type: type, data: base64 } }];
    if (type === 'application/pdf') return [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: base64 } }];
    if (type.startsWith('text/') || type === 'application/json') {
      return [{ type: 'text', text: `<file name=${JSON.stringify(name)}>\n${Buffer.from(base64, 'base64').toString('utf8')}\n</file>` }];
    }
    return [{ type: 'text', text: `[attached ${name} (${type}): this type cannot be read]` }];
  }
  if (url.startsWith('file://')) {
    // Claude Code resolves `@path` mentions in a prompt to the file's content.
    let path = url.slice('file://'.length);
    try {
      path = decodeURIComponent(new URL(url).pathname);
    } catch {
      /* keep the raw path */
    }
    return [{ type: 'text', text: `@${path}` }];
  }
  if (/^https?:\/\//.test(url) && IMAGE_TYPES.includes(mime)) return [{ type: 'image', source: { type: 'url', url } }];
  return [{ type: 'text', text: `[attached ${name}: ${url}]` }];
}

// ---------------------------------------------------------------------------------------------
// Out: one turn's SDK messages → opencode messages and bus events

/** An SDK message, read loosely. */
export interface SdkMessage {
  type: string;
  subtype?: string;
  parent_tool_use_id?: string | null;
  [key: string]: unknown;
}

type Json = Record<string, unknown>;

export interface TurnContext {
  sessionID: string;
  /** The model the turn runs on (without a provider prefix). */
  modelID: string;
  providerID: string;
  /** The agent's working directory. */
  cwd: string;
  /** Publishes a bus event (`properties.sessionID` is added). */
  emit(type: string, properties: Record<string, unknown>): void;
  /** A message joined the session's thread (the user message first, then each assistant message). */
  record(message: Message): void;
  now?: () => number;
}

interface Step {
  message: AssistantMessage;
  /** The parts by the API's content block index, as the stream numbers them. */
  blocks: (Part | undefined)[];
  /** How many complete blocks the SDK has delivered for this call (`assistant` messages, one block each). */
  delivered: number;
  usage: Tokens;
  stopReason: string | undefined;
  open: boolean;
}

/** Anthropic stop reasons → the AI SDK finish reasons opencode stores. */
const FINISH: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  tool_use: 'tool-calls',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  refusal: 'content-filter',
  pause_turn: 'other',
};

export class TurnMapper {
  readonly user: UserMessage;
  readonly assistants: AssistantMessage[] = [];
  private readonly steps = new Map<string, Step>();
  private current: Step | undefined;
  private readonly tools = new Map<string, ToolPart>();
  private readonly now: () => number;
  private aborted = false;
  private apiError: NamedError | undefined;
  private lastStatus: string | undefined;
  private done = false;

  constructor(
    private readonly ctx: TurnContext,
    prompt: PreparedPrompt,
    ids: { messageID?: string; partIDs?: (string | undefined)[] } = {},
  ) {
    this.now = ctx.now ?? Date.now;
    const id = ids.messageID ?? newId('msg');
    this.user = {
      info: {
        id,
        sessionID: ctx.sessionID,
        role: 'user',
        time: { created: this.now() },
        agent: 'build',
        model: { providerID: ctx.providerID, modelID: ctx.modelID },
      },
      parts: prompt.parts.map((p, i) => ({ ...p, id: ids.partIDs?.[i] ?? newId('prt'), sessionID: ctx.sessionID, messageID: id }) as Part),
    };
  }

  /** Publishes the user message and marks the session busy. */
  start(): void {
    this.ctx.record(this.user);
    this.emitMessage(this.user);
    for (const part of this.user.parts) this.emitPart(part);
    this.status({ type: 'busy' });
  }

  /** The turn is being aborted: however it ends, it ends as `MessageAbortedError`. */
  abortRequested(): void {
    this.aborted = true;
  }

  get finished(): boolean {
    return this.done;
  }

  handle(m: SdkMessage): void {
    if (this.done) return;
    // Subagents' own messages (inside a Task tool call) are not the session's thread.
    if (m.parent_tool_use_id) return;
    switch (m.type) {
      case 'stream_event':
        this.onStreamEvent(m.event as Json | undefined);
        return;
      case 'assistant':
        this.onAssistant(m);
        return;
      case 'user':
        this.onUser(m);
        return;
      case 'system':
        if (m.subtype === 'api_retry') {
          const status = typeof m.error_status === 'number' ? ` (HTTP ${m.error_status})` : '';
          this.status({
            type: 'retry',
            attempt: num(m.attempt),
            message: `${String(m.error ?? 'error')}${status}`,
            next: this.now() + num(m.retry_delay_ms),
          });
        }
        return;
      default:
        return;
    }
  }

  /**
   * Ends the turn: with the SDK's `result`, or without one (`failure`: the agent process ended, or
   * an abort that had to close it). Returns the last assistant message, the turn's reply.
   */
  finish(result?: SdkMessage, failure?: string, costBefore = 0): AssistantMessage {
    if (this.done) return this.assistants.at(-1)!;
    this.done = true;
    // A call still open here did not finish: no step-finish for it (opencode writes none either).
    const completed = !this.aborted && result?.subtype === 'success';
    for (const step of this.steps.values()) if (step.open) this.closeStep(step, completed);
    let last = this.assistants.at(-1);
    if (!last) last = this.newStep(undefined, false).message;
    const t = this.now();

    let error: NamedError | undefined;
    if (this.aborted || result?.terminal_reason === 'aborted_streaming' || result?.terminal_reason === 'aborted_tools') error = ABORTED_ERROR;
    else if (this.apiError) error = this.apiError;
    else if (!result) error = { name: 'UnknownError', data: { message: failure ?? 'the agent stopped before finishing the turn' } };
    else if (result.subtype !== 'success') {
      const errors = Array.isArray(result.errors) ? result.errors.map(String).filter((e) => !e.startsWith('[ede_diagnostic]')) : [];
      error = { name: 'UnknownError', data: { message: errors.join('; ') || describeResult(String(result.subtype)) } };
    } else if (result.is_error === true) {
      error = { name: 'APIError', data: { message: String(result.result ?? 'the model API answered with an error'), isRetryable: false } };
    }

    // Tool calls that never got a result end as errors, as opencode ends them.
    for (const tool of this.tools.values()) {
      if (tool.state.status === 'pending' || tool.state.status === 'running') {
        const start = tool.state.status === 'running' ? tool.state.time.start : t;
        tool.state = { status: 'error', input: tool.state.input, error: 'Tool execution aborted', time: { start, end: t } };
        this.emitPart(tool);
      }
    }

    if (result && typeof result.total_cost_usd === 'number') last.info.cost += Math.max(0, result.total_cost_usd - costBefore);
    if (error) last.info.error = error;
    for (const a of this.assistants) {
      if (a.info.time.completed === undefined || a === last) {
        a.info.time.completed ??= t;
        this.emitMessage(a);
      }
    }
    if (error) this.ctx.emit('session.error', { sessionID: this.ctx.sessionID, error });
    this.status({ type: 'idle' });
    this.ctx.emit('session.idle', { sessionID: this.ctx.sessionID });
    return last;
  }

  // -------------------------------------------------------------------------------------------

  private onStreamEvent(event: Json | undefined): void {
    if (!event) return;
    switch (event.type) {
      case 'message_start': {
        const message = (event.message ?? {}) as Json;
        const step = this.stepFor(typeof message.id === 'string' ? message.id : undefined);
        addUsage(step.usage, message.usage);
        return;
      }
      case 'content_block_start': {
        const step = this.current;
        if (!step || typeof event.index !== 'number') return;
        const part = this.partForBlock(step, (event.content_block ?? {}) as Json, false);
        step.blocks[event.index] = part;
        if (part) this.emitPart(part);
        return;
      }
      case 'content_block_delta': {
        const part = typeof event.index === 'number' ? this.current?.blocks[event.index] : undefined;
        const delta = (event.delta ?? {}) as Json;
        if (!part) return;
        if ((part.type === 'text' && delta.type === 'text_delta') || (part.type === 'reasoning' && delta.type === 'thinking_delta')) {
          const text = String(delta.type === 'text_delta' ? delta.text : delta.thinking);
          if (!text) return;
          part.text += text;
          this.ctx.emit('message.part.delta', { sessionID: this.ctx.sessionID, messageID: part.messageID, partID: part.id, field: 'text', delta: text });
        } else if (part.type === 'tool' && part.state.status === 'pending' && delta.type === 'input_json_delta') {
          part.state.raw += String(delta.partial_json ?? '');
        }
        return;
      }
      case 'content_block_stop': {
        const part = typeof event.index === 'number' ? this.current?.blocks[event.index] : undefined;
        if (!part) return;
        if (part.type === 'text' || part.type === 'reasoning') {
          part.time = { start: part.time?.start ?? this.now(), end: this.now() };
        } else if (part.type === 'tool' && part.state.status === 'pending') {
          part.state = { status: 'running', input: parseInput(part.state.raw), time: { start: this.now() } };
        } else {
          return;
        }
        this.emitPart(part);
        return;
      }
      case 'message_delta': {
        const step = this.current;
        if (!step) return;
        const delta = (event.delta ?? {}) as Json;
        if (typeof delta.stop_reason === 'string') step.stopReason = delta.stop_reason;
        const usage = (event.usage ?? {}) as Json;
        if (typeof usage.output_tokens === 'number') step.usage.output = usage.output_tokens;
        if (typeof usage.input_tokens === 'number') step.usage.input = usage.input_tokens;
        if (typeof usage.cache_read_input_tokens === 'number') step.usage.cache.read = usage.cache_read_input_tokens;
        if (typeof usage.cache_creation_input_tokens === 'number') step.usage.cache.write = usage.cache_creation_input_tokens;
        return;
      }
      case 'message_stop':
        // After an interrupt the SDK still closes the call's stream: that call did not finish.
        if (this.current?.open) this.closeStep(this.current, !this.aborted);
        return;
      default:
        return;
    }
  }

  /** A complete block (the SDK sends one per `assistant` message), authoritative over the stream. */
  private onAssistant(m: SdkMessage): void {
    const message = (m.message ?? {}) as Json;
    const id = typeof message.id === 'string' ? message.id : undefined;
    const step = (id && this.steps.get(id)) || this.stepFor(id);
    if (m.error !== undefined) {
      // A synthetic message standing for a failed API call: its text is the error, not a reply.
      const text = blocksOf(message)
        .map((b) => (b.type === 'text' ? String(b.text ?? '') : ''))
        .join('')
        .trim();
      this.apiError = { name: 'APIError', data: { message: text || String(m.error), isRetryable: false } };
      return;
    }
    if (m.aborted === true) this.aborted = true;
    if (step.stopReason === undefined && typeof message.stop_reason === 'string') step.stopReason = message.stop_reason;
    if (step.usage.input === 0) addUsage(step.usage, message.usage);
    for (const block of blocksOf(message)) {
      const index = step.delivered++;
      const existing = step.blocks[index];
      if (!existing) {
        const part = this.partForBlock(step, block, true);
        step.blocks[index] = part;
        if (part) this.emitPart(part);
        continue;
      }
      if (existing.type === 'text' && block.type === 'text' && typeof block.text === 'string' && block.text !== existing.text) {
        existing.text = block.text;
        this.emitPart(existing);
      } else if (existing.type === 'reasoning' && block.type === 'thinking' && typeof block.thinking === 'string' && block.thinking && block.thinking !== existing.text) {
        existing.text = block.thinking;
        this.emitPart(existing);
      } else if (existing.type === 'tool' && isToolUse(block) && existing.state.status === 'pending') {
        existing.state = { status: 'running', input: asInput(block.input), time: { start: this.now() } };
        this.emitPart(existing);
      }
    }
  }

  /** Tool results come back as user messages with `tool_result` blocks. */
  private onUser(m: SdkMessage): void {
    const message = (m.message ?? {}) as Json;
    for (const block of blocksOf(message)) {
      if (block.type !== 'tool_result' || typeof block.tool_use_id !== 'string') continue;
      const tool = this.tools.get(block.tool_use_id);
      if (!tool) continue;
      const t = this.now();
      const input = tool.state.status === 'pending' ? parseInput(tool.state.raw) : tool.state.input;
      const start = tool.state.status === 'running' ? tool.state.time.start : t;
      const { text, attachments } = resultContent(block.content, tool);
      if (block.is_error === true) {
        tool.state = { status: 'error', input, error: text, time: { start, end: t } };
      } else {
        tool.state = {
          status: 'completed',
          input,
          output: text,
          title: toolTitle(tool.tool, input),
          metadata: {},
          time: { start, end: t },
          ...(attachments.length ? { attachments } : {}),
        };
      }
      this.emitPart(tool);
    }
  }

  // -------------------------------------------------------------------------------------------

  /** The step (assistant message) of an API message id, started when new. */
  private stepFor(apiId: string | undefined): Step {
    const known = apiId ? this.steps.get(apiId) : undefined;
    if (known) {
      this.current = known;
      return known;
    }
    if (this.current?.open) this.closeStep(this.current, true);
    const step = this.newStep(apiId, true);
    this.current = step;
    this.status({ type: 'busy' });
    return step;
  }

  private newStep(apiId: string | undefined, started: boolean): Step {
    const id = newId('msg');
    const message: AssistantMessage = {
      info: {
        id,
        sessionID: this.ctx.sessionID,
        role: 'assistant',
        time: { created: this.now() },
        parentID: this.user.info.id,
        modelID: this.ctx.modelID,
        providerID: this.ctx.providerID,
        mode: 'build',
        agent: 'build',
        path: { cwd: this.ctx.cwd, root: this.ctx.cwd },
        cost: 0,
        tokens: zeroTokens(),
      },
      parts: [],
    };
    const step: Step = { message, blocks: [], delivered: 0, usage: zeroTokens(), stopReason: undefined, open: true };
    this.steps.set(apiId ?? id, step);
    this.assistants.push(message);
    this.ctx.record(message);
    this.emitMessage(message);
    if (started) this.addPart(step, { type: 'step-start' });
    else step.open = false;
    return step;
  }

  /** Ends a model call; `completed`: it ran to its end (it gets a `step-finish` with its tokens). */
  private closeStep(step: Step, completed: boolean): void {
    step.open = false;
    const tokens: Tokens = { ...step.usage, cache: { ...step.usage.cache } };
    step.message.info.tokens = tokens;
    step.message.info.time.completed = this.now();
    if (completed) {
      const reason = FINISH[step.stopReason ?? ''] ?? (step.stopReason ? 'other' : 'unknown');
      step.message.info.finish = reason;
      this.addPart(step, { type: 'step-finish', reason, cost: 0, tokens });
    }
    this.emitMessage(step.message);
  }

  private addPart(step: Step, fields: { type: 'step-start' } | { type: 'step-finish'; reason: string; cost: number; tokens: Tokens }): void {
    const part = { ...fields, id: newId('prt'), sessionID: this.ctx.sessionID, messageID: step.message.info.id } as Part;
    step.message.parts.push(part);
    this.emitPart(part);
  }

  /** A part for a content block (`complete`: from an `assistant` message, not a stream start). */
  private partForBlock(step: Step, block: Json, complete: boolean): Part | undefined {
    const base = { id: newId('prt'), sessionID: this.ctx.sessionID, messageID: step.message.info.id };
    const t = this.now();
    let part: Part | undefined;
    if (block.type === 'text') {
      part = { ...base, type: 'text', text: String(block.text ?? ''), time: complete ? { start: t, end: t } : { start: t } };
    } else if (block.type === 'thinking') {
      part = { ...base, type: 'reasoning', text: String(block.thinking ?? ''), time: complete ? { start: t, end: t } : { start: t } } satisfies ReasoningPart;
    } else if (isToolUse(block)) {
      const tool: ToolPart = {
        ...base,
        type: 'tool',
        callID: block.id,
        tool: block.name,
        state: complete ? { status: 'running', input: asInput(block.input), time: { start: t } } : { status: 'pending', input: {}, raw: '' },
      };
      this.tools.set(block.id, tool);
      part = tool;
    }
    if (part) step.message.parts.push(part);
    return part;
  }

  private status(status: { type: string; [key: string]: unknown }): void {
    if (status.type === 'busy' && this.lastStatus === 'busy') return;
    this.lastStatus = status.type;
    this.ctx.emit('session.status', { sessionID: this.ctx.sessionID, status });
  }

  private emitMessage(message: Message): void {
    this.ctx.emit('message.updated', { sessionID: this.ctx.sessionID, info: message.info });
  }

  private emitPart(part: Part): void {
    this.ctx.emit('message.part.updated', { sessionID: this.ctx.sessionID, part, time: this.now() });
  }
}

// ---------------------------------------------------------------------------------------------

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function blocksOf(message: Json): Json[] {
  const content = message.content;
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? content.filter((b): b is Json => !!b && typeof b === 'object') : [];
}

function isToolUse(block: Json): block is Json & { id: string; name: string } {
  return (block.type === 'tool_use' || block.type === 'server_tool_use' || block.type === 'mcp_tool_use') && typeof block.id === 'string' && typeof block.name === 'string';
}

function asInput(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function parseInput(raw: string): Record<string, unknown> {
  if (!raw.trim()) return {};
  try {
    return asInput(JSON.parse(raw));
  } catch {
    return {};
  }
}

function addUsage(tokens: Tokens, usage: unknown): void {
  if (!usage || typeof usage !== 'object') return;
  const u = usage as Json;
  if (typeof u.input_tokens === 'number') tokens.input = u.input_tokens;
  if (typeof u.output_tokens === 'number') tokens.output = u.output_tokens;
  if (typeof u.cache_read_input_tokens === 'number') tokens.cache.read = u.cache_read_input_tokens;
  if (typeof u.cache_creation_input_tokens === 'number') tokens.cache.write = u.cache_creation_input_tokens;
}

/** A tool result's text, and its images as file attachments. */
function resultContent(content: unknown, tool: ToolPart): { text: string; attachments: FilePart[] } {
  if (typeof content === 'string') return { text: content, attachments: [] };
  const texts: string[] = [];
  const attachments: FilePart[] = [];
  for (const item of Array.isArray(content) ? content : []) {
    if (!item || typeof item !== 'object') continue;
    const b = item as Json;
    if (b.type === 'text' && typeof b.text === 'string') texts.push(b.text);
    else if (b.type === 'image') {
      const source = (b.source ?? {}) as Json;
      if (source.type === 'base64' && typeof source.data === 'string' && typeof source.media_type === 'string') {
        attachments.push({ id: newId('prt'), sessionID: tool.sessionID, messageID: tool.messageID, type: 'file', mime: source.media_type, url: `data:${source.media_type};base64,${source.data}` });
      }
    }
  }
  return { text: texts.join('\n'), attachments };
}

/** A short title for a tool call, as opencode shows one (the command, file or pattern it works on). */
export function toolTitle(tool: string, input: Record<string, unknown>): string {
  for (const key of ['description', 'file_path', 'path', 'command', 'pattern', 'url', 'query', 'prompt']) {
    const v = input[key];
    if (typeof v === 'string' && v.trim()) return v.trim().split('\n')[0]!.slice(0, 120);
  }
  return tool;
}

function describeResult(subtype: string): string {
  switch (subtype) {
    case 'error_max_turns':
      return 'the agent reached its maximum number of turns';
    case 'error_max_budget_usd':
      return 'the agent reached its budget';
    case 'error_during_execution':
      return 'the agent failed while running the turn';
    default:
      return `the turn ended with ${subtype}`;
  }
}
