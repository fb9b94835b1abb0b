/**
 * Model provider keys for local sandboxes: entered once ("Set Model Provider Key"), kept in VS Code's
 * SecretStorage, and handed to the local bridge in memory over its authenticated API whenever a
 * bridge (re)starts. Sandboxes only ever see stub keys; the bridge's model gateway swaps them.
 */
import * as vscode from 'vscode';
import * as z from 'zod/mini';
import '../protocol/zod';
import type { Provider } from '../protocol/sandbox';
import { InvalidInputError } from './errors';
import type { Secrets } from './secrets';

export const ProviderKey = z.object({ base_url: z.string(), api_key: z.string() });
export type ProviderKey = z.infer<typeof ProviderKey>;

export const PROVIDERS: readonly Provider[] = ['anthropic', 'openai'];
const LABEL: Record<Provider, string> = { anthropic: 'Anthropic', openai: 'OpenAI' };
const DEFAULT_URL: Record<Provider, string> = { anthropic: 'https://api.anthropic.com', openai: 'https://api.openai.com' };

export async function readProviderKeys(secrets: Secrets): Promise<Partial<Record<Provider, ProviderKey>>> {
  const out: Partial<Record<Provider, ProviderKey>> = {};
  for (const p of PROVIDERS) {
    const raw = await secrets.getProviderKey(p);
    if (!raw) continue;
    try {
      const parsed = ProviderKey.safeParse(JSON.parse(raw));
      if (parsed.success) out[p] = parsed.data;
    } catch {
      /* an unreadable entry counts as none */
    }
  }
  return out;
}

/** Arguments for scripted use (tests, other extensions): no prompts. `apiKey` empty removes the key. */
export interface SetProviderKeyArgs {
  provider: Provider;
  baseUrl?: string;
  apiKey: string;
}

/** The command: choose Anthropic, OpenAI or a compatible gateway (URL + key), or remove a key. */
export async function setModelProviderKey(secrets: Secrets, args?: SetProviderKeyArgs): Promise<Provider | undefined> {
  if (args && typeof args === 'object' && 'provider' in args) {
    if (!PROVIDERS.includes(args.provider)) throw new InvalidInputError(`Unknown model provider "${String(args.provider)}": use ${PROVIDERS.join(' or ')}.`);
    if (!args.apiKey) {
      await secrets.deleteProviderKey(args.provider);
      return args.provider;
    }
    const problem = args.baseUrl ? checkUrl(args.baseUrl) : undefined;
    if (problem) throw new InvalidInputError(`${problem} (baseUrl "${args.baseUrl}")`);
    const baseUrl = (args.baseUrl?.trim() || DEFAULT_URL[args.provider]).replace(/\/+$/, '').replace(/\/v1$/, '');
    await secrets.setProviderKey(args.provider, JSON.stringify({ base_url: baseUrl, api_key: args.apiKey.trim() } satisfies ProviderKey));
    return args.provider;
  }
  const current = await readProviderKeys(secrets);
  type Item = vscode.QuickPickItem & { provider: Provider; custom: boolean; remove?: boolean };
  const items: Item[] = [
    { label: 'Anthropic', description: 'api.anthropic.com', detail: 'Claude Code, the Claude Agent SDK, and opencode with Claude models', provider: 'anthropic', custom: false },
    { label: 'OpenAI', description: 'api.openai.com', detail: 'Codex, and opencode with OpenAI models', provider: 'openai', custom: false },
    { label: 'Anthropic-compatible gateway…', description: 'URL + key', detail: 'e.g. a LiteLLM proxy serving /v1/messages', provider: 'anthropic', custom: true },
    { label: 'OpenAI-compatible gateway…', description: 'URL + key', detail: 'e.g. a LiteLLM proxy serving /v1/responses and /v1/chat/completions', provider: 'openai', custom: true },
    ...PROVIDERS.filter((p) => current[p]).map((p) => ({ label: `Remove the ${LABEL[p]} key`, description: current[p]!.base_url, provider: p, custom: false, remove: true })),
  ];
  const picked = await vscode.window.showQuickPick(items, { title: 'Set Model Provider Key', placeHolder: 'Which model provider do local sandboxes use?' });
  if (!picked) return undefined;
  if (picked.remove) {
    await secrets.deleteProviderKey(picked.provider);
    return picked.provider;
  }
  let baseUrl = DEFAULT_URL[picked.provider];
  if (picked.custom) {
    const url = await vscode.window.showInputBox({
      title: `${picked.label.replace('…', '')}: URL`,
      prompt: 'Base URL of the gateway (without /v1)',
      value: current[picked.provider]?.base_url !== DEFAULT_URL[picked.provider] ? current[picked.provider]?.base_url : '',
      placeHolder: 'http://localhost:4000',
      ignoreFocusOut: true,
      validateInput: (v) => checkUrl(v),
    });
    if (url === undefined) return undefined;
    baseUrl = url.trim().replace(/\/+$/, '').replace(/\/v1$/, '');
  }
  const key = await vscode.window.showInputBox({
    title: `${LABEL[picked.provider]} key`,
    prompt: `The key goes to VS Code's secret storage and to the local bridge's memory — never into a sandbox.`,
    password: true,
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? (/\s/.test(v.trim()) ? 'A key has no spaces' : undefined) : 'Enter the key'),
  });
  if (key === undefined) return undefined;
  await secrets.setProviderKey(picked.provider, JSON.stringify({ base_url: baseUrl, api_key: key.trim() } satisfies ProviderKey));
  return picked.provider;
}

export function checkUrl(v: string): string | undefined {
  const t = v.trim();
  if (!t) return 'Enter the gateway URL';
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    return 'Enter a URL such as http://localhost:4000';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'Use an http:// or https:// URL';
  if (u.username || u.password) return 'Put the key in the next step, not in the URL';
  return undefined;
}
