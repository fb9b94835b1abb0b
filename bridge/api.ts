/**
 * The platform API for agents and sessions, with the platform's paths, shapes, status codes and
 * error shapes (shared/docs/platform-api.md): a list envelope for agents, a bare array for
 * sessions, 200 on create, 204 on agent delete, 200 `{id,status}` on session delete.
 */
import { randomUUID } from 'node:crypto';
import * as z from 'zod/mini';
import '../protocol/zod';
import { API_PREFIX, CreateAgentBody, CreateSessionBody, envVarHostsProblem, hostCoveredBy, ListAgentsQuery, PatchAgentBody, TUI_HARNESSES } from '../protocol/platform';
import type { BridgeStatus } from '../protocol/harnesses';
import { HarnessApi, type StreamWriter } from './harnessApi';
import type { BridgeLog } from './log';
import { HttpError, LOCAL_HARNESSES, type SessionService } from './sessions';
import { safeDecode } from './server';
import type { Providers } from './sandboxNet';
import type { StateStore, StoredAgent, StoredSession } from './stateStore';

export interface ApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export interface ApiReply {
  status: number;
  body?: unknown;
  /** A streamed answer (SSE, a proxied response): the server hands it the response instead of `body`. */
  stream?: StreamWriter;
}

const ACTIVE = new Set(['creating', 'ready']);

/** zod issues as the platform sends them: an array, each with path and message. */
function issues(err: z.core.$ZodError): unknown[] {
  return err.issues.map((i) => ({ code: i.code, path: i.path, message: i.message }));
}

const ProviderBody = z.object({
  base_url: z.optional(z.string().check(z.url({ protocol: /^https?$/ }))),
  api_key: z.string().check(z.minLength(1)),
});

function parse<S extends z.ZodMiniType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new HttpError(400, { error: issues(r.error) });
  return r.data;
}

/** A host folder to mount: absolute, and without `:` (Docker's bind syntax separator). */
function checkWorkspacePath(path: string | undefined): void {
  if (path === undefined) return;
  const problem = !path.startsWith('/') ? 'must be an absolute path' : path.includes(':') ? 'must not contain ":"' : undefined;
  if (problem) throw new HttpError(400, { error: [{ code: 'custom', path: ['workspace_path'], message: problem }] });
}

export class Api {
  /** Credential values live only in memory (never in the state file); the extension re-supplies them after a restart. */
  private readonly envValues = new Map<string, Record<string, string>>();

  constructor(
    private readonly store: StateStore,
    private readonly sessions: SessionService,
    private readonly opts: { idleTimeoutMs: number; models: () => string[]; status: () => Promise<BridgeStatus>; providers?: Providers; log?: BridgeLog },
  ) {
    this.harness = new HarnessApi<StoredSession>({
      session: (id) => this.sessions.get(id),
      harnessOf: (s) => this.store.data.agents.find((x) => x.id === s.agent_id)?.harness_id,
      endpoint: (id) => this.sessions.harnessEndpoint(id),
      saved: () => this.store.changedSoon(),
      touch: (s) => this.sessions.touch(s),
      log: opts.log,
    });
  }

  /** The message endpoints of API-harness sessions; `harness.sessionReady(id)` when one becomes ready. */
  readonly harness: HarnessApi<StoredSession>;

  async handle(req: ApiRequest): Promise<ApiReply> {
    if (req.path === '/bridge/v1/status' && req.method === 'GET') return { status: 200, body: await this.opts.status() };
    if (req.path.startsWith('/bridge/v1/')) {
      const reply = this.bridgeExtension(req);
      if (reply) return reply;
    }
    if (req.path === '/api/v1/models' && req.method === 'GET') {
      return { status: 200, body: { object: 'list', data: this.opts.models().map((id) => ({ id, object: 'model', owned_by: 'sandbox-agents' })) } };
    }
    if (!req.path.startsWith(API_PREFIX + '/')) {
      // The platform forwards other /api/v1 paths to its gateway; answer in that gateway's shape.
      return { status: 404, body: { detail: 'Not Found' } };
    }
    const parts = req.path.slice(API_PREFIX.length + 1).split('/').map(safeDecode);
    if (parts.some((p) => p === undefined)) throw new HttpError(400, { error: 'malformed path' });
    const [a, id, sub, extra] = parts as string[];
    const m = req.method;
    if (a === 'agents' && parts.length === 1) {
      if (m === 'GET') return this.listAgents(req.query);
      if (m === 'POST') return this.createAgent(req.body);
    }
    if (a === 'agents' && id && parts.length === 2) {
      if (m === 'GET') return { status: 200, body: this.agentJson(this.agent(id)) };
      if (m === 'PATCH') return this.patchAgent(id, req.body);
      if (m === 'DELETE') return this.deleteAgent(id);
    }
    if (a === 'agents' && id && sub === 'session' && parts.length === 3 && m === 'POST') return this.createSession(id, req.body);
    if (a === 'sessions' && parts.length === 1 && m === 'GET') {
      const limit = Math.min(200, Math.max(1, Number(req.query.get('limit') ?? 50) || 50));
      return { status: 200, body: this.sessions.list(req.query.get('agent_id') ?? undefined, limit).map((s) => this.sessionJson(s)) };
    }
    if (a === 'sessions' && id && parts.length === 2) {
      if (m === 'GET') return { status: 200, body: this.sessionJson(this.sessions.get(id)) };
      if (m === 'DELETE') {
        this.harness.sessionEnded(id);
        return { status: 200, body: await this.sessions.delete(id) };
      }
    }
    if (a === 'sessions' && id && sub === 'restart' && !extra && m === 'POST') return { status: 200, body: this.sessionJson(await this.sessions.restart(id)) };
    if (a === 'sessions' && id && sub) {
      const reply = await this.harnessRoute(req, id, sub, parts.length, m);
      if (reply) return reply;
    }
    return { status: 404, body: { detail: 'Not Found' } };
  }

  // ------------------------------------------------------------------------------------------
  // API harnesses (opencode, claude-agent-sdk): the platform's message endpoints, forwarded to the
  // harness server in the sandbox (bridge/harnessApi.ts). Sessions of terminal harnesses answer 409
  // (`messages`: an empty thread), as before.

  private async harnessRoute(req: ApiRequest, id: string, sub: string, depth: number, m: string): Promise<ApiReply | undefined> {
    if (depth === 3 && m === 'POST') {
      if (sub === 'message') return { status: 200, body: await this.harness.message(id, req.body) };
      if (sub === 'message_stream') return { status: 200, stream: await this.harness.messageStream(id, req.body) };
      if (sub === 'abort') return { status: 200, body: await this.harness.abort(id) };
    }
    if (depth === 3 && m === 'GET') {
      if (sub === 'messages') return { status: 200, body: await this.harness.messages(id) };
      if (sub === 'events') return { status: 200, stream: await this.harness.events(id) };
    }
    if (sub === 'opencode' && depth >= 3) {
      // The tail as sent (still encoded), after `/sessions/{id}/opencode`.
      const raw = req.path.slice(API_PREFIX.length + 1).split('/').slice(3).join('/');
      const search = req.query.toString();
      return { status: 200, stream: await this.harness.opencode(id, { method: m, tail: raw, search: search ? `?${search}` : '', body: req.body }) };
    }
    return undefined;
  }

  // ------------------------------------------------------------------------------------------

  private agent(id: string): StoredAgent {
    const agent = this.store.data.agents.find((x) => x.id === id);
    if (!agent) throw new HttpError(404, { error: `agent '${id}' not found` });
    return agent;
  }

  private listAgents(query: URLSearchParams): ApiReply {
    const num = (k: string) => (query.has(k) ? Number(query.get(k)) : undefined);
    const q = parse(ListAgentsQuery, {
      limit: num('limit'),
      offset: num('offset'),
      sort: query.get('sort') ?? undefined,
      order: query.get('order') ?? undefined,
      search: query.get('search') ?? undefined,
    });
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const needle = q.search?.toLowerCase();
    let list = this.store.data.agents.filter((x) => !needle || [x.name, x.id, x.harness_id].some((f) => f.toLowerCase().includes(needle)));
    const sort = q.sort ?? 'created_at';
    const dir = (q.order ?? (sort === 'created_at' ? 'desc' : 'asc')) === 'asc' ? 1 : -1;
    const key = (x: StoredAgent): string | number =>
      sort === 'sessions' ? this.sessions.list(x.id, 1000).length : sort === 'name' ? x.name.toLowerCase() : sort === 'harness_id' ? x.harness_id : x.created_at;
    list = [...list].sort((l, r) => {
      const kl = key(l);
      const kr = key(r);
      return (kl < kr ? -1 : kl > kr ? 1 : l.id.localeCompare(r.id)) * dir;
    });
    return {
      status: 200,
      body: {
        data: list.slice(offset, offset + limit).map((x) => {
          const sessions = this.sessions.list(x.id, 10_000);
          return { ...this.agentJson(x), session_count: sessions.length, has_active_session: sessions.some((s) => ACTIVE.has(s.status)) };
        }),
        total: list.length,
        limit,
        offset,
      },
    };
  }

  /** Bridge extensions: model provider keys (memory only; never read back) and image build logs. */
  private bridgeExtension(req: ApiRequest): ApiReply | undefined {
    const providers = this.opts.providers;
    if (req.path === '/bridge/v1/providers' && req.method === 'GET') return { status: 200, body: { configured: providers?.configured() ?? [] } };
    const p = /^\/bridge\/v1\/providers\/([^/]+)$/.exec(req.path);
    if (p && providers) {
      const provider = safeDecode(p[1]);
      if (provider !== 'anthropic' && provider !== 'openai') throw new HttpError(404, { error: `unknown provider "${provider}" (anthropic, openai)` });
      if (req.method === 'DELETE') {
        providers.set(provider, undefined);
        return { status: 204 };
      }
      if (req.method !== 'PUT') throw new HttpError(405, { error: 'use PUT or DELETE' });
      const body = parse(ProviderBody, req.body);
      providers.set(provider, { base_url: body.base_url ?? '', api_key: body.api_key });
      return { status: 204 };
    }
    // Stubs the session's sandbox sent toward hosts their secrets are not bound to (sent unchanged).
    const bl = /^\/bridge\/v1\/sessions\/([^/]+)\/blocked$/.exec(req.path);
    if (bl && req.method === 'GET') {
      const id = safeDecode(bl[1]) ?? '';
      if (!this.store.data.sessions.some((x) => x.id === id)) throw new HttpError(404, { error: `no session ${id}` });
      return { status: 200, body: { session_id: id, blocked: this.sessions.blocked(id) ?? [] } };
    }
    const b = /^\/bridge\/v1\/builds\/([^/]+)\/log$/.exec(req.path);
    if (b && req.method === 'GET') {
      const harness = safeDecode(b[1]) ?? '';
      const log = this.sessions.buildLog(harness);
      if (log === undefined) throw new HttpError(404, { error: `no image build of ${harness} in this bridge's lifetime` });
      return { status: 200, body: { harness, log } };
    }
    return undefined;
  }

  private createAgent(raw: unknown): ApiReply {
    const body = parse(CreateAgentBody, raw);
    const harness = body.harness_id ?? 'opencode';
    if (!LOCAL_HARNESSES.includes(harness)) {
      throw new HttpError(400, { error: { error: `unknown harness_id "${harness}". Valid: ${LOCAL_HARNESSES.join(', ')}` } });
    }
    checkWorkspacePath(body.workspace_path);
    const bindingProblem = body.env_var_hosts && envVarHostsProblem(Object.keys(body.env_vars ?? {}), body.allow_out ?? [], body.env_var_hosts);
    if (bindingProblem) throw new HttpError(400, { error: { error: bindingProblem } });
    const now = new Date().toISOString();
    const agent: StoredAgent = {
      id: randomUUID(),
      name: body.name ?? `agent-${now.slice(0, 19)}`,
      model: body.model,
      prompt: body.prompt ?? null,
      harness_id: harness,
      repo_url: body.repo_url ?? null,
      branch: body.branch ?? 'main',
      tools: body.tools ?? [],
      mcp_servers: body.mcp_servers ?? [],
      env_var_hosts: body.env_var_hosts ?? {},
      allow_out: body.allow_out ?? [],
      deny_out: body.deny_out ?? [],
      env_var_names: Object.keys(body.env_vars ?? {}),
      workspace_path: body.workspace_path ?? null,
      workspace_mode: body.workspace_mode ?? null,
      resources: body.resources ?? null,
      created_at: now,
      updated_at: now,
    };
    if (body.env_vars) this.envValues.set(agent.id, { ...body.env_vars });
    this.store.data.agents.push(agent);
    this.store.changed();
    return { status: 200, body: this.agentJson(agent) };
  }

  private patchAgent(id: string, raw: unknown): ApiReply {
    const agent = this.agent(id);
    if (raw && typeof raw === 'object') {
      for (const field of ['harness_id', 'repo_url'] as const) {
        const given = (raw as Record<string, unknown>)[field];
        if (given !== undefined && given !== agent[field]) throw new HttpError(400, { error: `${field} cannot be changed` });
      }
    }
    const body = parse(PatchAgentBody, raw);
    checkWorkspacePath(body.workspace_path);
    const { env_vars, env_var_hosts, ...rest } = body;
    // The platform's reconcile: explicit bindings must name defined env vars and allowed hosts;
    // removing an env var removes its binding; a narrowed allow_out gets the bound hosts back.
    if (env_var_hosts !== undefined || rest.allow_out !== undefined || env_vars !== undefined) {
      const keys = new Set(env_vars ? Object.keys(env_vars) : agent.env_var_names);
      const allow = rest.allow_out ?? agent.allow_out;
      const source = env_var_hosts ?? agent.env_var_hosts;
      const reconciled: Record<string, string[]> = {};
      for (const [key, hosts] of Object.entries(source)) {
        if (!keys.has(key)) {
          if (env_var_hosts) throw new HttpError(400, { error: { error: `env_var_hosts: '${key}' is not a defined env var` } });
          continue;
        }
        if (env_var_hosts && !hosts.every((h) => allow.some((r) => hostCoveredBy(h, r)))) {
          throw new HttpError(400, { error: { error: `env_var_hosts: a host for '${key}' is not in the agent's allowed hosts` } });
        }
        if (hosts.length > 0) reconciled[key] = hosts;
      }
      if (rest.allow_out !== undefined) {
        const missing = [...new Set(Object.values(reconciled).flat())].filter((h) => !rest.allow_out!.some((r) => hostCoveredBy(h, r)));
        rest.allow_out = [...rest.allow_out, ...missing];
      }
      agent.env_var_hosts = reconciled;
    }
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) (agent as unknown as Record<string, unknown>)[k] = v;
    if (env_vars) {
      agent.env_var_names = Object.keys(env_vars);
      this.envValues.set(agent.id, { ...env_vars });
    }
    agent.updated_at = new Date().toISOString();
    this.store.changed();
    return { status: 200, body: this.agentJson(agent) };
  }

  private async deleteAgent(id: string): Promise<ApiReply> {
    this.agent(id);
    for (const s of this.sessions.list(id, 10_000)) if (ACTIVE.has(s.status)) await this.sessions.delete(s.id, 'agent deleted');
    this.store.data.agents = this.store.data.agents.filter((x) => x.id !== id);
    this.envValues.delete(id);
    this.store.changed();
    return { status: 204 };
  }

  private createSession(agentId: string, raw: unknown): ApiReply {
    const agent = this.agent(agentId);
    const body = parse(CreateSessionBody, raw ?? {});
    const session = this.sessions.create(agent, body.title);
    // API harnesses: the initial prompt goes out once the session is ready (harness.sessionReady).
    this.harness.sessionCreated(session.id, body);
    return { status: 200, body: this.sessionJson(session) };
  }

  /** An agent's secret env var values (memory only), for the egress proxy to swap its stubs. */
  secretValues(agentId: string): Record<string, string> | undefined {
    return this.envValues.get(agentId);
  }

  /** Every secret value held, so logs can redact them. */
  allSecretValues(): string[] {
    return [...this.envValues.values()].flatMap((v) => Object.values(v)).filter(Boolean);
  }

  agentJson(x: StoredAgent): Record<string, unknown> {
    return {
      id: x.id,
      name: x.name,
      model: x.model,
      prompt: x.prompt,
      harness_id: x.harness_id,
      supports_tui: TUI_HARNESSES.has(x.harness_id),
      repo_url: x.repo_url,
      branch: x.branch,
      tools: x.tools,
      mcp_servers: x.mcp_servers,
      // As on the platform, the owner of the master key reads the values back; they are never on disk.
      env_vars: Object.fromEntries(x.env_var_names.map((n) => [n, this.envValues.get(x.id)?.[n] ?? ''])),
      env_var_hosts: x.env_var_hosts,
      allow_out: x.allow_out,
      deny_out: x.deny_out,
      workspace_path: x.workspace_path,
      workspace_mode: x.workspace_mode ?? null,
      resources: x.resources,
      created_at: x.created_at,
      updated_at: x.updated_at,
    };
  }

  sessionJson(s: StoredSession): Record<string, unknown> {
    const agent = this.store.data.agents.find((x) => x.id === s.agent_id);
    const tui = agent ? TUI_HARNESSES.has(agent.harness_id) : true;
    return {
      id: s.id,
      agent_id: s.agent_id,
      title: s.title,
      status: s.status,
      phase: s.phase,
      phase_detail: s.phase_detail,
      failure_reason: s.failure_reason,
      sandbox_url: null,
      tty_url: tui && s.status === 'ready' ? `${API_PREFIX}/sessions/${s.id}/tty` : null,
      tty_token: tui ? s.tty_token : null,
      supports_tui: tui,
      harness_session_id: tui ? 'tty' : (s.harness_session_id ?? null),
      response: s.response ?? null,
      created_at: s.created_at,
      last_seen_at: s.last_seen_at,
      idle_timeout_ms: this.opts.idleTimeoutMs,
      unsandboxed: s.runtime === 'host',
      runtime: s.runtime,
    };
  }
}
