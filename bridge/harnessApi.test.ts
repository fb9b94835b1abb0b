/**
 * The platform's message endpoints for API-harness sessions (harnessApi.ts) against a small
 * opencode-style harness on loopback: body checks and their errors, attachments as file parts,
 * the SSE frames of message_stream in order (only this session's events, heartbeats through,
 * `done` on idle), the cap, a client leaving (the turn goes on), the thread, abort, the verbatim
 * opencode proxy, a harness that forgot its session, and the initial prompt.
 * Run: node --import tsx --test bridge/harnessApi.test.ts
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createParser } from 'eventsource-parser';
import { HarnessApi, expandBody, forwards, type HarnessEndpoint, type HarnessLimits, type HarnessSessionRecord, type StreamWriter } from './harnessApi';
import { HttpError } from './sessions';

// ---------------------------------------------------------------------------------------------
// A scripted opencode-style harness: each prompt answers "Echo: <text>" in two deltas.

interface FakeHarness {
  endpoint: HarnessEndpoint;
  requests: { method: string; path: string; body: unknown }[];
  sessions: Set<string>;
  aborted: string[];
  /** Publishes a bus event to every subscriber. */
  publish(type: string, properties: Record<string, unknown>): void;
  subscribers(): number;
  /** Pause before each step of a turn. */
  stepMs: number;
  close(): Promise<void>;
}

async function startFakeHarness(): Promise<FakeHarness> {
  const subs = new Set<http.ServerResponse>();
  const fake: FakeHarness = {
    endpoint: { host: '127.0.0.1', port: 0 },
    requests: [],
    sessions: new Set(),
    aborted: [],
    stepMs: 5,
    publish: (type, properties) => {
      for (const res of subs) res.write(`data: ${JSON.stringify({ type, properties })}\n\n`);
    },
    subscribers: () => subs.size,
    close: async () => undefined,
  };
  let n = 0;
  const turn = async (sid: string, parts: { type: string; text?: string }[]) => {
    const text = parts.map((p) => p.text ?? `[${p.type}]`).join(' ');
    const info = { id: `msg_${++n}`, sessionID: sid, role: 'assistant', time: { created: 1 } };
    const part = { id: `prt_${n}`, sessionID: sid, messageID: info.id, type: 'text', text: '' };
    const pause = () => new Promise((r) => setTimeout(r, fake.stepMs));
    fake.publish('message.updated', { sessionID: sid, info });
    // Another session's chatter must not reach this session's stream.
    fake.publish('message.updated', { sessionID: 'ses_other', info: { id: 'msg_other' } });
    await pause();
    fake.publish('message.part.updated', { sessionID: sid, part, time: 1 });
    for (const delta of ['Echo:', ` ${text}`]) {
      await pause();
      if (fake.aborted.includes(sid)) break;
      part.text += delta;
      fake.publish('message.part.delta', { sessionID: sid, messageID: info.id, partID: part.id, field: 'text', delta });
    }
    fake.publish('message.part.updated', { sessionID: sid, part, time: 2 });
    fake.publish('session.idle', { sessionID: sid });
    return { info: { ...info, time: { created: 1, completed: 2 } }, parts: [part] };
  };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      const path = req.url ?? '/';
      fake.requests.push({ method: req.method ?? 'GET', path, body });
      const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      const m = /^\/session\/([^/?]+)\/([a-z_]+)/.exec(path);
      if (req.method === 'GET' && path === '/event') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        subs.add(res);
        res.write(`data: ${JSON.stringify({ type: 'server.connected', properties: {} })}\n\n`);
        res.on('close', () => subs.delete(res));
        return;
      }
      if (req.method === 'POST' && path === '/session') {
        const id = `ses_${++n}`;
        fake.sessions.add(id);
        return json(200, { id, title: (body as { title?: string }).title });
      }
      if (!m) return json(404, { name: 'NotFoundError', data: { message: `no route ${path}` } });
      const [, sid, what] = m;
      if (!fake.sessions.has(sid!)) return json(404, { name: 'NotFoundError', data: { message: `Session not found: ${sid}` } });
      const parts = (body?.parts ?? []) as { type: string; text?: string }[];
      if (req.method === 'POST' && what === 'message') return void turn(sid!, parts).then((reply) => json(200, reply));
      if (req.method === 'POST' && what === 'prompt_async') {
        void turn(sid!, parts);
        return res.writeHead(204).end();
      }
      if (req.method === 'POST' && what === 'abort') {
        fake.aborted.push(sid!);
        return json(200, true);
      }
      if (req.method === 'GET' && what === 'message') {
        res.setHeader('x-next-cursor', 'c1');
        return json(200, [{ info: { id: 'msg_u', role: 'user' }, parts: [] }]);
      }
      return json(404, { name: 'NotFoundError', data: { message: 'no route' } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.endpoint = { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
  fake.close = () =>
    new Promise<void>((r) => {
      for (const res of subs) res.destroy();
      server.close(() => r());
      server.closeAllConnections();
    });
  return fake;
}

// ---------------------------------------------------------------------------------------------
// The API over a few stored sessions, and a server that answers like the bridge's (JSON errors,
// streamed replies handed the response).

interface Record_ extends HarnessSessionRecord {
  agent_id: string;
  touched: number;
  saves: number;
}

function setup(fake: FakeHarness, limits: Partial<HarnessLimits> = {}) {
  const records = new Map<string, Record_>();
  const harnessOf: Record<string, string> = { 'agent-sdk': 'claude-agent-sdk', 'agent-oc': 'opencode', 'agent-tui': 'claude-code' };
  const add = (id: string, agent_id = 'agent-sdk', status = 'ready') => {
    const r: Record_ = { id, agent_id, status, title: `title ${id}`, touched: 0, saves: 0 };
    records.set(id, r);
    return r;
  };
  const api = new HarnessApi<Record_>({
    session: (id) => {
      const r = records.get(id);
      if (!r) throw new HttpError(404, { error: `session ${id} not found` });
      return r;
    },
    harnessOf: (s) => harnessOf[s.agent_id],
    endpoint: (id) => (records.get(id)?.status === 'ready' ? fake.endpoint : undefined),
    saved: (s) => s.saves++,
    touch: (s) => s.touched++,
    limits,
  });
  return { api, records, add };
}

async function serve(route: (method: string, path: string, body: unknown) => Promise<{ status: number; body?: unknown; stream?: StreamWriter }>) {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      void (async () => {
        try {
          const reply = await route(req.method ?? 'GET', req.url ?? '/', raw ? JSON.parse(raw) : undefined);
          if (reply.stream) return await reply.stream(res, req);
          res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
        } catch (err) {
          const e = err instanceof HttpError ? err : new HttpError(500, { error: String(err) });
          res.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify(e.body));
        }
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function routes(api: HarnessApi<Record_>) {
  return async (method: string, path: string, body: unknown) => {
    const [, id, sub, ...rest] = path.split('?')[0]!.split('/');
    const search = path.includes('?') ? `?${path.split('?')[1]}` : '';
    if (sub === 'message') return { status: 200, body: await api.message(id!, body) };
    if (sub === 'message_stream') return { status: 200, stream: await api.messageStream(id!, body) };
    if (sub === 'events') return { status: 200, stream: await api.events(id!) };
    if (sub === 'messages') return { status: 200, body: await api.messages(id!) };
    if (sub === 'abort') return { status: 200, body: await api.abort(id!) };
    if (sub === 'opencode') return { status: 200, stream: await api.opencode(id!, { method, tail: rest.join('/'), search, body }) };
    return { status: 404, body: { detail: 'Not Found' } };
  };
}

async function post(url: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as unknown };
}

/** The SSE frames of a response, parsed, until it ends. */
async function frames(res: Response): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const parser = createParser({ onEvent: (e) => out.push(JSON.parse(e.data) as Record<string, unknown>) });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
  return out;
}

const eventTypes = (fs: Record<string, unknown>[]) => fs.map((f) => (f.type === 'harness_event' ? `event:${(f.event as { type: string }).type}` : String(f.type)));

// ---------------------------------------------------------------------------------------------

describe('expandBody and forwards', () => {
  it('attachments win over parts, parts over text; attachments become file parts with data URLs', () => {
    assert.deepEqual(expandBody({ text: 'see', parts: [{ type: 'text', text: 'ignored' }], attachments: [{ mime_type: 'image/png', base64: 'iVBO' }, { name: 'b.gif', mime_type: 'image/gif', base64: 'R0lG' }] }), [
      { type: 'text', text: 'see' },
      { type: 'file', mime: 'image/png', filename: 'attachment-1.png', url: 'data:image/png;base64,iVBO' },
      { type: 'file', mime: 'image/gif', filename: 'b.gif', url: 'data:image/gif;base64,R0lG' },
    ]);
    assert.deepEqual(expandBody({ text: '', attachments: [{ mime_type: 'image/png', base64: 'x' }] }), [{ type: 'file', mime: 'image/png', filename: 'attachment-1.png', url: 'data:image/png;base64,x' }]);
    assert.deepEqual(expandBody({ text: 'ignored', parts: [{ type: 'text', text: 'p' }] }), [{ type: 'text', text: 'p' }]);
    assert.deepEqual(expandBody({ text: 'hi', attachments: [] }), [{ type: 'text', text: 'hi' }]);
    assert.throws(() => expandBody({}), (e: HttpError) => e.status === 400 && (e.body as { error: string }).error === "message body must include 'text', 'parts', or 'attachments'");
  });

  it('forwards this session’s events and the session-less liveness events only', () => {
    assert.equal(forwards({ type: 'message.updated', properties: { sessionID: 'ses_a' } }, 'ses_a'), true);
    assert.equal(forwards({ type: 'message.updated', properties: { sessionID: 'ses_b' } }, 'ses_a'), false);
    assert.equal(forwards({ type: 'server.heartbeat', properties: {} }, 'ses_a'), true);
    assert.equal(forwards({ type: 'server.connected', properties: {} }, 'ses_a'), true);
    assert.equal(forwards({ type: 'session.created', properties: { info: {} } }, 'ses_a'), false);
  });
});

describe('HarnessApi against an opencode-style harness', () => {
  let fake: FakeHarness;
  let ctx: ReturnType<typeof setup>;
  let http_: Awaited<ReturnType<typeof serve>>;

  before(async () => {
    fake = await startFakeHarness();
  });
  after(async () => {
    await http_?.close();
    await fake.close();
  });
  beforeEach(async () => {
    await http_?.close();
    ctx = setup(fake, { streamCapMs: 3_000, connectWaitMs: 1_000, activityMs: 20 });
    http_ = await serve(routes(ctx.api));
    fake.requests.length = 0;
    fake.stepMs = 5;
  });

  it('message: creates the harness session on first use, answers the harness’s {info, parts}, keeps it as response', async () => {
    const s = ctx.add('s1');
    const r = await post(`${http_.url}/s1/message`, { text: 'hello' });
    assert.equal(r.status, 200);
    const reply = r.body as { info: { role: string }; parts: { text: string }[] };
    assert.equal(reply.info.role, 'assistant');
    assert.equal(reply.parts[0]!.text, 'Echo: hello');
    assert.match(s.harness_session_id ?? '', /^ses_/);
    assert.deepEqual(s.response, reply);
    assert.ok(s.saves >= 2 && s.touched >= 2);
    assert.deepEqual(
      fake.requests.map((q) => `${q.method} ${q.path.replace(s.harness_session_id!, 'HID')}`),
      ['POST /session', 'POST /session/HID/message'],
    );
    assert.deepEqual(fake.requests[0]!.body, { title: 'title s1' });
    assert.deepEqual(fake.requests[1]!.body, { parts: [{ type: 'text', text: 'hello' }] });
    // The next message reuses the session.
    await post(`${http_.url}/s1/message`, { parts: [{ type: 'text', text: 'again' }] });
    assert.equal(fake.requests.filter((q) => q.path === '/session').length, 1);
  });

  it('message: bad bodies get the platform’s precise errors, before anything reaches the harness', async () => {
    ctx.add('s1');
    const cases: [unknown, number, unknown][] = [
      [{}, 400, "message body must include 'text', 'parts', or 'attachments'"],
      [{ attachments: [] }, 400, "message body must include 'text', 'parts', or 'attachments'"],
      [{ text: 5 }, 400, [{ code: 'invalid_type', path: ['text'], message: 'Invalid input: expected string, received number' }]],
      [{ parts: ['x'] }, 400, [{ code: 'invalid_type', path: ['parts', 0], message: 'Invalid input: expected record, received string' }]],
      [{ attachments: [{ mime_type: 'image/bmp', base64: 'x' }] }, 400, [{ code: 'custom', path: ['attachments', 0, 'mime_type'], message: 'mime_type must be one of: image/png, image/jpeg, image/gif, image/webp' }]],
      [{ attachments: [{ mime_type: 'image/png', base64: 'x'.repeat(7_000_000) }] }, 400, [{ code: 'custom', path: ['attachments', 0, 'base64'], message: 'attachment exceeds 5242880 bytes' }]],
      [{ attachments: Array.from({ length: 11 }, () => ({ mime_type: 'image/png', base64: 'x' })) }, 400, [{ code: 'too_big', path: ['attachments'], message: 'Too big: expected array to have <=10 items' }]],
    ];
    for (const [body, status, error] of cases) {
      const r = await post(`${http_.url}/s1/message`, body);
      assert.equal(r.status, status, JSON.stringify(body).slice(0, 80));
      assert.deepEqual((r.body as { error: unknown }).error, error, JSON.stringify(body).slice(0, 80));
    }
    assert.equal(fake.requests.length, 0);
  });

  it('unknown session 404; terminal harness 409; not ready 409 — with clear messages', async () => {
    ctx.add('tui', 'agent-tui');
    ctx.add('starting', 'agent-oc', 'creating');
    const expect = async (path: string, status: number, error: string) => {
      const r = await post(`${http_.url}${path}`, { text: 'x' });
      assert.deepEqual([r.status, (r.body as { error: string }).error], [status, error], path);
    };
    await expect('/nope/message', 404, 'session nope not found');
    await expect('/nope/message_stream', 404, 'session nope not found');
    await expect('/tui/message', 409, 'session tui runs a terminal harness: connect to /tty');
    await expect('/tui/abort', 409, 'session tui runs a terminal harness: connect to /tty');
    await expect('/starting/message', 409, 'session starting is not ready (status creating)');
    await expect('/starting/message_stream', 409, 'session starting is not ready (status creating)');
    // The thread of a session without a harness thread is empty, as on the platform.
    assert.deepEqual(await ctx.api.messages('tui'), []);
    assert.deepEqual(await ctx.api.messages('starting'), []);
  });

  it('message_stream: ready, this session’s harness events with deltas, done — in that order', async () => {
    ctx.add('s1');
    const res = await fetch(`${http_.url}/s1/message_stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'stream me' }) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform');
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    const fs = await frames(res);
    assert.deepEqual(eventTypes(fs), [
      'ready',
      'event:server.connected',
      'event:message.updated',
      'event:message.part.updated',
      'event:message.part.delta',
      'event:message.part.delta',
      'event:message.part.updated',
      'event:session.idle',
      'done',
    ]);
    const deltas = fs.filter((f) => (f.event as { type?: string } | undefined)?.type === 'message.part.delta').map((f) => (f.event as { properties: { delta: string } }).properties.delta);
    assert.equal(deltas.join(''), 'Echo: stream me');
    assert.ok(!JSON.stringify(fs).includes('ses_other'), 'no other session’s events');
    const prompt = fake.requests.find((q) => q.path.endsWith('/prompt_async'));
    assert.deepEqual(prompt?.body, { parts: [{ type: 'text', text: 'stream me' }] });
  });

  it('message_stream: heartbeats pass through; the cap ends the stream with an error frame', async () => {
    ctx = setup(fake, { streamCapMs: 400, connectWaitMs: 1_000 });
    await http_.close();
    http_ = await serve(routes(ctx.api));
    ctx.add('s1');
    fake.stepMs = 2_000; // the turn outlasts the cap
    const res = await fetch(`${http_.url}/s1/message_stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'slow' }) });
    setTimeout(() => fake.publish('server.heartbeat', {}), 150);
    const fs = await frames(res);
    assert.deepEqual(eventTypes(fs).slice(0, 2), ['ready', 'event:server.connected']);
    assert.ok(eventTypes(fs).includes('event:server.heartbeat'));
    assert.deepEqual(fs.at(-1), { type: 'error', message: 'stream timeout' });
  });

  it('message_stream: a client that leaves stops the forwarding, not the turn', async () => {
    ctx.add('s1');
    fake.stepMs = 1_000; // the turn runs for seconds after the client left
    const ac = new AbortController();
    const res = await fetch(`${http_.url}/s1/message_stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'leave early' }), signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read(); // ready
    const before = fake.subscribers();
    ac.abort();
    const deadline = Date.now() + 700;
    while (fake.subscribers() >= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(fake.subscribers() < before, 'the bus subscription is gone while the turn still runs');
    assert.equal(fake.aborted.length, 0, 'nothing was aborted');
    assert.equal(fake.requests.filter((q) => q.path.endsWith('/abort')).length, 0);
  });

  it('message_stream: a harness that cannot be reached ends the stream with the platform’s error frame', async () => {
    const { api, add } = setup({ ...fake, endpoint: { host: '127.0.0.1', port: 1 } });
    const srv = await serve(routes(api));
    try {
      const r = add('s1');
      r.harness_session_id = 'ses_known';
      const res = await fetch(`${srv.url}/s1/message_stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'x' }) });
      assert.deepEqual(await frames(res), [{ type: 'error', message: 'harness event stream failed' }]);
      const blocking = await post(`${srv.url}/s1/message`, { text: 'x' });
      assert.equal(blocking.status, 502);
      assert.match((blocking.body as { error: string }).error, /^harness request failed: ECONNREFUSED/);
    } finally {
      await srv.close();
    }
  });

  it('events: subscribe only (nothing is sent to the harness)', async () => {
    const s = ctx.add('s1');
    await post(`${http_.url}/s1/message`, { text: 'first' });
    const res = await fetch(`${http_.url}/s1/events`);
    const got = frames(res);
    await new Promise((r) => setTimeout(r, 100));
    fake.publish('message.updated', { sessionID: s.harness_session_id, info: {} });
    fake.publish('session.idle', { sessionID: s.harness_session_id });
    assert.deepEqual(eventTypes(await got), ['ready', 'event:server.connected', 'event:message.updated', 'event:session.idle', 'done']);
    assert.equal(fake.requests.filter((q) => q.path.endsWith('/prompt_async')).length, 0);
  });

  it('messages and abort go to the harness session', async () => {
    const s = ctx.add('s1');
    assert.deepEqual(await ctx.api.messages('s1'), [], 'no thread before the first message');
    await post(`${http_.url}/s1/message`, { text: 'x' });
    assert.deepEqual(await ctx.api.messages('s1'), [{ info: { id: 'msg_u', role: 'user' }, parts: [] }]);
    assert.deepEqual(await post(`${http_.url}/s1/abort`, {}), { status: 200, body: { ok: true } });
    assert.deepEqual(fake.aborted.at(-1), s.harness_session_id);
  });

  it('a harness that forgot the session (restarted) gets a new one, and the message goes through', async () => {
    const s = ctx.add('s1');
    s.harness_session_id = 'ses_forgotten';
    const r = await post(`${http_.url}/s1/message`, { text: 'again' });
    assert.equal(r.status, 200);
    assert.notEqual(s.harness_session_id, 'ses_forgotten');
    assert.deepEqual(
      fake.requests.map((q) => q.path.replace(s.harness_session_id!, 'NEW')),
      ['/session/ses_forgotten/message', '/session', '/session/NEW/message'],
    );
  });

  it('opencode/…: the harness API verbatim (method, path, query, body, status, headers, SSE)', async () => {
    const s = ctx.add('s1');
    await post(`${http_.url}/s1/message`, { text: 'x' });
    const list = await fetch(`${http_.url}/s1/opencode/session/${s.harness_session_id}/message?limit=5`);
    assert.equal(list.status, 200);
    assert.equal(list.headers.get('x-next-cursor'), 'c1');
    assert.deepEqual(await list.json(), [{ info: { id: 'msg_u', role: 'user' }, parts: [] }]);
    assert.equal(fake.requests.at(-1)!.path, `/session/${s.harness_session_id}/message?limit=5`);
    const missing = await fetch(`${http_.url}/s1/opencode/session/ses_nope/abort`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { name: string }).name, 'NotFoundError');
    const bus = await fetch(`${http_.url}/s1/opencode/event`);
    assert.match(bus.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = bus.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.equal(first, 'data: {"type":"server.connected","properties":{}}\n\n');
    await reader.cancel();
  });

  it('opencode/…: a session that ended answers 410; one still starting is waited for (then 504)', async () => {
    ctx = setup(fake, { readyWaitMs: 300 });
    await http_.close();
    http_ = await serve(routes(ctx.api));
    ctx.add('dead', 'agent-oc', 'dead');
    const starting = ctx.add('starting', 'agent-oc', 'creating');
    assert.equal((await fetch(`${http_.url}/dead/opencode/session`)).status, 410);
    const t0 = Date.now();
    const late = await fetch(`${http_.url}/starting/opencode/session`);
    assert.equal(late.status, 504);
    assert.ok(Date.now() - t0 >= 250);
    setTimeout(() => (starting.status = 'ready'), 100);
    const ok = await fetch(`${http_.url}/starting/opencode/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"via proxy"}' });
    assert.equal(ok.status, 200);
  });

  it('initial_prompt: sent once the session is ready; the reply lands in response', async () => {
    const s = ctx.add('s1');
    ctx.api.sessionCreated('s1', { initial_prompt: 'start here' });
    await ctx.api.sessionReady('s1');
    assert.match(s.harness_session_id ?? '', /^ses_/);
    const deadline = Date.now() + 3_000;
    while (!s.response && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal((s.response as { parts: { text: string }[] }).parts[0]!.text, 'Echo: start here');
    // Once only.
    await ctx.api.sessionReady('s1');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fake.requests.filter((q) => q.path.endsWith('/message') && q.method === 'POST').length, 1);
  });

  it('sessionReady replaces a stale harness session (restart) and never throws', async () => {
    const s = ctx.add('s1');
    s.harness_session_id = 'ses_from_before_restart';
    await ctx.api.sessionReady('s1');
    assert.notEqual(s.harness_session_id, 'ses_from_before_restart');
    await ctx.api.sessionReady('nope');
    ctx.add('tui', 'agent-tui');
    await ctx.api.sessionReady('tui');
    assert.equal(fake.requests.filter((q) => q.path === '/session').length, 1);
  });
});
