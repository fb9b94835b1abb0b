/**
 * The platform API contract (shared/docs/platform-api.md), as `node:test` tests that drive
 * `PlatformClient` against any backend: the in-memory test server, our local bridge, a real
 * platform. Assertions stick to what the doc promises, never to one backend's internals; where the
 * doc leaves a choice open (e.g. 400 or "ignored" for an immutable field), both are accepted.
 *
 * Every agent is named `contract-<run id>-…` and deleted at the end, so a shared backend survives it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { PlatformError, toUserMessage } from '../../extension/errors';
import { PlatformClient } from '../../extension/platformClient';
import { API_PREFIX, Agent, AgentList, DeleteSessionReply, SESSION_PHASES, Session, TUI_HARNESSES, errorText, type Session as SessionT } from '../../protocol/platform';

export interface ContractBackend {
  url: string;
  masterKey: string;
  close(): Promise<void>;
}

export interface PlatformContractOptions {
  /** Harnesses whose sessions are brought up, the first one for everything else. Default opencode + claude-code. */
  harnesses?: string[];
  /** Model id for created agents. Default `test-model`. */
  model?: string;
  /** Hang guard for one session bring-up. Default 120 s. */
  readyTimeoutMs?: number;
  /** Pause between polls of a creating session. Default 25 ms. */
  pollIntervalMs?: number;
}

export interface RawReply {
  status: number;
  contentType: string;
  text: string;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  json: unknown;
}

/**
 * One request without the client, to check wire-level facts (exact status codes, envelope shapes,
 * bodies the client refuses to send). `path` is relative to `/api/v1/managed_agents` unless it
 * starts with `/api/` or another `/`-rooted path is wanted via `absolute`.
 */
export function rawPlatformRequest(
  baseUrl: string,
  method: string,
  path: string,
  opts: { auth?: string | null; body?: unknown; rawBody?: string; absolute?: boolean; headers?: Record<string, string> } = {},
): Promise<RawReply> {
  const url = new URL(baseUrl.replace(/\/+$/, '') + (opts.absolute || path.startsWith('/api/') ? path : API_PREFIX + path));
  const payload = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const headers: http.OutgoingHttpHeaders = { ...opts.headers };
  if (opts.auth) headers.authorization = opts.auth;
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text, json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export function platformContract(name: string, start: () => Promise<ContractBackend>, opts: PlatformContractOptions = {}): void {
  const harnesses = opts.harnesses?.length ? opts.harnesses : ['opencode', 'claude-code'];
  const mainHarness = harnesses[0]!;
  const model = opts.model ?? 'test-model';
  const readyTimeoutMs = opts.readyTimeoutMs ?? 120_000;
  const pollIntervalMs = opts.pollIntervalMs ?? 25;
  const testTimeout = { timeout: readyTimeoutMs * 3 };
  const run = `contract-${randomBytes(4).toString('hex')}`;

  describe(`platform contract: ${name}`, () => {
    let backend: ContractBackend;
    let client: PlatformClient;
    const agentIds = new Set<string>();
    const sessionIds = new Set<string>();
    const bearer = () => `Bearer ${backend.masterKey}`;

    const createAgent = async (suffix: string, harness = mainHarness, extra: Record<string, unknown> = {}) => {
      const agent = await client.createAgent({ model, name: `${run}-${suffix}`, harness_id: harness, ...extra });
      agentIds.add(agent.id);
      return agent;
    };
    const createSession = async (agentId: string) => {
      const session = await client.createSession(agentId, { title: run });
      sessionIds.add(session.id);
      return session;
    };
    /** Polls until the session leaves `creating`, recording each phase seen. */
    const settle = async (id: string, phases: string[] = []): Promise<SessionT> => {
      const deadline = Date.now() + readyTimeoutMs;
      for (;;) {
        const session = await client.getSession(id);
        if (session.phase && phases[phases.length - 1] !== session.phase) phases.push(session.phase);
        if (session.status !== 'creating') return session;
        if (Date.now() > deadline) throw new Error(`session ${id} still creating after ${readyTimeoutMs} ms (phases: ${phases.join(', ')})`);
        await new Promise((r) => setTimeout(r, pollIntervalMs));
      }
    };
    const assertPhasesInOrder = (phases: string[]) => {
      const known: readonly string[] = SESSION_PHASES;
      for (const phase of phases) assert.ok(known.includes(phase), `undocumented phase "${phase}"`);
      const order = phases.map((p) => known.indexOf(p));
      assert.deepEqual(order, [...order].sort((a, b) => a - b), `phases out of order: ${phases.join(' → ')}`);
    };
    const rejects = async (promise: Promise<unknown>, status: number): Promise<PlatformError> => {
      const err = await promise.then(
        () => assert.fail(`expected HTTP ${status}, got a success`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof PlatformError, `expected a PlatformError, got ${String(err)}`);
      assert.equal(err.status, status, err.message);
      return err;
    };

    before(async () => {
      backend = await start();
      // A restart answers once the new pod is up on the platform: allow it the bring-up time.
      client = new PlatformClient({ baseUrl: backend.url, apiKey: backend.masterKey, retries: 0, requestTimeoutMs: readyTimeoutMs });
    });

    after(async () => {
      if (!backend) return;
      for (const id of sessionIds) await client.deleteSession(id).catch(() => undefined);
      for (const id of agentIds) await client.deleteAgent(id).catch(() => undefined);
      await backend.close();
    });

    it('answers a missing or wrong key with 401 {"error":"unauthorized"} and never repeats a key', testTimeout, async () => {
      const wrongKey = `sk-contract-wrong-${randomBytes(12).toString('hex')}`;
      const wrong = new PlatformClient({ baseUrl: backend.url, apiKey: wrongKey, retries: 0 });
      for (const call of [() => wrong.listAgents(), () => wrong.getAgent('some-agent'), () => wrong.models()]) {
        const err = await rejects(call(), 401);
        for (const text of [err.message, err.detail ?? '', toUserMessage(err), String(err.stack)]) {
          assert.ok(!text.includes(wrongKey), 'the wrong key appears in the error');
          assert.ok(!text.includes(backend.masterKey), 'the master key appears in the error');
        }
      }
      for (const auth of [null, backend.masterKey, `Bearer ${wrongKey}`, `bearer ${backend.masterKey}`, `Bearer  ${backend.masterKey}`]) {
        const reply = await rawPlatformRequest(backend.url, 'GET', '/agents', { auth });
        assert.equal(reply.status, 401, `Authorization ${auth === null ? '(none)' : 'variant'} was accepted`);
        assert.deepEqual(reply.json, { error: 'unauthorized' });
      }
    });

    it('creates an agent (200), reads it, patches only the given fields, lists it, deletes it (204) and then 404s', testTimeout, async () => {
      const name = `${run}-crud`;
      const created = await rawPlatformRequest(backend.url, 'POST', '/agents', {
        auth: bearer(),
        body: { model, name, prompt: 'original prompt', harness_id: mainHarness, env_vars: { CONTRACT_FLAG: 'on' }, allow_out: ['example.com'] },
      });
      assert.equal(created.status, 200, created.text);
      const agent = Agent.parse(created.json);
      agentIds.add(agent.id);
      assert.equal(agent.name, name);
      assert.equal(agent.model, model);
      assert.equal(agent.prompt, 'original prompt');
      assert.equal(agent.harness_id, mainHarness);
      assert.equal(agent.branch, 'main');
      assert.equal(agent.supports_tui, TUI_HARNESSES.has(mainHarness));
      assert.deepEqual(agent.env_vars, { CONTRACT_FLAG: 'on' });
      assert.deepEqual(agent.allow_out, ['example.com']);
      assert.ok(agent.created_at, 'created_at is set');

      const fetched = await client.getAgent(agent.id);
      assert.deepEqual(
        { id: fetched.id, name: fetched.name, model: fetched.model, prompt: fetched.prompt, harness_id: fetched.harness_id },
        { id: agent.id, name, model, prompt: 'original prompt', harness_id: mainHarness },
      );

      const patched = await client.patchAgent(agent.id, { prompt: 'changed prompt' });
      assert.equal(patched.prompt, 'changed prompt');
      const again = await client.getAgent(agent.id);
      assert.equal(again.prompt, 'changed prompt');
      for (const field of ['name', 'model', 'harness_id', 'branch', 'env_vars', 'allow_out', 'supports_tui'] as const) {
        assert.deepEqual(again[field], agent[field], `PATCH of prompt changed ${field}`);
      }

      const listed = await client.listAgents({ search: name, limit: 200 });
      const item = listed.data.find((a) => a.id === agent.id);
      assert.ok(item, 'the new agent is listed');
      assert.equal(item.session_count, 0);
      assert.equal(item.has_active_session, false);

      const deleted = await rawPlatformRequest(backend.url, 'DELETE', `/agents/${agent.id}`, { auth: bearer() });
      assert.equal(deleted.status, 204);
      assert.equal(deleted.text, '');
      agentIds.delete(agent.id);
      const gone = await rejects(client.getAgent(agent.id), 404);
      assert.equal(gone.detail, `agent '${agent.id}' not found`);
      await rejects(client.patchAgent(agent.id, { prompt: 'x' }), 404);
      await rejects(client.deleteAgent(agent.id), 404);
      const after = await client.listAgents({ search: name, limit: 200 });
      assert.ok(!after.data.some((a) => a.id === agent.id), 'a deleted agent is still listed');
    });

    it('lists agents in a {data,total,limit,offset} envelope with paging, search and sort', testTimeout, async () => {
      const prefix = `${run}-page`;
      const a = await createAgent('page-a');
      const b = await createAgent('page-b');
      const c = await createAgent('page-c');

      const envelope = await rawPlatformRequest(backend.url, 'GET', `/agents?search=${prefix}`, { auth: bearer() });
      assert.equal(envelope.status, 200);
      const all = AgentList.parse(envelope.json);
      assert.deepEqual(
        { total: all.total, limit: all.limit, offset: all.offset, ids: all.data.map((x) => x.id).sort() },
        { total: 3, limit: 50, offset: 0, ids: [a.id, b.id, c.id].sort() },
      );
      for (const item of all.data) {
        assert.equal(typeof item.session_count, 'number');
        assert.equal(typeof item.has_active_session, 'boolean');
      }

      const first = await client.listAgents({ search: prefix, limit: 2, offset: 0, sort: 'name', order: 'asc' });
      const second = await client.listAgents({ search: prefix, limit: 2, offset: 2, sort: 'name', order: 'asc' });
      assert.deepEqual([first.total, first.limit, first.offset, first.data.length], [3, 2, 0, 2]);
      assert.deepEqual([second.total, second.limit, second.offset, second.data.length], [3, 2, 2, 1]);
      assert.deepEqual([...first.data, ...second.data].map((x) => x.name), [a.name, b.name, c.name]);

      const desc = await client.listAgents({ search: prefix, sort: 'name', order: 'desc' });
      assert.deepEqual(desc.data.map((x) => x.name), [c.name, b.name, a.name]);
      const newest = await client.listAgents({ search: prefix, sort: 'created_at', order: 'desc' });
      assert.deepEqual(newest.data.map((x) => x.id), [c.id, b.id, a.id]);

      const byId = await client.listAgents({ search: b.id, limit: 200 });
      assert.deepEqual(byId.data.map((x) => x.id), [b.id], 'search matches the id');
      const byHarness = await client.listAllAgents({ search: mainHarness });
      for (const id of [a.id, b.id, c.id]) assert.ok(byHarness.some((x) => x.id === id), 'search matches the harness');
      for (const item of byHarness) {
        const term = mainHarness.toLowerCase();
        assert.ok([item.name, item.id, item.harness_id].some((f) => f.toLowerCase().includes(term)), `${item.id} does not match "${mainHarness}"`);
      }

      const found = await client.findAgentByName(b.name);
      assert.equal(found?.id, b.id);
      assert.equal(await client.findAgentByName(`${prefix}-none`), undefined);
    });

    it('rejects invalid agents with 400 and the platform error text in PlatformError.detail', testTimeout, async () => {
      const name = `${run}-invalid`;
      const unknown = await rejects(client.createAgent({ model, name, harness_id: 'no-such-harness' }), 400);
      assert.match(unknown.detail ?? '', /unknown harness_id/);
      assert.match(unknown.detail ?? '', /no-such-harness/);
      assert.match(unknown.message, /no-such-harness/);

      // Bodies the client itself refuses to send: check the server enforces the documented rules too.
      const tooMany = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`VAR_${i}`, 'x']));
      for (const body of [
        { name },
        { name, model: '' },
        { name, model, env_vars: { PORT: '8080' } },
        { name, model, env_vars: { LITELLM_API_KEY: 'sk-not-a-real-key' } },
        { name, model, env_vars: { '1BAD': 'x' } },
        { name, model, env_vars: { 'BAD-NAME': 'x' } },
        { name, model, env_vars: tooMany },
      ]) {
        const reply = await rawPlatformRequest(backend.url, 'POST', '/agents', { auth: bearer(), body });
        assert.equal(reply.status, 400, `accepted ${JSON.stringify(body).slice(0, 80)}`);
        assert.ok(errorText(reply.json), `no error text for ${JSON.stringify(body).slice(0, 80)}`);
        assert.ok(!reply.text.includes('sk-not-a-real-key'), 'the error repeats an env var value');
      }
      const listed = await client.listAgents({ search: name, limit: 200 });
      assert.equal(listed.total, 0, 'a rejected body created an agent');

      // harness_id and repo_url cannot change: refused (400) or ignored, never applied.
      const agent = await createAgent('immutable');
      const patch = await rawPlatformRequest(backend.url, 'PATCH', `/agents/${agent.id}`, {
        auth: bearer(),
        body: { harness_id: mainHarness === 'codex' ? 'opencode' : 'codex', repo_url: 'https://example.com/other.git' },
      });
      assert.ok(patch.status === 400 || patch.status === 200, `PATCH answered ${patch.status}`);
      const unchanged = await client.getAgent(agent.id);
      assert.equal(unchanged.harness_id, agent.harness_id);
      assert.equal(unchanged.repo_url ?? null, agent.repo_url ?? null);
    });

    it('binds credentials to hosts the platform\'s way: defined env vars, hosts inside allow_out; a narrowed allow_out keeps bound hosts', testTimeout, async () => {
      const name = `${run}-bindings`;
      for (const [body, problem] of [
        [{ name, model, env_vars: { TOKEN: 'v' }, env_var_hosts: { OTHER: ['example.com'] }, allow_out: ['example.com'] }, /'OTHER' is not a defined env var/],
        [{ name, model, env_vars: { TOKEN: 'v' }, env_var_hosts: { TOKEN: ['example.com'] } }, /not in the agent's allowed hosts/],
        [{ name, model, env_vars: { TOKEN: 'v' }, env_var_hosts: { TOKEN: ['evil.example.org'] }, allow_out: ['*.example.com'] }, /not in the agent's allowed hosts/],
      ] as const) {
        const reply = await rawPlatformRequest(backend.url, 'POST', '/agents', { auth: bearer(), body });
        assert.equal(reply.status, 400, `accepted ${JSON.stringify(body)}`);
        assert.match(errorText(reply.json) ?? '', problem);
      }
      // `*.example.com` covers example.com itself and its subdomains.
      const agent = await client.createAgent({ name, model, harness_id: mainHarness, env_vars: { TOKEN: 'v', KEEP: 'k' }, env_var_hosts: { TOKEN: ['api.example.com', 'example.com'] }, allow_out: ['*.example.com'] });
      agentIds.add(agent.id);
      assert.deepEqual(agent.env_var_hosts, { TOKEN: ['api.example.com', 'example.com'] });
      // Narrowing allow_out never un-scopes a credential: its hosts come back.
      const narrowed = await client.patchAgent(agent.id, { allow_out: ['other.example.net'] });
      assert.deepEqual([...(narrowed.allow_out ?? [])].sort(), ['api.example.com', 'example.com', 'other.example.net']);
      // Removing the env var removes its binding.
      const dropped = await client.patchAgent(agent.id, { env_vars: { KEEP: 'k' } });
      assert.deepEqual(dropped.env_var_hosts ?? {}, {});
      const bad = await rawPlatformRequest(backend.url, 'PATCH', `/agents/${agent.id}`, { auth: bearer(), body: { env_var_hosts: { KEEP: ['nowhere.example.org'] } } });
      assert.equal(bad.status, 400);
    });

    for (const harness of harnesses) {
      it(`brings a ${harness} session up: creating at once, then phases, then ready`, testTimeout, async () => {
        const agent = await createAgent(`up-${harness}`, harness);
        const createdReply = await rawPlatformRequest(backend.url, 'POST', `/agents/${agent.id}/session`, { auth: bearer(), body: { title: run } });
        assert.equal(createdReply.status, 200, createdReply.text);
        const created = Session.parse(createdReply.json);
        sessionIds.add(created.id);
        assert.equal(created.status, 'creating');
        assert.equal(created.agent_id, agent.id);

        const phases: string[] = [];
        const ready = await settle(created.id, phases);
        assert.equal(ready.status, 'ready', `bring-up ended ${ready.status}: ${ready.failure_reason ?? ''}`);
        assert.equal(ready.id, created.id);
        assert.equal(ready.phase, 'ready');
        assertPhasesInOrder(phases);
        assert.ok(ready.created_at, 'created_at is set');
        assert.ok(typeof ready.idle_timeout_ms === 'number' && ready.idle_timeout_ms > 0, 'idle_timeout_ms is a positive number');
        assert.equal(ready.supports_tui, TUI_HARNESSES.has(harness));
        if (TUI_HARNESSES.has(harness)) {
          assert.ok(ready.tty_token, 'a TUI session has a tty token');
          assert.ok(ready.tty_url || ready.sandbox_url, 'a TUI session has somewhere to attach');
          if (ready.tty_url) {
            const resolved = new URL(ready.tty_url, backend.url);
            assert.ok(resolved.pathname.endsWith(`/sessions/${created.id}/tty`), `tty_url ${resolved.pathname}`);
          }
        } else {
          assert.ok(ready.harness_session_id, 'an API session has a harness session id');
        }

        const listed = await client.listAgents({ search: agent.name, limit: 200 });
        const item = listed.data.find((a) => a.id === agent.id);
        assert.equal(item?.session_count, 1);
        assert.equal(item?.has_active_session, true);
      });
    }

    it('lists sessions as a bare array, newest first; DELETE answers 200 and the session ends dead', testTimeout, async () => {
      const agent = await createAgent('sessions');
      const older = await createSession(agent.id);
      await settle(older.id);
      const newer = await createSession(agent.id);

      const listReply = await rawPlatformRequest(backend.url, 'GET', `/sessions?agent_id=${encodeURIComponent(agent.id)}`, { auth: bearer() });
      assert.equal(listReply.status, 200);
      assert.ok(Array.isArray(listReply.json), 'the session list is a bare array');
      assert.deepEqual((listReply.json as Array<{ id: string }>).map((s) => s.id), [newer.id, older.id]);
      const limited = await client.listSessions({ agentId: agent.id, limit: 1 });
      assert.deepEqual(limited.map((s) => s.id), [newer.id]);

      const deleted = await rawPlatformRequest(backend.url, 'DELETE', `/sessions/${older.id}`, { auth: bearer() });
      assert.equal(deleted.status, 200);
      assert.deepEqual(DeleteSessionReply.parse(deleted.json), { id: older.id, status: 'deleted' });
      assert.equal((await client.getSession(older.id)).status, 'dead');
      const again = await client.deleteSession(older.id);
      assert.equal(again.id, older.id);
      assert.equal(again.status, 'dead', 'deleting an ended session answers its terminal status');

      // A session still coming up can be stopped too: DELETE is the only stop.
      const stopped = await client.deleteSession(newer.id);
      assert.equal(stopped.status, 'deleted');
      assert.equal((await settle(newer.id)).status, 'dead');

      await rejects(client.getSession(`${run}-no-such-session`), 404);
    });

    it('restarts a session under the same id, refusing (409) while it is creating', testTimeout, async () => {
      const agent = await createAgent('restart');
      const session = await createSession(agent.id);
      await rejects(client.restartSession(session.id), 409);
      assert.equal((await settle(session.id)).status, 'ready');

      const restarted = await client.restartSession(session.id);
      assert.equal(restarted.id, session.id);
      assert.ok(restarted.status === 'creating' || restarted.status === 'ready', `restart answered ${restarted.status}`);
      const phases: string[] = [];
      const ready = await settle(session.id, phases);
      assert.equal(ready.status, 'ready');
      assert.equal(ready.id, session.id);
      assertPhasesInOrder(phases);
      await rejects(client.restartSession(`${run}-no-such-session`), 404);
    });

    it('lists models through the gateway passthrough, where unknown paths are not the platform 404', testTimeout, async () => {
      const models = await client.models();
      assert.ok(Array.isArray(models));
      for (const id of models) assert.ok(typeof id === 'string' && id.length > 0, 'model ids are non-empty strings');

      const unknown = await rawPlatformRequest(backend.url, 'GET', `/api/v1/${run}-no-such-route`, { auth: bearer() });
      assert.equal(unknown.status, 404);
      assert.doesNotMatch(unknown.text, /agent '.*' not found/);
    });
  });
}
