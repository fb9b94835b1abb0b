/**
 * "Ensure" for a pinned agent: make the agent on its backend exactly as pinned. Match by name; create it if
 * missing; PATCH the fields that differ; if an immutable field (harness, repo) differs, recreating is the
 * only way and the caller is asked first; on a shared platform the caller is shown what will change before
 * anything does. Pure of `vscode`: the questions are callbacks, so the same code runs against the platform
 * test server and the bridge in tests.
 */
import { harnessInfo } from '../protocol/harnesses';
import type { Agent, CreateAgentBody, PatchAgentBody } from '../protocol/platform';
import type { PinnedAgent } from '../protocol/pinned';
import type { PlatformClient } from './platformClient';

/** What the file cannot hold, resolved by the caller: the prompt file's text, the secrets' values. */
export interface PinnedResolved {
  /** The prompt text (inline, or read from the workspace file). */
  prompt?: string;
  /** Values of the agent's `secrets` (from SecretStorage), by name. */
  secretValues: Readonly<Record<string, string>>;
  /** Local backend: the workspace folder the sandbox works on. */
  workspacePath?: string;
}

/** The agent body the pinned entry stands for. Secrets become env vars bound to their hosts: under their
 *  own name, or under the env name of each `{"secret": NAME}` reference to them. */
export function desiredBody(pinned: PinnedAgent, resolved: PinnedResolved, backendKind: 'local' | 'platform'): CreateAgentBody {
  const env: Record<string, string> = {};
  const hosts: Record<string, string[]> = {};
  const referenced = new Set<string>();
  for (const [name, value] of Object.entries(pinned.env ?? {})) {
    if (typeof value === 'string') env[name] = value;
    else {
      const secret = resolved.secretValues[value.secret];
      if (secret === undefined) throw new Error(`No value for the secret ${value.secret}.`);
      env[name] = secret;
      referenced.add(value.secret);
      const bound = pinned.secrets?.[value.secret];
      if (bound) hosts[name] = [...bound];
    }
  }
  for (const [name, bound] of Object.entries(pinned.secrets ?? {})) {
    if (referenced.has(name) || name in env) continue;
    const secret = resolved.secretValues[name];
    if (secret === undefined) throw new Error(`No value for the secret ${name}.`);
    env[name] = secret;
    hosts[name] = [...bound];
  }
  const body: CreateAgentBody = {
    name: pinned.name,
    harness_id: pinned.harness,
    model: pinned.model ?? harnessInfo(pinned.harness)?.defaultModel ?? 'none',
    // A secret is only useful where it may be sent: its hosts join the allow list (the platform
    // refuses env_var_hosts outside it).
    allow_out: [...new Set([...(pinned.allow_out ?? []), ...Object.values(hosts).flat()])],
    deny_out: pinned.deny_out ?? [],
    mcp_servers: pinned.mcp_servers ?? [],
    env_vars: env,
    env_var_hosts: hosts,
  };
  if (resolved.prompt !== undefined) body.prompt = resolved.prompt;
  if (pinned.repo_url) body.repo_url = pinned.repo_url;
  if (pinned.branch) body.branch = pinned.branch;
  if (backendKind === 'local') {
    if (pinned.workspace) body.workspace_mode = pinned.workspace;
    if (resolved.workspacePath && pinned.workspace !== 'none' && pinned.workspace !== 'clone') body.workspace_path = resolved.workspacePath;
    if (pinned.resources) body.resources = { ...pinned.resources };
  }
  return body;
}

/** One field that differs. Values of env vars are never carried: a change reads "changed". */
export interface FieldChange {
  field: string;
  from: string;
  to: string;
}

export type EnsurePlan =
  | { action: 'create'; body: CreateAgentBody }
  | { action: 'none'; agent: Agent }
  | { action: 'patch'; agent: Agent; patch: PatchAgentBody; changes: FieldChange[] }
  | { action: 'recreate'; agent: Agent; body: CreateAgentBody; changes: FieldChange[]; immutable: FieldChange[] };

const IMMUTABLE = ['harness_id', 'repo_url'] as const;
const PATCHABLE = ['model', 'prompt', 'branch', 'mcp_servers', 'allow_out', 'deny_out', 'env_vars', 'env_var_hosts', 'workspace_path', 'workspace_mode', 'resources'] as const;

/** What ensure would do, given the agent of that name on the backend (if any). */
export function planEnsure(desired: CreateAgentBody, existing: Agent | undefined): EnsurePlan {
  if (!existing) return { action: 'create', body: desired };
  const current = existing as Record<string, unknown>;
  const want = desired as Record<string, unknown>;
  const changes: FieldChange[] = [];
  const patch: Record<string, unknown> = {};
  for (const field of PATCHABLE) {
    if (!(field in want)) continue;
    if (!same(normalize(field, current[field]), normalize(field, want[field]))) {
      patch[field] = want[field];
      changes.push(describe(field, current[field], want[field]));
    }
  }
  const immutable: FieldChange[] = [];
  for (const field of IMMUTABLE) {
    if ((current[field] ?? undefined) !== (want[field] ?? undefined)) immutable.push(describe(field, current[field], want[field]));
  }
  if (immutable.length > 0) return { action: 'recreate', agent: existing, body: desired, changes: [...immutable, ...changes], immutable };
  if (changes.length === 0) return { action: 'none', agent: existing };
  return { action: 'patch', agent: existing, patch: patch as PatchAgentBody, changes };
}

function normalize(field: string, v: unknown): unknown {
  if (v === null || v === undefined) {
    if (field === 'env_vars' || field === 'env_var_hosts') return {};
    if (field === 'mcp_servers' || field === 'allow_out' || field === 'deny_out') return [];
    if (field === 'prompt') return '';
    return undefined;
  }
  return v;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}

function describe(field: string, from: unknown, to: unknown): FieldChange {
  if (field === 'env_vars') {
    // Names only: values may be secrets (the platform returns them decrypted).
    const a = (from ?? {}) as Record<string, string>;
    const b = (to ?? {}) as Record<string, string>;
    const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    const parts = names.filter((n) => a[n] !== b[n]).map((n) => (!(n in a) ? `+${n}` : !(n in b) ? `-${n}` : `${n} changed`));
    return { field, from: `${Object.keys(a).length} variable(s)`, to: parts.join(', ') };
  }
  return { field, from: show(from), to: show(to) };
}

function show(v: unknown): string {
  if (v === undefined || v === null || v === '') return '(none)';
  const s = typeof v === 'string' ? v : JSON.stringify(sortKeys(v));
  return s.length > 80 ? `${s.slice(0, 77)}…` : s;
}

export interface EnsureQuestions {
  /** An immutable field changed: may the agent be deleted and created again? */
  confirmRecreate(plan: Extract<EnsurePlan, { action: 'recreate' }>): Promise<boolean>;
  /** A shared (platform) agent would change: is that all right? Not asked for local agents. */
  confirmChange(plan: Extract<EnsurePlan, { action: 'patch' }>): Promise<boolean>;
}

export type EnsureResult = { outcome: 'created' | 'patched' | 'recreated' | 'unchanged'; agent: Agent } | { outcome: 'declined' };

/** Makes the backend's agent match `desired`; `shared` is true for platform backends. */
export async function ensureAgent(client: PlatformClient, desired: CreateAgentBody, questions: EnsureQuestions, shared: boolean, signal?: AbortSignal): Promise<EnsureResult> {
  const existing = await client.findAgentByName(desired.name!, { signal });
  const plan = planEnsure(desired, existing);
  switch (plan.action) {
    case 'create':
      return { outcome: 'created', agent: await client.createAgent(plan.body, { signal }) };
    case 'none':
      return { outcome: 'unchanged', agent: plan.agent };
    case 'patch':
      if (shared && !(await questions.confirmChange(plan))) return { outcome: 'declined' };
      return { outcome: 'patched', agent: await client.patchAgent(plan.agent.id, plan.patch, { signal }) };
    case 'recreate': {
      if (!(await questions.confirmRecreate(plan))) return { outcome: 'declined' };
      await client.deleteAgent(plan.agent.id, { signal });
      return { outcome: 'recreated', agent: await client.createAgent(plan.body, { signal }) };
    }
  }
}
