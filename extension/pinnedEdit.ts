/**
 * "Pin Agent to Workspace": the pinned entry for an agent on a backend, and the edit that writes it into
 * `.vscode/sandbox-agents.json` with jsonc-parser (comments, formatting and other entries untouched).
 * Pure of `vscode`.
 */
import { applyEdits, findNodeAtLocation, modify, parseTree, type FormattingOptions } from 'jsonc-parser';
import type { Agent } from '../protocol/platform';
import { PINNED_HARNESSES, SECRET_LIKE_KEY, type PinnedAgent } from '../protocol/pinned';

/** The entry for an agent. Env values are copied only when plainly not secret; bound env vars
 *  (env_var_hosts) become `secrets` by name, never values. */
export function pinnedFromAgent(agent: Agent, backend: string): PinnedAgent {
  if (!PINNED_HARNESSES.includes(agent.harness_id)) throw new Error(`The harness ${agent.harness_id} cannot be pinned.`);
  const entry: PinnedAgent = { name: agent.name || agent.id, harness: agent.harness_id };
  if (backend !== 'local') entry.backend = backend;
  if (agent.model && agent.model !== 'none') entry.model = agent.model;
  const a = agent as Record<string, unknown>;
  if (typeof a.prompt === 'string' && a.prompt) entry.prompt = a.prompt;
  if (agent.repo_url) entry.repo_url = agent.repo_url;
  if (agent.branch) entry.branch = agent.branch;
  if (backend === 'local' && typeof a.workspace_mode === 'string') entry.workspace = a.workspace_mode as PinnedAgent['workspace'];
  const list = (v: unknown) => (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined);
  const allow = list(a.allow_out);
  const deny = list(a.deny_out);
  if (allow) entry.allow_out = allow;
  if (deny) entry.deny_out = deny;
  const mcp = list(agent.mcp_servers);
  if (mcp) entry.mcp_servers = mcp;
  const hosts = agent.env_var_hosts ?? {};
  const secrets = Object.fromEntries(Object.entries(hosts).map(([k, v]) => [k, [...v]]));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(agent.env_vars ?? {})) {
    if (k in hosts) continue;
    if (SECRET_LIKE_KEY.test(k)) secrets[k] = [];
    else if (typeof v === 'string') env[k] = v;
  }
  if (Object.keys(env).length > 0) entry.env = env;
  if (Object.keys(secrets).length > 0) entry.secrets = secrets;
  return entry;
}

const FORMAT: FormattingOptions = { insertSpaces: true, tabSize: 2, eol: '\n' };

/** The file's new text with `entry` added, or replacing the entry of the same name. */
export function pinEdit(text: string, entry: PinnedAgent, formatting: FormattingOptions = FORMAT): string {
  const base = text.trim() === '' ? '{\n  "agents": []\n}\n' : text;
  const root = parseTree(base, [], { allowTrailingComma: true });
  const agents = root && findNodeAtLocation(root, ['agents']);
  const opts = { formattingOptions: formatting };
  if (!agents || agents.type !== 'array') return applyEdits(base, modify(base, ['agents'], [entry], opts));
  const index = (agents.children ?? []).findIndex((n) => n.type === 'object' && findNodeAtLocation(n, ['name'])?.value === entry.name);
  if (index >= 0) return applyEdits(base, modify(base, ['agents', index], entry, opts));
  const last = agents.children?.at(-1);
  if (!last) return applyEdits(base, modify(base, ['agents', -1], entry, { ...opts, isArrayInsertion: true }));
  // Appended by hand after the last entry: jsonc-parser's insertion would reformat that entry too.
  const lineStart = base.lastIndexOf('\n', last.offset) + 1;
  const indent = /^[ \t]*/.exec(base.slice(lineStart))![0];
  const unit = formatting.insertSpaces === false ? '\t' : ' '.repeat(formatting.tabSize ?? 2);
  const eol = formatting.eol ?? '\n';
  const json = JSON.stringify(entry, null, unit).split('\n').join(`${eol}${indent}`);
  let at = last.offset + last.length;
  const trailing = /^[ \t]*,/.exec(base.slice(at));
  if (trailing) at += trailing[0].length - 1; // a trailing comma already there: write after it
  return `${base.slice(0, at)},${eol}${indent}${json}${base.slice(at + (trailing ? 1 : 0))}`;
}
