import * as z from 'zod/mini';
import './zod';

/** The harnesses the product offers, with what a person needs to choose one. */
export interface HarnessInfo {
  id: string;
  label: string;
  /** `terminal`: a TUI on a PTY (editor tab); `chat`: an API harness (chat sidebar). */
  kind: 'terminal' | 'chat';
  description: string;
  defaultModel: string;
  /** A codicon id. */
  icon: string;
  /** Backends that run it. The platform has no `shell` harness. */
  backends: readonly ('platform' | 'local')[];
}

export const HARNESSES: readonly HarnessInfo[] = [
  { id: 'claude-code', label: 'Claude Code', kind: 'terminal', description: 'terminal · Anthropic\'s coding agent TUI', defaultModel: 'claude-sonnet-4-5', icon: 'sparkle', backends: ['platform', 'local'] },
  { id: 'codex', label: 'Codex', kind: 'terminal', description: 'terminal · OpenAI\'s coding agent TUI', defaultModel: 'gpt-5-codex', icon: 'code', backends: ['platform', 'local'] },
  { id: 'opencode', label: 'opencode', kind: 'chat', description: 'chat · opencode server, any OpenAI-compatible model', defaultModel: 'gpt-5', icon: 'comment-discussion', backends: ['platform', 'local'] },
  { id: 'claude-agent-sdk', label: 'Claude Agent SDK', kind: 'chat', description: 'chat · an agent on the Claude Agent SDK', defaultModel: 'claude-sonnet-4-5', icon: 'hubot', backends: ['platform', 'local'] },
  { id: 'shell', label: 'Shell', kind: 'terminal', description: 'terminal · a login shell in the sandbox (local only)', defaultModel: 'none', icon: 'terminal', backends: ['local'] },
];

export function harnessInfo(id: string): HarnessInfo | undefined {
  return HARNESSES.find((h) => h.id === id);
}

/** Harnesses the local bridge runs (images from harness-containers/). */
export const LOCAL_HARNESSES: readonly string[] = HARNESSES.filter((h) => h.backends.includes('local')).map((h) => h.id);

/** Bridge extension (not on the platform): `GET /bridge/v1/status`. */
export interface BridgeStatus {
  runtime: 'docker' | 'host';
  sandboxed: boolean;
  /** Whether the runtime can start sessions now, and if not, why (a fresh check on every call). */
  available: boolean;
  problem?: string;
  /** Where the Docker runtime looks for the daemon. */
  docker_host?: string;
  version: string;
  pid: number;
}

/**
 * Bridge extension: `GET /bridge/v1/sessions/{id}/blocked` — requests in which the sandbox sent a
 * secret's stub toward a host the secret is not bound to. The stub went out unchanged (never the
 * value); the list lets the user see what an agent tried.
 */
export const BlockedInterception = z.object({
  at: z.string(),
  /** The env var whose stub it was (or the model provider's). */
  credential: z.string(),
  host: z.string(),
  method: z.string(),
  /** Path without its query. */
  path: z.string(),
  where: z.enum(['header', 'body']),
});
export type BlockedInterception = z.infer<typeof BlockedInterception>;
export const BlockedList = z.object({ session_id: z.string(), blocked: z.array(BlockedInterception) });
export type BlockedList = z.infer<typeof BlockedList>;
