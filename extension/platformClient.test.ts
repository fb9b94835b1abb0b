import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PlatformClient, normalizeBaseUrl } from './platformClient';
import { CancelledError, PlatformError, PlatformProtocolError, PlatformUnreachableError } from './errors';

const KEY = 'sk-master-0123456789abcdef0123456789';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** A scripted HTTP server on loopback: each request is answered by the next handler (the last repeats). */
async function serve(...handlers: Handler[]) {
  const seen: { method: string; url: string; auth?: string; body: string }[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const h = handlers[Math.min(seen.length - 1, handlers.length - 1)];
      h(req, res, body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const json = (status: number, value: unknown): Handler => (_q, res) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
};

function client(url: string, extra: Partial<ConstructorParameters<typeof PlatformClient>[0]> = {}) {
  return new PlatformClient({ baseUrl: url, apiKey: KEY, retryBaseDelayMs: 5, ...extra });
}

async function rejects<T extends Error>(p: Promise<unknown>, type: new (...a: any[]) => T): Promise<T> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
    return err as T;
  }
  assert.fail(`expected ${type.name}, but it resolved`);
}

describe('normalizeBaseUrl', () => {
  test('keeps scheme, host and path prefix; drops trailing slashes and pasted API paths', () => {
    assert.equal(normalizeBaseUrl('https://agents.example.com/'), 'https://agents.example.com');
    assert.equal(normalizeBaseUrl(' https://example.com/lap// '), 'https://example.com/lap');
    assert.equal(normalizeBaseUrl('http://127.0.0.1:4000/api/v1/managed_agents/agents'), 'http://127.0.0.1:4000');
  });
  test('rejects what would fail later, with the reason', () => {
    assert.throws(() => normalizeBaseUrl('agents.example.com'), /no scheme: use https:\/\/agents\.example\.com/);
    assert.throws(() => normalizeBaseUrl(''), /Enter the platform URL/);
    assert.throws(() => normalizeBaseUrl('ftp://x'), /Only http/);
    assert.throws(() => normalizeBaseUrl('https://user:secret@x.com'), /not in the URL/);
    assert.throws(() => normalizeBaseUrl('https://x.com/?key=1'), /no query/);
    assert.throws(() => normalizeBaseUrl('https://'), /not a valid URL/);
  });
});

describe('PlatformClient', () => {
  const servers: { close(): Promise<void> }[] = [];
  after(() => Promise.all(servers.map((s) => s.close())));
  const start = async (...h: Handler[]) => {
    const s = await serve(...h);
    servers.push(s);
    return s;
  };

  test('sends the key only as a bearer header, never in the URL', async () => {
    const s = await start(json(200, { data: [], total: 0, limit: 1, offset: 0 }));
    await client(s.url).listAgents({ limit: 1, search: 'a b' });
    assert.equal(s.seen[0].auth, `Bearer ${KEY}`);
    assert.equal(s.seen[0].url, '/api/v1/managed_agents/agents?limit=1&search=a+b');
    assert.ok(!s.seen[0].url.includes(KEY));
  });

  test('401 says the key was rejected, and the key never appears in the error even if echoed', async () => {
    const s = await start(json(401, { error: `unauthorized: got Bearer ${KEY}` }));
    const err = await rejects(client(s.url).getAgent('a'), PlatformError);
    assert.equal(err.status, 401);
    assert.match(err.message, /^The master key was rejected by 127\.0\.0\.1:\d+/);
    assert.ok(!err.message.includes(KEY) && !String(err.detail).includes(KEY) && !String(err.stack).includes(KEY));
  });

  test('404, and 500 in each of the three error shapes, carry the platform text', async () => {
    const s = await start(
      json(404, { error: "agent 'nope' not found" }),
      json(500, { error: 'database is locked' }),
      json(500, { error: { error: 'sandbox controller crashed' } }),
      json(500, { error: [{ path: ['model'], message: 'Required' }] }),
    );
    const c = client(s.url, { retries: 0 });
    const e404 = await rejects(c.getAgent('nope'), PlatformError);
    assert.equal(e404.status, 404);
    assert.equal(e404.detail, "agent 'nope' not found");
    for (const expected of ['database is locked', 'sandbox controller crashed', 'model: Required']) {
      const e = await rejects(c.deleteAgent('x'), PlatformError);
      assert.equal(e.status, 500);
      assert.equal(e.detail, expected);
      assert.match(e.message, new RegExp(`answered 500: ${expected}`));
    }
  });

  test('an HTML page instead of JSON is a protocol error that says so', async () => {
    const html = '<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>hi</body></html>';
    const s = await start((_q, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
    });
    const err = await rejects(client(s.url).listAgents(), PlatformProtocolError);
    assert.match(err.message, /HTML page \("Welcome to nginx!"\).*check the URL/);
  });

  test('a JSON answer of the wrong shape names the field', async () => {
    const s = await start(json(200, { agents: [] }));
    const err = await rejects(client(s.url).listAgents(), PlatformProtocolError);
    assert.match(err.message, /data/);
  });

  test('idempotent GETs retry on 502/503/504 and succeed', async () => {
    const s = await start(json(503, { error: 'warming up' }), json(502, 'bad gateway'), json(200, { id: 'a1', model: 'm' }));
    const agent = await client(s.url).getAgent('a1');
    assert.equal(agent.id, 'a1');
    assert.equal(s.seen.length, 3);
  });

  test('GETs retry after a dropped connection; POSTs never retry', async () => {
    const drop: Handler = (req) => req.socket.destroy();
    const s = await start(drop, json(200, { id: 's1', status: 'ready' }));
    assert.equal((await client(s.url).getSession('s1')).status, 'ready');
    assert.equal(s.seen.length, 2);

    const p = await start(json(503, { error: 'busy' }), json(200, { id: 'a', model: 'm' }));
    const err = await rejects(client(p.url).createAgent({ model: 'm' }), PlatformError);
    assert.equal(err.status, 503);
    assert.equal(p.seen.length, 1);
  });

  test('retries give up after the configured count with the last error', async () => {
    const s = await start(json(504, { error: 'upstream timeout' }));
    const err = await rejects(client(s.url, { retries: 2 }).listSessions(), PlatformError);
    assert.equal(err.status, 504);
    assert.equal(s.seen.length, 3);
  });

  test('a connection cut mid-body is reported, not parsed', async () => {
    const s = await start((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"data":[');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const err = await rejects(client(s.url, { retries: 0 }).listAgents(), PlatformUnreachableError);
    assert.match(err.message, /closed before the answer was complete|reset/);
  });

  test('nothing listening: a clear unreachable error naming the URL', async () => {
    const s = await start(json(200, {}));
    const url = s.url;
    await s.close();
    const err = await rejects(client(url, { retries: 0 }).listAgents(), PlatformUnreachableError);
    assert.equal(err.message, `Cannot reach ${url}: connection refused (is it running, and is the port right?)`);
  });

  test('ordinary requests time out; message requests have no overall timeout', async () => {
    const slow: Handler = (_q, res) => setTimeout(() => json(200, { info: { id: 'm', role: 'assistant' }, parts: [] })(_q, res, ''), 400);
    const s = await start(slow);
    const c = client(s.url, { requestTimeoutMs: 100, retries: 0 });
    const err = await rejects(c.getSession('x'), PlatformUnreachableError);
    assert.match(err.message, /no complete answer within/);
    const reply = await c.message('x', { text: 'hi' });
    assert.equal(reply.info.id, 'm');
  });

  test('an AbortSignal cancels a request in flight and closes its connection', async () => {
    const s = await start(() => {
      /* never answers */
    });
    const abort = new AbortController();
    const p = client(s.url).message('s', { text: 'long task' }, { signal: abort.signal });
    while (s.seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    abort.abort();
    await rejects(p, CancelledError);
    while (s.sockets.size > 0) await new Promise((r) => setTimeout(r, 5));
  });

  test('an already-aborted signal sends nothing', async () => {
    const s = await start(json(200, {}));
    const abort = new AbortController();
    abort.abort();
    await rejects(client(s.url).getAgent('a', { signal: abort.signal }), CancelledError);
    assert.equal(s.seen.length, 0);
  });

  test('oversized answers are refused', async () => {
    const s = await start(json(200, { data: [{ id: 'x'.repeat(5000), model: 'm' }] }));
    const err = await rejects(client(s.url, { maxResponseBytes: 1000 }).listAgents(), PlatformProtocolError);
    assert.match(err.message, /larger than 1000 bytes/);
  });

  test('listAllAgents pages through the envelope; findAgentByName searches and matches exactly', async () => {
    const all = Array.from({ length: 450 }, (_, i) => ({ id: `a${i}`, name: i === 449 ? 'target' : `agent-${i}`, model: 'm' }));
    const s = await start((req, res) => {
      const u = new URL(req.url!, 'http://x');
      const search = u.searchParams.get('search');
      const list = search ? all.filter((a) => a.name.includes(search)) : all;
      const limit = Number(u.searchParams.get('limit') ?? 50);
      const offset = Number(u.searchParams.get('offset') ?? 0);
      json(200, { data: list.slice(offset, offset + limit), total: list.length, limit, offset })(req, res, '');
    });
    const c = client(s.url);
    assert.equal((await c.listAllAgents()).length, 450);
    assert.equal(s.seen.length, 3);
    assert.equal((await c.findAgentByName('target'))?.id, 'a449');
    assert.match(s.seen.at(-1)!.url, /search=target/);
    assert.equal(await c.findAgentByName('targ'), undefined);
  });

  test('models come from /api/v1/models, outside the managed_agents prefix', async () => {
    const s = await start(json(200, { data: [{ id: 'gpt-5', object: 'model' }, { id: 'claude-sonnet-4-5' }], object: 'list' }));
    assert.deepEqual(await client(s.url).models(), ['gpt-5', 'claude-sonnet-4-5']);
    assert.equal(s.seen[0].url, '/api/v1/models');
  });

  test('message_stream yields frames as they arrive, across odd chunk boundaries, comments and CRLF', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s = await start(async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': keepalive comment\r\n\r\ndata: {"type":"rea');
      res.write('dy"}\r\n\r\n');
      await gate;
      res.write('data: {"type":"harness_event",\ndata: "event":{"type":"message.part.delta","properties":{"delta":"Hel"}}}\n\n');
      res.write('data: not json\n\n');
      res.end('data: {"type":"done"}\n\n');
    });
    const frames: string[] = [];
    for await (const f of client(s.url).messageStream('s1', { text: 'hi' })) {
      frames.push(f.type);
      if (f.type === 'ready') release(); // the first frame arrived before the server finished
    }
    assert.deepEqual(frames, ['ready', 'harness_event', 'done']);
    assert.equal(s.seen[0].url, '/api/v1/managed_agents/sessions/s1/message_stream');
    assert.deepEqual(JSON.parse(s.seen[0].body), { text: 'hi' });
  });

  test('an error status on message_stream is a PlatformError with the platform text', async () => {
    const s = await start(json(409, { error: 'session is not ready' }));
    const stream = client(s.url).messageStream('s1', { text: 'hi' });
    const err = await rejects(stream.next(), PlatformError);
    assert.equal(err.detail, 'session is not ready');
  });
});
