/**
 * The agent platform's HTTP API (LiteLLM Agent Platform), declared once.
 *
 * Responses are parsed loosely: unknown fields pass through (`looseObject`), optional fields may be
 * missing or null, unknown message part types survive as generic parts. Request bodies are strict
 * enough to catch our own mistakes. See shared/docs/platform-api.md.
 */
import * as z from 'zod/mini';
import './zod';

export const API_PREFIX = '/api/v1/managed_agents';

/** Harness ids the platform knows; the bridge adds `shell`. */
export const PLATFORM_HARNESSES = ['opencode', 'claude-agent-sdk', 'claude-code', 'codex', 'gemini', 'hermes'] as const;
export const TUI_HARNESSES = new Set(['claude-code', 'codex', 'gemini', 'hermes', 'shell']);

const optionalString = z.nullish(z.string());
const stringList = z.nullish(z.array(z.string()));

// ---------------------------------------------------------------------------------------------
// Errors: `{error: "text"}`, `{error: {error: "text"}}` (nested, possibly deeper), or
// `{error: [zod issues]}`.

const opt = z.optional;
const nul = z.nullish;

export const ErrorIssue = z.looseObject({
  message: opt(z.string()),
  path: opt(z.array(z.union([z.string(), z.number()]))),
  code: opt(z.string()),
});
export type ErrorIssue = z.infer<typeof ErrorIssue>;

export const ErrorBody = z.looseObject({ error: z.unknown() });
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Turns any of the platform's error shapes into one readable line (`field: message; …`). */
export function errorText(value: unknown, depth = 0): string | undefined {
  if (depth > 5 || value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value.trim() || undefined;
  if (Array.isArray(value)) {
    const parts = value
      .map((item) => {
        const issue = ErrorIssue.safeParse(item);
        if (issue.success && issue.data.message) {
          const where = issue.data.path?.length ? `${issue.data.path.join('.')}: ` : '';
          return `${where}${issue.data.message}`;
        }
        return errorText(item, depth + 1);
      })
      .filter((s): s is string => !!s);
    return parts.length ? parts.join('; ') : undefined;
  }
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of ['error', 'message', 'detail', 'details']) {
      const text = errorText(obj[key], depth + 1);
      if (text) return text;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Agents

const time = nul(z.union([z.string(), z.number()]));

export const Agent = z.looseObject({
  id: z.string(),
  name: z.pipe(nul(z.string()), z.transform((v) => v ?? '')),
  model: optionalString,
  prompt: optionalString,
  harness_id: z.pipe(nul(z.string()), z.transform((v) => v ?? 'opencode')),
  supports_tui: nul(z.boolean()),
  repo_url: optionalString,
  branch: optionalString,
  tools: nul(z.array(z.unknown())),
  mcp_servers: nul(z.array(z.unknown())),
  /** Decrypted real values on the platform: never log or display. */
  env_vars: nul(z.record(z.string(), z.unknown())),
  env_var_hosts: nul(z.record(z.string(), z.array(z.string()))),
  allow_out: stringList,
  deny_out: stringList,
  created_at: time,
  session_count: nul(z.number()),
  has_active_session: nul(z.boolean()),
});
export type Agent = z.infer<typeof Agent>;

export const AgentList = z.looseObject({
  data: z.array(Agent),
  total: nul(z.number()),
  limit: nul(z.number()),
  offset: nul(z.number()),
});
export type AgentList = z.infer<typeof AgentList>;

export const AgentSort = z.enum(['created_at', 'name', 'harness_id', 'sessions']);
export const ListAgentsQuery = z.object({
  limit: opt(z.int().check(z.minimum(1), z.maximum(200))),
  offset: opt(z.int().check(z.minimum(0))),
  sort: opt(AgentSort),
  order: opt(z.enum(['asc', 'desc'])),
  search: opt(z.string()),
});
export type ListAgentsQuery = z.infer<typeof ListAgentsQuery>;

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const RESERVED_ENV_VARS = [
  'REPO_URL',
  'BRANCH',
  'LITELLM_API_KEY',
  'LITELLM_API_BASE',
  'LITELLM_DEFAULT_MODEL',
  'AGENT_PROMPT',
  'PORT',
  'GIT_TOKEN',
  'AGENT_REQUIREMENTS',
] as const;

export const EnvVars = z.record(z.string().check(z.regex(ENV_NAME, 'must match ^[A-Za-z_][A-Za-z0-9_]*$')), z.string()).check(
  z.refine((v) => Object.keys(v).length <= 50, 'at most 50 variables'),
  z.refine((v) => !Object.keys(v).some((k) => (RESERVED_ENV_VARS as readonly string[]).includes(k)), `reserved names: ${RESERVED_ENV_VARS.join(', ')}`),
);

/**
 * Whether a binding host is covered by an egress rule, as the platform checks it: an exact host, or
 * a `*.example.com` rule, which covers example.com and its subdomains.
 */
export function hostCoveredBy(host: string, rule: string): boolean {
  const r = rule.trim().toLowerCase();
  const h = host.trim().toLowerCase();
  if (r.startsWith('*.')) return h === r.slice(2) || h.endsWith(r.slice(1));
  return h === r;
}

/**
 * The platform's check of `env_var_hosts` on create: every key names a defined env var, and every
 * host is covered by `allow_out`. Null when fine, else the platform's message.
 */
export function envVarHostsProblem(envVarKeys: Iterable<string>, allowOut: readonly string[], envVarHosts: Record<string, readonly string[]>): string | null {
  const keys = new Set(envVarKeys);
  for (const [key, hosts] of Object.entries(envVarHosts)) {
    if (!keys.has(key)) return `env_var_hosts: '${key}' is not a defined env var`;
    for (const h of hosts) if (!allowOut.some((r) => hostCoveredBy(h, r))) return `env_var_hosts: host '${h}' for '${key}' is not in the agent's allowed hosts`;
  }
  return null;
}

const nonEmpty = () => z.string().check(z.minLength(1));

const agentFields = {
  model: nonEmpty(),
  name: opt(nonEmpty()),
  prompt: opt(z.string()),
  tools: opt(z.array(z.unknown())),
  harness_id: opt(nonEmpty()),
  repo_url: opt(z.string()),
  branch: opt(z.string()),
  mcp_servers: opt(z.array(z.string())),
  allow_out: opt(z.array(z.string())),
  deny_out: opt(z.array(z.string())),
  env_vars: opt(EnvVars),
  env_var_hosts: opt(z.record(z.string(), z.array(z.string()))),
  requirements: opt(z.string()),
  skill_ids: opt(z.array(z.string())),
  template_id: opt(z.string()),
  projects: opt(z.array(z.unknown())),
  pfp_url: opt(z.string()),
  /** Bridge extension: an absolute host folder mounted at /work/repo in the sandbox. */
  workspace_path: opt(z.string()),
  /** Bridge extension: how the workspace reaches the sandbox: `mount` (default with a path), `worktree`
   *  (a git worktree on a branch of its own per session), `clone` (default with a repo_url), `none`. */
  workspace_mode: opt(z.enum(['mount', 'worktree', 'clone', 'none'])),
  /** Bridge extension: sandbox limits (defaults in the bridge's README). */
  resources: opt(
    z.object({
      memory_mb: opt(z.int().check(z.minimum(64), z.maximum(1024 * 1024))),
      cpus: opt(z.number().check(z.gt(0), z.lte(256))),
      pids: opt(z.int().check(z.minimum(16), z.maximum(1_000_000))),
    }),
  ),
};
export const CreateAgentBody = z.object(agentFields);
export type CreateAgentBody = z.infer<typeof CreateAgentBody>;

/** PATCH changes only given fields; `harness_id` and `repo_url` cannot change, and the platform
 *  ignores `tools`, `requirements`, `skill_ids` and `template_id` there, so they are not offered. */
const { harness_id: _h, repo_url: _r, tools: _t, requirements: _q, skill_ids: _s, template_id: _p, ...patchable } = agentFields;
export const PatchAgentBody = z.partial(z.object(patchable));
export type PatchAgentBody = z.infer<typeof PatchAgentBody>;

// ---------------------------------------------------------------------------------------------
// Sessions

export const SESSION_PHASES = [
  'creating_sandbox',
  'pod_pending',
  'pod_running',
  'injecting_files',
  'waiting_harness',
  'harness_ready',
  'cloning_repo',
  'installing_deps',
  'harness_listening',
  'ready',
] as const;

export const KNOWN_SESSION_STATUSES = ['creating', 'ready', 'failed', 'dead', 'stopped', 'deleted'] as const;
/** Statuses after which a session never becomes ready again (without a restart). */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['failed', 'dead', 'stopped', 'deleted']);

export const Session = z.looseObject({
  id: z.string(),
  agent_id: optionalString,
  /** Known values in KNOWN_SESSION_STATUSES; kept open so a new status does not break parsing. */
  status: z.string(),
  phase: optionalString,
  phase_detail: optionalString,
  failure_reason: optionalString,
  title: optionalString,
  title_preview: optionalString,
  sandbox_url: optionalString,
  tty_url: optionalString,
  /** Sensitive: the bearer for /tty. */
  tty_token: optionalString,
  supports_tui: nul(z.boolean()),
  harness_session_id: optionalString,
  response: opt(z.unknown()),
  created_at: time,
  last_seen_at: time,
  idle_timeout_ms: nul(z.number()),
  /** Bridge extension: true when the session runs as a host process without a sandbox. */
  unsandboxed: nul(z.boolean()),
});
export type Session = z.infer<typeof Session>;

export const SessionList = z.array(Session);

export const Attachment = z.object({
  name: opt(z.string()),
  mime_type: z.string(),
  base64: z.string(),
});
export type Attachment = z.infer<typeof Attachment>;

export const CreateSessionBody = z.object({
  title: opt(z.string()),
  initial_prompt: opt(z.string()),
  initial_attachments: opt(z.array(Attachment)),
  env_vars: opt(z.record(z.string(), z.string())),
  skill_ids: opt(z.array(z.string())),
});
export type CreateSessionBody = z.infer<typeof CreateSessionBody>;

export const DeleteSessionReply = z.looseObject({ id: z.string(), status: z.string() });
export type DeleteSessionReply = z.infer<typeof DeleteSessionReply>;

// ---------------------------------------------------------------------------------------------
// Messages (API harnesses)

const PartBase = { id: opt(z.string()), sessionID: opt(z.string()), messageID: opt(z.string()) };

export const TextPart = z.looseObject({ ...PartBase, type: z.literal('text'), text: z._default(z.string(), '') });
export const ReasoningPart = z.looseObject({ ...PartBase, type: z.literal('reasoning'), text: z._default(z.string(), '') });
export const ToolState = z.looseObject({
  status: z._default(z.string(), 'running'),
  input: opt(z.unknown()),
  output: opt(z.unknown()),
  error: opt(z.unknown()),
  title: nul(z.string()),
});
export const ToolPart = z.looseObject({
  ...PartBase,
  type: z.literal('tool'),
  tool: z._default(z.string(), 'tool'),
  callID: opt(z.string()),
  state: z._default(ToolState, { status: 'running' }),
});
/** Any other part type (step-start, step-finish, file, patch, …): kept whole, rendered generically. */
export const OtherPart = z.looseObject({ ...PartBase, type: z.string() });

/** A known type with a malformed body falls through to OtherPart rather than failing the message. */
export const Part = z.union([TextPart, ReasoningPart, ToolPart, OtherPart]);
export type TextPart = z.infer<typeof TextPart>;
export type ReasoningPart = z.infer<typeof ReasoningPart>;
export type ToolPart = z.infer<typeof ToolPart>;
export type OtherPart = z.infer<typeof OtherPart>;
export type Part = z.infer<typeof Part>;
export const isTextPart = (p: Part): p is TextPart => p.type === 'text' && typeof (p as TextPart).text === 'string';
export const isReasoningPart = (p: Part): p is ReasoningPart => p.type === 'reasoning' && typeof (p as ReasoningPart).text === 'string';
export const isToolPart = (p: Part): p is ToolPart => p.type === 'tool' && typeof (p as ToolPart).state === 'object';

export const MessageInfo = z.looseObject({
  id: z.string(),
  role: z.string(),
  sessionID: opt(z.string()),
  time: nul(z.looseObject({ created: nul(z.number()), completed: nul(z.number()) })),
  tokens: nul(
    z.looseObject({
      input: nul(z.number()),
      output: nul(z.number()),
      reasoning: nul(z.number()),
      cache: nul(z.looseObject({ read: nul(z.number()), write: nul(z.number()) })),
    }),
  ),
  cost: nul(z.number()),
  error: nul(z.looseObject({ name: opt(z.string()), data: nul(z.looseObject({ message: opt(z.string()) })) })),
});
export type MessageInfo = z.infer<typeof MessageInfo>;

export const Message = z.looseObject({ info: MessageInfo, parts: z._default(z.array(Part), []) });
export type Message = z.infer<typeof Message>;
export const MessageList = z.array(Message);

/** What the platform accepts as message attachments: images only, at most 10, each at most 5 MiB. */
export const ATTACHMENT_MIME_TYPES: readonly string[] = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
export const ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024;
export const ATTACHMENTS_MAX_COUNT = 10;

/** An attachment as the platform checks it (its `InitialAttachment`): the same messages, for the same input. */
export const CheckedAttachment = z.object({
  name: opt(z.string().check(z.maxLength(255))),
  mime_type: z.string().check(z.refine((m) => ATTACHMENT_MIME_TYPES.includes(m), `mime_type must be one of: ${ATTACHMENT_MIME_TYPES.join(', ')}`)),
  base64: z.string().check(
    z.minLength(1),
    z.refine((s) => s.length * 0.75 <= ATTACHMENT_MAX_BYTES, `attachment exceeds ${ATTACHMENT_MAX_BYTES} bytes`),
  ),
});

/**
 * A message body as the platform checks it server side (`SendMessageBody`): every field optional,
 * `parts` opencode parts (objects), `attachments` checked. Which one is used (attachments, else
 * parts, else text) and the error when none is given are the handler's.
 */
export const SendMessageBody = z.object({
  text: opt(z.string()),
  parts: opt(z.array(z.record(z.string(), z.unknown()))),
  attachments: opt(z.array(CheckedAttachment).check(z.maxLength(ATTACHMENTS_MAX_COUNT))),
});
export type SendMessageBody = z.infer<typeof SendMessageBody>;

export const MessageBody = z
  .object({
    text: opt(z.string()),
    parts: opt(z.array(z.unknown())),
    attachments: opt(z.array(Attachment)),
  })
  .check(z.refine((b) => b.text !== undefined || b.parts !== undefined || b.attachments !== undefined, 'text, parts or attachments is required'));
export type MessageBody = z.infer<typeof MessageBody>;

// ---------------------------------------------------------------------------------------------
// SSE frames of message_stream / events / stream

export const HarnessEvent = z.looseObject({ type: z.string(), properties: opt(z.unknown()) });
export type HarnessEvent = z.infer<typeof HarnessEvent>;

export const StreamFrame = z.union([
  z.looseObject({ type: z.literal('ready') }),
  z.looseObject({ type: z.literal('harness_event'), event: HarnessEvent }),
  z.looseObject({ type: z.literal('done') }),
  z.looseObject({ type: z.literal('error'), message: nul(z.string()) }),
  z.looseObject({ type: z.string() }),
]);
export type StreamFrame = z.infer<typeof StreamFrame>;

// ---------------------------------------------------------------------------------------------
// Models (`GET /api/v1/models`, the LiteLLM / OpenAI list shape)

export const ModelList = z.looseObject({
  data: z.array(z.looseObject({ id: z.string() })),
});
export type ModelList = z.infer<typeof ModelList>;

// ---------------------------------------------------------------------------------------------
// /tty control frames (client → server text frames)

export const TtyResizeFrame = z.object({ type: z.literal('resize'), cols: z.int(), rows: z.int() });
export const TtyPingFrame = z.object({ type: z.literal('ping') });
export const TtyControlFrame = z.union([TtyResizeFrame, TtyPingFrame]);
export type TtyControlFrame = z.infer<typeof TtyControlFrame>;
