/**
 * The claude-agent-sdk harness server for real: `dist/sandbox/claude-agent-sdk-server.js` as a host
 * process, on the pinned @anthropic-ai/claude-agent-sdk and the Claude Code binary it ships, against
 * the fake Anthropic API, driven through the bridge's harness routes (bridge/harnessApi.ts) with a
 * loopback endpoint — what the chat sidebar gets from a local claude-agent-sdk session:
 * a blocking message, a message_stream (ready, harness events with deltas, done), a tool call, the
 * thread, an abort in the middle of a slow reply, the initial prompt, precise errors for bad bodies;
 * and the fake saw the model, the key and the agent's prompt the server was given.
 * Skipped when the SDK's binary is not installed (fails on CI then).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { createParser } from 'eventsource-parser';
import { HarnessApi, type HarnessSessionRecord, type StreamWriter } from '../../bridge/harnessApi';
import { HttpError } from '../../bridge/sessions';
import { FAKE_ANSWER_MARKER, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fakeAnthropic';
import { skipOrFail } from '../tiers';
import { REPO } from './harness';

const SERVER_JS = join(REPO, 'dist', 'sandbox', 'claude-agent-sdk-server.js');
const CLAUDE_BIN = join(REPO, 'node_modules', '@anthropic-ai', `claude-agent-sdk-${process.platform}-${process.arch}`, 'claude');
const KEY = 'sk-ant-api03-harness-test-key-0123456789abcdef';
const MODEL = 'claude-sonnet-4-5';
const PROMPT = 'You are the sandbox test agent. Be brief.';
const TOOL_MARKER = 'TOOL-OUTPUT-314';
const SLOW_WORDS = 120;

interface Rec extends HarnessSessionRecord {
  agent_id: string;
}

function missing(): string | undefined {
  if (!existsSync(SERVER_JS)) return `${SERVER_JS} is not built (node esbuild.config.mjs).`;
  if (!existsSync(CLAUDE_BIN)) return `the Claude Agent SDK's Claude Code binary is not installed at ${CLAUDE_BIN} (npm ci).`;
  return undefined;
}

/** The server's environment: nothing of the caller's Anthropic/Claude settings. */
function serverEnv(home: string, workdir: string, fakeUrl: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(ANTHROPIC_|CLAUDE|NODE_|SANDBOX_AGENTS_)/.test(k)) env[k] = v;
  return {
    ...env,
    HOME: home,
    PORT: '0',
    SANDBOX_AGENTS_MODEL: MODEL,
    SANDBOX_AGENTS_PROMPT: PROMPT,
    SANDBOX_AGENTS_WORKDIR: workdir,
    ANTHROPIC_BASE_URL: fakeUrl,
    ANTHROPIC_API_KEY: KEY,
    DISABLE_AUTOUPDATER: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  };
}

/** Pids of a process's children (Linux). */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The bridge's way of answering: JSON errors, streamed replies handed the response. */
async function serveRoutes(api: HarnessApi<Rec>): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      void (async () => {
        try {
          const [, id, sub] = (req.url ?? '/').split('/');
          const body = raw ? (JSON.parse(raw) as unknown) : undefined;
          let reply: { status: number; body?: unknown; stream?: StreamWriter };
          if (sub === 'message') reply = { status: 200, body: await api.message(id!, body) };
          else if (sub === 'message_stream') reply = { status: 200, stream: await api.messageStream(id!, body) };
          else if (sub === 'messages') reply = { status: 200, body: await api.messages(id!) };
          else if (sub === 'abort') reply = { status: 200, body: await api.abort(id!) };
          else reply = { status: 404, body: { detail: 'Not Found' } };
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
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

async function post(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function sseFrames(res: Response): Promise<any[]> {
  const out: any[] = [];
  const parser = createParser({ onEvent: (e) => out.push(JSON.parse(e.data)) });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
  return out;
}

const textOf = (message: any): string =>
  (message.parts as any[])
    .filter((p) => p.type === 'text')
    .map((p) => p.text)
    .join('');

describe('claude-agent-sdk harness server (real SDK and Claude Code) through the bridge’s harness routes', { timeout: 240_000 }, () => {
  let fake: FakeAnthropic;
  let server: ChildProcess | undefined;
  let serverLog: string[] = [];
  let childPids = new Set<number>();
  let watch: NodeJS.Timeout | undefined;
  let routes: Awaited<ReturnType<typeof serveRoutes>> | undefined;
  let api: HarnessApi<Rec>;
  const records = new Map<string, Rec>();
  let port = 0;
  let home = '';
  let workdir = '';
  let skipped: string | undefined;

  const session = (id: string): Rec => {
    const r: Rec = { id, agent_id: 'sdk-agent', status: 'ready', title: id };
    records.set(id, r);
    return r;
  };

  before(async () => {
    skipped = missing();
    if (skipped) return;
    fake = await startFakeAnthropic({
      apiKey: KEY,
      chunkDelayMs: 25,
      thinking: 'Let me consider the request.',
      toolUse: (r) => (r.lastUserText.includes('use the tool') ? { name: 'Bash', input: { command: `echo ${TOOL_MARKER}`, description: 'Print the marker' } } : undefined),
      answer: (r) => {
        if (r.toolResults.length) return `The tool printed ${r.toolResults[0]!.text}.`;
        if (r.lastUserText.includes('slowly')) return Array.from({ length: SLOW_WORDS }, (_, i) => `word${i}`).join(' ');
        return `${FAKE_ANSWER_MARKER} answer to: ${r.lastUserText}`;
      },
    });
    home = mkdtempSync(join(tmpdir(), 'sa-sdk-home-'));
    workdir = mkdtempSync(join(tmpdir(), 'sa-sdk-work-'));
    writeFileSync(join(workdir, 'README.md'), '# a work tree\n');
    server = spawn(process.execPath, [SERVER_JS], { cwd: workdir, env: serverEnv(home, workdir, fake.url), stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: server.stderr! }).on('line', (l) => serverLog.push(l));
    const line = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the server did not start:\n${serverLog.join('\n')}`)), 20_000);
      createInterface({ input: server!.stdout! }).once('line', (l) => {
        clearTimeout(t);
        resolve(l);
      });
      server!.once('exit', (code) => reject(new Error(`the server exited (${code}):\n${serverLog.join('\n')}`)));
    });
    const listening = JSON.parse(line) as { event: string; port: number; pid: number };
    assert.equal(listening.event, 'listening');
    assert.equal(listening.pid, server.pid);
    port = listening.port;
    // Note the Claude Code processes the server starts, to check they end with it.
    watch = setInterval(() => {
      for (const pid of children(server!.pid!)) childPids.add(pid);
    }, 100);
    api = new HarnessApi<Rec>({
      session: (id) => {
        const r = records.get(id);
        if (!r) throw new HttpError(404, { error: `session ${id} not found` });
        return r;
      },
      harnessOf: () => 'claude-agent-sdk',
      endpoint: () => ({ host: '127.0.0.1', port }),
      saved: () => undefined,
      touch: () => undefined,
    });
    routes = await serveRoutes(api);
  });

  after(async () => {
    clearInterval(watch);
    await routes?.close();
    if (server?.pid && server.exitCode === null) {
      const exited = new Promise<void>((r) => server!.once('exit', () => r()));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
    // Every Claude Code process the server started is gone (ended by the server, else by us).
    await new Promise((r) => setTimeout(r, 500));
    const left = [...childPids].filter(alive);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    await fake?.close();
    if (home) rmSync(home, { recursive: true, force: true });
    if (workdir) rmSync(workdir, { recursive: true, force: true });
    assert.deepEqual(left, [], `Claude Code processes left running after the server stopped: ${left.join(', ')}`);
  });

  it('message: the reply is the fake model’s text, with tokens and cost; no onboarding was needed', async (t) => {
    if (skipOrFail(t, skipped)) return;
    session('s1');
    const r = await post(`${routes!.url}/s1/message`, { text: 'hello there' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.info.role, 'assistant');
    assert.equal(r.body.info.error, undefined, JSON.stringify(r.body.info.error));
    assert.equal(textOf(r.body), `${FAKE_ANSWER_MARKER} answer to: hello there`);
    assert.deepEqual(
      r.body.parts.map((p: any) => p.type),
      ['step-start', 'reasoning', 'text', 'step-finish'],
    );
    assert.equal(r.body.parts[1].text, 'Let me consider the request.');
    assert.equal(r.body.info.modelID, MODEL);
    assert.equal(r.body.info.finish, 'stop');
    assert.ok(r.body.info.tokens.input > 0 && r.body.info.tokens.output > 0, JSON.stringify(r.body.info.tokens));
    assert.ok(r.body.info.cost > 0);
    assert.equal(r.body.info.path.cwd, workdir);
    assert.deepEqual(records.get('s1')!.response, r.body);
  });

  it('the fake saw the configured model, key and agent prompt — and only them', async (t) => {
    if (skipOrFail(t, skipped)) return;
    const calls = fake.requests.filter((r) => r.path === '/v1/messages');
    assert.ok(calls.length >= 1);
    for (const c of calls) {
      assert.equal(c.model, MODEL);
      assert.equal(c.apiKey, KEY);
      assert.equal(c.status, 200);
      assert.ok(c.systemText.includes(PROMPT), 'the agent’s prompt is part of the system prompt');
    }
    assert.ok(calls.some((c) => c.lastUserText === 'hello there' && c.stream && c.toolCount > 0 && c.thinking));
  });

  it('message_stream: ready, harness events (with text and reasoning deltas), session.idle, done', async (t) => {
    if (skipOrFail(t, skipped)) return;
    session('s2');
    const res = await fetch(`${routes!.url}/s2/message_stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'stream this' }) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const frames = await sseFrames(res);
    const kinds = frames.map((f) => (f.type === 'harness_event' ? f.event.type : `<${f.type}>`));
    assert.equal(kinds[0], '<ready>');
    assert.equal(kinds[1], 'server.connected');
    assert.deepEqual(kinds.slice(-2), ['session.idle', '<done>']);
    assert.ok(!kinds.includes('<error>'), kinds.join(' '));
    const events = frames.filter((f) => f.type === 'harness_event').map((f) => f.event);
    const hid = records.get('s2')!.harness_session_id;
    for (const e of events) if (!e.type.startsWith('server.')) assert.equal(e.properties.sessionID, hid, e.type);
    // The user message first, then the assistant message growing.
    const updated = events.filter((e) => e.type === 'message.updated').map((e) => e.properties.info.role);
    assert.deepEqual([updated[0], updated.at(-1)], ['user', 'assistant']);
    const finalText = events.filter((e) => e.type === 'message.part.updated' && e.properties.part.type === 'text').at(-1).properties.part;
    const textDeltas = events.filter((e) => e.type === 'message.part.delta' && e.properties.partID === finalText.id);
    assert.ok(textDeltas.length > 3, 'the text came in several deltas');
    assert.ok(textDeltas.every((e) => e.properties.field === 'text' && e.properties.messageID === finalText.messageID));
    assert.equal(textDeltas.map((e) => e.properties.delta).join(''), `${FAKE_ANSWER_MARKER} answer to: stream this`);
    assert.equal(finalText.text, `${FAKE_ANSWER_MARKER} answer to: stream this`);
    const reasoning = events.find((e) => e.type === 'message.part.updated' && e.properties.part.type === 'reasoning').properties.part;
    assert.ok(events.some((e) => e.type === 'message.part.delta' && e.properties.partID === reasoning.id), 'reasoning streamed too');
    const statuses = events.filter((e) => e.type === 'session.status').map((e) => e.properties.status.type);
    assert.deepEqual([statuses[0], statuses.at(-1)], ['busy', 'idle']);
  });

  it('a tool call runs in the work tree; the thread holds the tool part with its output, then the answer', async (t) => {
    if (skipOrFail(t, skipped)) return;
    session('s3');
    const r = await post(`${routes!.url}/s3/message`, { parts: [{ type: 'text', text: 'please use the tool' }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(textOf(r.body), `The tool printed ${TOOL_MARKER}.`);
    const thread = await api.messages('s3');
    const roles = thread.map((m: any) => m.info.role);
    assert.deepEqual(roles, ['user', 'assistant', 'assistant']);
    const tool = (thread[1] as any).parts.find((p: any) => p.type === 'tool');
    assert.equal(tool.tool, 'Bash');
    assert.match(tool.callID, /^toolu_/);
    assert.equal(tool.state.status, 'completed', JSON.stringify(tool.state));
    assert.deepEqual(tool.state.input, { command: `echo ${TOOL_MARKER}`, description: 'Print the marker' });
    assert.equal(tool.state.output.trim(), TOOL_MARKER);
    assert.equal(tool.state.title, 'Print the marker');
    assert.equal((thread[1] as any).info.finish, 'tool-calls');
    assert.equal((thread[2] as any).info.parentID, (thread[0] as any).info.id);
  });

  it('messages: the whole thread of a session, user and assistant, in order, across turns', async (t) => {
    if (skipOrFail(t, skipped)) return;
    const r = await post(`${routes!.url}/s1/message`, { text: 'second turn' });
    assert.equal(textOf(r.body), `${FAKE_ANSWER_MARKER} answer to: second turn`);
    const res = await fetch(`${routes!.url}/s1/messages`);
    const thread = (await res.json()) as any[];
    assert.deepEqual(
      thread.map((m) => [m.info.role, m.info.role === 'user' ? textOf(m) : textOf(m).slice(0, 40)]),
      [
        ['user', 'hello there'],
        ['assistant', `${FAKE_ANSWER_MARKER} answer to: hello there`.slice(0, 40)],
        ['user', 'second turn'],
        ['assistant', `${FAKE_ANSWER_MARKER} answer to: second turn`.slice(0, 40)],
      ],
    );
    // The second turn went to the same Claude Code session: the model saw the first turn too.
    const second = fake.requests.filter((q) => q.lastUserText === 'second turn').at(-1)!;
    assert.ok(second, 'the second turn reached the model');
  });

  it('abort during a slow reply: the reply ends as MessageAbortedError with its partial text; the session goes on', async (t) => {
    if (skipOrFail(t, skipped)) return;
    session('s4');
    const pending = post(`${routes!.url}/s4/message`, { text: 'answer slowly please' });
    // Wait until the fake is streaming the slow answer.
    const deadline = Date.now() + 30_000;
    while (!fake.requests.some((q) => q.lastUserText === 'answer slowly please') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 600));
    const aborted = await post(`${routes!.url}/s4/abort`, {});
    assert.deepEqual(aborted, { status: 200, body: { ok: true } });
    const t0 = Date.now();
    const r = await pending;
    assert.ok(Date.now() - t0 < 10_000, 'the reply came soon after the abort');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.info.error, { name: 'MessageAbortedError', data: { message: 'The operation was aborted.' } });
    const words = textOf(r.body).split(' ').filter(Boolean);
    assert.ok(words.length > 0 && words.length < SLOW_WORDS, `partial text: ${words.length} words`);
    // The next turn works, in the same session.
    const next = await post(`${routes!.url}/s4/message`, { text: 'after the abort' });
    assert.equal(next.body.info.error, undefined);
    assert.equal(textOf(next.body), `${FAKE_ANSWER_MARKER} answer to: after the abort`);
    const thread = await api.messages('s4');
    assert.deepEqual(
      thread.map((m: any) => m.info.role),
      ['user', 'assistant', 'user', 'assistant'],
    );
  });

  it('a Claude Code process that died is started again on the next turn, resuming the conversation', async (t) => {
    if (skipOrFail(t, skipped)) return;
    const running = children(server!.pid!);
    assert.ok(running.length > 0);
    for (const pid of running) process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (running.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const r = await post(`${routes!.url}/s1/message`, { text: 'third turn' });
    assert.equal(r.body.info.error, undefined, JSON.stringify(r.body.info.error));
    assert.equal(textOf(r.body), `${FAKE_ANSWER_MARKER} answer to: third turn`);
    const third = fake.requests.filter((q) => q.lastUserText === 'third turn').at(-1)!;
    const first = fake.requests.find((q) => q.lastUserText === 'hello there')!;
    assert.ok(third.messageCount >= first.messageCount + 4, `the model got the earlier turns (${first.messageCount} → ${third.messageCount} messages)`);
    assert.equal((await api.messages('s1')).length, 6);
  });

  it('initial_prompt: sent once the session is ready, the reply kept as response', async (t) => {
    if (skipOrFail(t, skipped)) return;
    const rec = session('s5');
    api.sessionCreated('s5', { initial_prompt: 'begin the task' });
    await api.sessionReady('s5');
    const deadline = Date.now() + 60_000;
    while (!rec.response && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(textOf(rec.response), `${FAKE_ANSWER_MARKER} answer to: begin the task`);
  });

  it('bad bodies get precise errors and reach neither the harness nor the model', async (t) => {
    if (skipOrFail(t, skipped)) return;
    session('s6');
    const before = fake.requests.length;
    const none = await post(`${routes!.url}/s6/message`, { title: 'no content' });
    assert.deepEqual(none, { status: 400, body: { error: "message body must include 'text', 'parts', or 'attachments'" } });
    const bmp = await post(`${routes!.url}/s6/message_stream`, { attachments: [{ mime_type: 'image/bmp', base64: 'Qk0=' }] });
    assert.equal(bmp.status, 400);
    assert.deepEqual(bmp.body.error, [{ code: 'custom', path: ['attachments', 0, 'mime_type'], message: 'mime_type must be one of: image/png, image/jpeg, image/gif, image/webp' }]);
    // Parts the harness cannot take: its own 400, passed on as the platform's 502.
    const badPart = await post(`${routes!.url}/s6/message`, { parts: [{ type: 'tool' }] });
    assert.equal(badPart.status, 502);
    assert.equal(badPart.body.error, 'harness request failed: 400 parts[0].type: expected "text", "file" or "image", got "tool"');
    assert.equal(fake.requests.length, before);
  });

  it('the server ends its Claude Code processes when it stops', async (t) => {
    if (skipOrFail(t, skipped)) return;
    assert.ok(childPids.size > 0, 'the server ran Claude Code');
    const exited = new Promise<number | null>((r) => server!.once('exit', (code) => r(code)));
    server!.kill('SIGTERM');
    assert.equal(await exited, 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([...childPids].filter(alive), []);
  });
});
