/**
 * Per-agent secrets (a GitHub token, a service's API key): entered once, kept in VS Code's
 * SecretStorage, and set on the agent the platform's way — `env_vars` values bound to hosts by
 * `env_var_hosts`. Sandboxes only ever see stubs; the bridge (or the platform's vault) swaps a stub
 * for its value on requests toward the bound hosts only. The local bridge keeps values in memory
 * only, so they are handed to it again whenever a bridge (re)starts.
 */
import * as vscode from 'vscode';
import * as z from 'zod/mini';
import '../protocol/zod';
import type { BlockedList } from '../protocol/harnesses';
import { ENV_NAME, RESERVED_ENV_VARS, hostCoveredBy, type Agent } from '../protocol/platform';
import type { Backend } from './backends';
import { CancelledError, InvalidInputError, PlatformError } from './errors';
import type { Logger } from './logger';
import type { PlatformClient } from './platformClient';
import type { Secrets } from './secrets';

/** Scripted use (tests, other extensions): no prompts. An empty `value` removes the secret. */
export interface SetAgentSecretArgs {
  backendId: string;
  agentId: string;
  name: string;
  value: string;
  /** Hosts the value may be sent to (`github.com`, `*.example.com`). Required to set a value. */
  hosts?: string[];
  /**
   * The agent's egress allow-list when it has none yet (a bound host must be inside `allow_out`: the
   * platform's rule). Default: the bound hosts.
   */
  allowOut?: string[];
}

/** agent id → secret name → value, one SecretStorage entry per backend. */
const Stored = z.record(z.string(), z.record(z.string(), z.string()));
type Stored = z.infer<typeof Stored>;

/** Hosts offered for well-known secret names. */
const KNOWN_HOSTS: Record<string, string[]> = {
  GITHUB_TOKEN: ['github.com', 'api.github.com', '*.githubusercontent.com'],
  GH_TOKEN: ['github.com', 'api.github.com', '*.githubusercontent.com'],
  GITLAB_TOKEN: ['gitlab.com'],
  NPM_TOKEN: ['registry.npmjs.org'],
  HF_TOKEN: ['huggingface.co'],
};

/** Offered when an agent gets its first allow-list: the package registries agents commonly need. */
const COMMON_EGRESS = ['registry.npmjs.org', 'pypi.org', 'files.pythonhosted.org'];

const HOST_RE = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:\d{1,5})?$/;

export function checkSecretName(v: string): string | undefined {
  const name = v.trim();
  if (!name) return 'Enter a variable name, e.g. GITHUB_TOKEN';
  if (!ENV_NAME.test(name)) return 'Use letters, digits and underscores, not starting with a digit (an environment variable name)';
  if ((RESERVED_ENV_VARS as readonly string[]).includes(name)) return `${name} is reserved; reserved names: ${RESERVED_ENV_VARS.join(', ')}`;
  return undefined;
}

/** Typed text → hosts (comma- or space-separated). */
export function parseHosts(v: string): { hosts: string[]; problem?: string } {
  return checkHosts(v.split(/[\s,]+/));
}

export function checkHosts(list: readonly string[]): { hosts: string[]; problem?: string } {
  const hosts = list.map((h) => h.trim().toLowerCase()).filter(Boolean);
  if (hosts.length === 0) return { hosts, problem: 'Enter at least one host the value may be sent to, e.g. github.com' };
  const bad = hosts.find((h) => !HOST_RE.test(h) && !/^\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$/.test(h));
  return bad ? { hosts, problem: `"${bad}" is not a host name (use example.com, *.example.com or an IP address)` } : { hosts };
}

export class AgentSecrets {
  constructor(
    private readonly secrets: Secrets,
    private readonly log: Logger,
  ) {}

  private async read(backendId: string): Promise<Stored> {
    const raw = await this.secrets.getAgentSecrets(backendId);
    if (!raw) return {};
    try {
      const parsed = Stored.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : {};
    } catch {
      return {};
    }
  }

  private async write(backendId: string, stored: Stored): Promise<void> {
    for (const id of Object.keys(stored)) if (Object.keys(stored[id]).length === 0) delete stored[id];
    if (Object.keys(stored).length === 0) await this.secrets.deleteAgentSecrets(backendId);
    else await this.secrets.setAgentSecrets(backendId, JSON.stringify(stored));
  }

  /** Names of the secrets kept for an agent (never their values). */
  async names(backendId: string, agentId: string): Promise<string[]> {
    return Object.keys((await this.read(backendId))[agentId] ?? {}).sort();
  }

  /**
   * Sets (or with an empty value removes) one secret: on the agent first (the backend validates
   * names and hosts), then in SecretStorage.
   */
  async set(backend: Backend, agent: Agent, name: string, value: string, hosts: string[] | undefined, allowOut?: string[]): Promise<Agent> {
    const problem = checkSecretName(name);
    if (problem) throw new InvalidInputError(`Secret name "${name}": ${problem}.`);
    if (value && !hosts?.length) throw new InvalidInputError(`Secret ${name} needs at least one host it may be sent to (e.g. github.com).`);
    if (hosts) {
      const parsed = checkHosts(hosts);
      if (parsed.problem) throw new InvalidInputError(`Secret ${name}: ${parsed.problem}.`);
      hosts = parsed.hosts;
    }
    const stored = await this.read(backend.id);
    const mine = { ...(stored[agent.id] ?? {}) };
    if (value) mine[name] = value;
    else delete mine[name];
    const bound = { ...(agent.env_var_hosts ?? {}) };
    if (value) bound[name] = hosts!;
    else delete bound[name];
    const env = { ...currentValues(agent), ...mine };
    if (!value) delete env[name];
    // A bound host must be inside allow_out (the platform's rule): an agent without an allow-list gets one.
    const uncovered = value ? hosts!.filter((h) => !(agent.allow_out ?? []).some((r) => hostCoveredBy(h, r))) : [];
    const allow = uncovered.length ? [...new Set([...(agent.allow_out?.length ? agent.allow_out : (allowOut ?? [])), ...uncovered])] : undefined;
    const updated = await backend.client.patchAgent(agent.id, {
      env_vars: env,
      env_var_hosts: Object.fromEntries(Object.entries(bound).filter(([n]) => n in env)),
      ...(allow ? { allow_out: allow } : {}),
    });
    stored[agent.id] = mine;
    await this.write(backend.id, stored);
    this.log.info(`secret ${name} ${value ? 'set' : 'removed'} on agent ${agent.id} (${backend.label})`);
    return updated;
  }

  /**
   * A (re)started local bridge has lost every value: hand over those kept here. Agents that no
   * longer exist are forgotten. Returns how many agents got their secrets back.
   */
  async resupply(backendId: string, client: PlatformClient): Promise<number> {
    const stored = await this.read(backendId);
    let n = 0;
    let changed = false;
    for (const [agentId, values] of Object.entries(stored)) {
      let agent: Agent;
      try {
        agent = await client.getAgent(agentId);
      } catch (err) {
        if (err instanceof PlatformError && err.status === 404) {
          delete stored[agentId];
          changed = true;
          continue;
        }
        throw err;
      }
      const names = new Set(Object.keys(agent.env_var_hosts ?? {}));
      const env = { ...currentValues(agent) };
      for (const [name, value] of Object.entries(values)) if (names.has(name) || name in (agent.env_vars ?? {})) env[name] = value;
      await client.patchAgent(agent.id, { env_vars: env, env_var_hosts: agent.env_var_hosts ?? {} });
      n++;
    }
    if (changed) await this.write(backendId, stored);
    if (n) this.log.info(`agent secrets handed to the bridge for ${n} agent(s)`);
    return n;
  }

  /** The command: which secret, its value (hidden) and the hosts it may go to; or remove one. */
  async prompt(backend: Backend, agent: Agent, args?: Partial<SetAgentSecretArgs>): Promise<{ name: string; removed: boolean } | undefined> {
    if (args?.name !== undefined && args.value !== undefined) {
      await this.set(backend, agent, args.name.trim(), args.value, args.hosts, args.allowOut);
      return { name: args.name.trim(), removed: !args.value };
    }
    const existing = await this.names(backend.id, agent.id);
    type Item = vscode.QuickPickItem & { name?: string; remove?: boolean };
    const items: Item[] = [
      { label: '$(add) New secret…' },
      ...existing.map((name) => ({ label: name, description: (agent.env_var_hosts?.[name] ?? []).join(', '), detail: 'Replace the value', name })),
      ...existing.map((name) => ({ label: `$(trash) Remove ${name}`, name, remove: true })),
    ];
    const title = `Secrets of ${agent.name || agent.id}`;
    const picked = existing.length ? await vscode.window.showQuickPick(items, { title, ignoreFocusOut: true, placeHolder: 'The sandbox sees only a stub; the value goes only to the hosts you name' }) : items[0];
    if (!picked) throw new CancelledError();
    if (picked.remove && picked.name) {
      await this.set(backend, agent, picked.name, '', undefined);
      return { name: picked.name, removed: true };
    }
    const name =
      picked.name ??
      (await vscode.window.showInputBox({ title, prompt: 'Environment variable name in the sandbox', placeHolder: 'GITHUB_TOKEN', ignoreFocusOut: true, validateInput: checkSecretName }))?.trim();
    if (!name) throw new CancelledError();
    const value = await vscode.window.showInputBox({ title, prompt: `Value of ${name} (kept in VS Code's secret storage; the sandbox sees only a stub)`, password: true, ignoreFocusOut: true, validateInput: (v) => (v.trim() ? undefined : 'Enter the value') });
    if (!value) throw new CancelledError();
    const suggested = agent.env_var_hosts?.[name] ?? KNOWN_HOSTS[name] ?? [];
    const hostText = await vscode.window.showInputBox({
      title,
      prompt: `Hosts ${name} may be sent to (comma-separated); toward any other host the sandbox's request keeps the stub`,
      value: suggested.join(', '),
      placeHolder: 'github.com, api.github.com',
      ignoreFocusOut: true,
      validateInput: (v) => parseHosts(v).problem,
    });
    if (hostText === undefined) throw new CancelledError();
    const hosts = parseHosts(hostText).hosts;
    let allowOut: string[] | undefined;
    if (!agent.allow_out?.length) {
      const allowText = await vscode.window.showInputBox({
        title,
        prompt: `A secret's hosts must be inside the agent's egress allow-list, so ${agent.name || agent.id} gets one now: which hosts may it reach? (comma-separated; everything else is refused)`,
        value: [...new Set([...hosts, ...COMMON_EGRESS])].join(', '),
        ignoreFocusOut: true,
        validateInput: (v) => parseHosts(v).problem,
      });
      if (allowText === undefined) throw new CancelledError();
      allowOut = parseHosts(allowText).hosts;
    }
    await this.set(backend, agent, name, value.trim(), hosts, allowOut);
    return { name, removed: false };
  }
}

/** Values the backend holds that are real (a restarted bridge answers "" for values it lost). */
function currentValues(agent: Agent): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(agent.env_vars ?? {})) if (typeof v === 'string' && v !== '') out[k] = v;
  return out;
}

/** The session's blocked interceptions as a list (newest first); nothing blocked → a message saying so. */
export function showBlockedRequests(list: BlockedList, sessionLabel: string, info: (message: string) => void): void {
  if (list.blocked.length === 0) {
    info(`Nothing blocked in ${sessionLabel}: its sandbox has sent no secret's stub to a host the secret is not bound to (since the bridge started).`);
    return;
  }
  const items = [...list.blocked].reverse().map((b) => ({
    label: `$(shield) ${b.credential} → ${b.host}`,
    description: `${b.method} ${b.path} · in the ${b.where}`,
    detail: `${new Date(b.at).toLocaleString()} — sent with the stub (the value goes only to ${b.credential}'s bound hosts)`,
  }));
  // Not awaited: the command returns the list (automation) while the picker stays open.
  void vscode.window.showQuickPick(items, { title: `Blocked secret use in ${sessionLabel} (${items.length})`, placeHolder: 'Requests that carried a secret\'s stub toward a host it is not bound to', canPickMany: false });
}
