/**
 * Between the bridge and the in-sandbox `init` (harness-containers/init): the per-session init
 * config the bridge writes next to the sandbox's egress socket, and the phase reports init sends
 * back over that socket. Everything here is visible inside the sandbox: it holds stub credentials
 * only, never a real key.
 */
import * as z from 'zod/mini';
import './zod';

export const INIT_CONFIG_VERSION = 1;
/** Env var naming the init config file inside the sandbox. */
export const INIT_CONFIG_ENV = 'SANDBOX_AGENTS_INIT';
/** Path on the sandbox's egress socket where init reports phases (origin-form, so never proxied). */
export const PHASE_PATH = '/_sandbox/phase';
/** Model gateway routes on the egress socket: `<base>/anthropic/v1/messages`, `<base>/openai/v1/responses`. */
export const GATEWAY_ROUTES = { anthropic: '/anthropic', openai: '/openai' } as const;
export type Provider = keyof typeof GATEWAY_ROUTES;

export const WorkspaceMode = z.enum(['mount', 'worktree', 'clone', 'none']);
export type WorkspaceMode = z.infer<typeof WorkspaceMode>;

export const InitConfig = z.object({
  version: z.literal(INIT_CONFIG_VERSION),
  session_id: z.string(),
  harness: z.string(),
  model: z.string(),
  prompt: z.nullable(z.string()),
  /** Where the agent works: /work/repo in a container, the workspace or a session folder on the host. */
  workdir: z.string(),
  /** The agent's HOME; init falls back to a temp folder when it is not writable. */
  home: z.string(),
  workspace: z.object({
    mode: WorkspaceMode,
    repo_url: z.optional(z.string()),
    branch: z.optional(z.string()),
  }),
  /** The bridge's socket for this session: model gateway, egress proxy, phase reports. */
  egress_socket: z.string(),
  /** Loopback port init forwards to the egress socket (3128 in a container; 0 = any free port on the host). */
  proxy_port: z.number(),
  /** API harnesses: the socket init listens on so the bridge reaches the harness server. */
  ingress_socket: z.nullable(z.string()),
  /** API harnesses: the harness server's loopback port (4096 in a container; 0 = any free port). */
  harness_port: z.number(),
  /** Stub credentials, one per provider: the gateway swaps them for the real keys. */
  credentials: z.record(z.string(), z.string()),
  /** `shell`: the program to run. */
  shell_command: z.array(z.string()),
  /** Extra plain environment for the harness (the agent's secrets appear here as stubs only). */
  env: z.record(z.string(), z.string()),
  /** The bridge's CA certificate (never its key): TLS clients in the sandbox trust it for the hosts the
   *  egress proxy intercepts. Init adds it to the image's system CAs in a bundle of its own. */
  ca_file: z.optional(z.string()),
  /** Folders searched for the harness CLIs before PATH (host runtime: the extension's node_modules/.bin). */
  bin_dirs: z.array(z.string()),
  /** Where our own sandbox programs are (init.js, claude-agent-sdk-server.js). */
  programs_dir: z.string(),
  /** Folder holding node_modules with @anthropic-ai/claude-agent-sdk, when it is not resolvable normally. */
  sdk_node_path: z.optional(z.string()),
});
export type InitConfig = z.infer<typeof InitConfig>;

/** What init reports (`POST /_sandbox/phase`). `ready` ends bring-up; `failed` ends it with `detail`. */
export const PhaseReport = z.object({
  phase: z.enum(['injecting_files', 'cloning_repo', 'installing_deps', 'waiting_harness', 'harness_listening', 'ready', 'failed']),
  detail: z.optional(z.nullable(z.string())),
});
export type PhaseReport = z.infer<typeof PhaseReport>;

/** Which gateway route a harness's CLI uses for a model. */
export function providerFor(harness: string, model: string): Provider {
  if (harness === 'claude-code' || harness === 'claude-agent-sdk') return 'anthropic';
  if (harness === 'codex') return 'openai';
  return /^(anthropic\/)?claude/i.test(model) ? 'anthropic' : 'openai';
}
