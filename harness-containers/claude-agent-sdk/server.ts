/**
 * The `claude-agent-sdk` harness server: an agent on `@anthropic-ai/claude-agent-sdk` behind the
 * subset of opencode's HTTP API that the platform (and the bridge) drive API harnesses with:
 *
 *   POST   /session                      {title?, prompt?}        → Session
 *   GET    /session                                               → Session[]
 *   GET    /session/status                                        → {[id]: {type}} (busy sessions)
 *   GET    /session/:id                                           → Session
 *   DELETE /session/:id                                           → true
 *   POST   /session/:id/message          {parts, model?, messageID?} → {info, parts}: the turn's last
 *                                         assistant message, once the turn is over
 *   POST   /session/:id/prompt_async     same body                → 204; the turn runs, the bus tells
 *   GET    /session/:id/message          ?limit=                  → [{info, parts}] (user and assistant)
 *   GET    /session/:id/message/:msgID                            → {info, parts}
 *   POST   /session/:id/abort                                     → true
 *   GET    /event                                                 → SSE: `data: {type, properties}`:
 *          server.connected first, server.heartbeat every 10 s, then message.updated,
 *          message.part.updated, message.part.delta, session.status, session.error, session.idle, …
 *
 * Each session keeps one Claude Code process (the SDK's `query()` with streaming input) across its
 * turns, so a turn does not pay for a new process; abort interrupts the running turn; a process that
 * ended is started again with `resume` on the next turn, so the conversation goes on.
 *
 * Environment: PORT (default 4096; 0 picks a free one), SANDBOX_AGENTS_MODEL, SANDBOX_AGENTS_PROMPT
 * (appended to Claude Code's own system prompt), SANDBOX_AGENTS_WORKDIR (default /work/repo),
 * ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY (read by Claude Code), SANDBOX_AGENTS_CLAUDE_PATH (another
 * Claude Code binary). The SDK is loaded from /opt/claude-agent-sdk/node_modules when present
 * (the image), else resolved as usual (NODE_PATH, node_modules above this file). Listens on
 * 127.0.0.1; prints one line `{"event":"listening","port":N,"pid":N}` on stdout, logs to stderr.
 */
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Options, Query, SDKMessage, SDKUserMessage } from '@anthropic-ai/claude-agent-sdk';
import { BadPrompt, TurnMapper, preparePrompt, type PreparedPrompt, type SdkMessage } from './mapping';
import { ABORTED_ERROR, newId, type AssistantMessage, type BusEvent, type Message, type SessionInfo } from './opencode';

const SDK_PACKAGE = '@anthropic-ai/claude-agent-sdk';
/** Where the image installs the SDK (outside the work tree, so the agent's own node_modules stay its own). */
const IMAGE_SDK_DIR = '/opt/claude-agent-sdk/node_modules';
const HEARTBEAT_MS = 10_000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** An abort that the agent does not honour within this time closes its process. */
const ABORT_GRACE_MS = 8_000;
/** An event subscriber that stopped reading is dropped past this much buffered output. */
const MAX_SUBSCRIBER_BUFFER = 8 * 1024 * 1024;

const config = {
  port: Number(process.env.PORT ?? 4096),
  model: stripProvider(process.env.SANDBOX_AGENTS_MODEL || 'claude-sonnet-4-5'),
  prompt: process.env.SANDBOX_AGENTS_PROMPT ?? '',
  workdir: process.env.SANDBOX_AGENTS_WORKDIR ?? '/work/repo',
  claudePath: process.env.SANDBOX_AGENTS_CLAUDE_PATH || undefined,
};

function log(message: string): void {
  process.stderr.write(`[claude-agent-sdk] ${message}\n`);
}

function stripProvider(model: string): string {
  return model.replace(/^(anthropic|claude-agent-sdk|litellm)\//, '');
}

// ---------------------------------------------------------------------------------------------
// The SDK (ESM only, external to this bundle): resolved from the image's folder or as usual.

type Sdk = typeof import('@anthropic-ai/claude-agent-sdk');
let sdk: Promise<{ module: Sdk; version: string }> | undefined;

function loadSdk(): Promise<{ module: Sdk; version: string }> {
  sdk ??= (async () => {
    const requirers = [
      ...(existsSync(IMAGE_SDK_DIR) ? [createRequire(join(IMAGE_SDK_DIR, 'resolve.js'))] : []),
      createRequire(__filename),
    ];
    let entry: string | undefined;
    let failure: Error | undefined;
    for (const r of requirers) {
      try {
        entry = r.resolve(SDK_PACKAGE);
        break;
      } catch (err) {
        failure = err as Error;
      }
    }
    if (!entry) throw new Error(`${SDK_PACKAGE} is not installed (${failure?.message.split('\n')[0]})`);
    const module = (await import(pathToFileURL(entry).href)) as Sdk;
    let version = 'unknown';
    try {
      version = (createRequire(entry)('./package.json') as { version: string }).version;
    } catch {
      /* the version is informative only */
    }
    log(`loaded ${SDK_PACKAGE} ${version} from ${entry}`);
    return { module, version };
  })();
  sdk.catch(() => (sdk = undefined));
  return sdk;
}

// ---------------------------------------------------------------------------------------------
// The bus: every event goes to every `/event` subscriber.

const subscribers = new Set<http.ServerResponse>();

function publish(event: BusEvent): void {
  const frame = `data: ${JSON.stringify(event)}\n\n`;
  for (const res of subscribers) {
    if (res.writableLength > MAX_SUBSCRIBER_BUFFER) {
      subscribers.delete(res);
      res.destroy();
      continue;
    }
    res.write(frame);
  }
}

function subscribe(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    'x-content-type-options': 'nosniff',
    connection: 'keep-alive',
  });
  // Subscribed before the first byte leaves: whatever happens after the client saw
  // `server.connected` reaches it.
  subscribers.add(res);
  res.write(`data: ${JSON.stringify({ type: 'server.connected', properties: {} })}\n\n`);
  const heartbeat = setInterval(() => res.write(`data: ${JSON.stringify({ type: 'server.heartbeat', properties: {} })}\n\n`), HEARTBEAT_MS);
  const stop = () => {
    clearInterval(heartbeat);
    subscribers.delete(res);
  };
  req.on('close', stop);
  res.on('close', stop);
}

// ---------------------------------------------------------------------------------------------
// Streaming input: the user messages of a session's Claude Code process, pushed one per turn.

class InputQueue implements AsyncIterable<SDKUserMessage> {
  private readonly items: SDKUserMessage[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  push(message: SDKUserMessage): void {
    this.items.push(message);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SDKUserMessage> {
    for (;;) {
      const next = this.items.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

interface Turn {
  mapper: TurnMapper;
  done: (reply: AssistantMessage) => void;
  costBefore: number;
}

interface Queued {
  prompt: PreparedPrompt;
  modelID: string | undefined;
  ids: { messageID?: string; partIDs?: (string | undefined)[] };
  cancelled: boolean;
}

class AgentSession {
  readonly messages: Message[] = [];
  private process: { query: Query; input: InputQueue } | undefined;
  private sdkSessionId: string | undefined;
  private totalCost = 0;
  private model = config.model;
  private turn: Turn | undefined;
  private queue: Queued[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private abortTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly info: SessionInfo,
    private readonly systemPrompt: string,
  ) {}

  get busy(): boolean {
    return this.turn !== undefined || this.queue.length > 0;
  }

  /** Runs a turn after the ones before it; resolves with its last assistant message. */
  prompt(prompt: PreparedPrompt, modelID: string | undefined, ids: Queued['ids']): Promise<AssistantMessage> {
    const queued: Queued = { prompt, modelID, ids, cancelled: false };
    this.queue.push(queued);
    const run = this.chain.then(() => {
      this.queue = this.queue.filter((q) => q !== queued);
      return this.run(queued);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Aborts the running turn and the ones waiting. */
  abort(): void {
    for (const q of this.queue) q.cancelled = true;
    const turn = this.turn;
    const proc = this.process;
    if (!turn || turn.mapper.finished) return;
    turn.mapper.abortRequested();
    if (!proc) {
      this.endTurn(undefined, 'aborted');
      return;
    }
    proc.query.interrupt().catch((err: Error) => log(`session ${this.info.id}: interrupt failed: ${err.message}`));
    clearTimeout(this.abortTimer);
    this.abortTimer = setTimeout(() => {
      if (this.turn !== turn) return;
      log(`session ${this.info.id}: the agent did not stop within ${ABORT_GRACE_MS / 1000} s; closing its process`);
      this.stopProcess();
      this.endTurn(undefined, 'aborted');
    }, ABORT_GRACE_MS);
  }

  close(): void {
    this.abort();
    this.stopProcess();
  }

  private async run(q: Queued): Promise<AssistantMessage> {
    const modelID = q.modelID ? stripProvider(q.modelID) : this.model;
    const mapper = new TurnMapper(
      {
        sessionID: this.info.id,
        modelID,
        providerID: 'anthropic',
        cwd: config.workdir,
        emit: (type, properties) => publish({ type, properties }),
        record: (m) => this.messages.push(m),
      },
      q.prompt,
      q.ids,
    );
    const reply = new Promise<AssistantMessage>((resolve) => {
      this.turn = { mapper, done: resolve, costBefore: this.totalCost };
    });
    mapper.start();
    this.info.time.updated = Date.now();
    if (q.cancelled) {
      mapper.abortRequested();
      this.endTurn(undefined, 'aborted');
      return reply;
    }
    try {
      const proc = await this.ensureProcess();
      if (modelID !== this.model) {
        await proc.query.setModel(modelID);
        this.model = modelID;
      }
      if (this.turn?.mapper === mapper && !mapper.finished) {
        proc.input.push({ type: 'user', message: { role: 'user', content: q.prompt.content as never }, parent_tool_use_id: null });
      }
    } catch (err) {
      log(`session ${this.info.id}: ${(err as Error).message}`);
      this.endTurn(undefined, (err as Error).message);
    }
    return reply;
  }

  private async ensureProcess(): Promise<{ query: Query; input: InputQueue }> {
    if (this.process) return this.process;
    const { module } = await loadSdk();
    const input = new InputQueue();
    const options: Options = {
      cwd: config.workdir,
      model: this.model,
      systemPrompt: { type: 'preset', preset: 'claude_code', ...(this.systemPrompt ? { append: this.systemPrompt } : {}) },
      includePartialMessages: true,
      // The sandbox is the boundary: the agent acts without asking (nobody could answer).
      permissionMode: 'bypassPermissions',
      allowDangerouslySkipPermissions: true,
      disallowedTools: ['AskUserQuestion'],
      ...(this.sdkSessionId ? { resume: this.sdkSessionId } : {}),
      ...(config.claudePath ? { pathToClaudeCodeExecutable: config.claudePath } : {}),
      // Claude Code refuses to skip permissions as root unless told it is in a sandbox, which it is.
      env: { ...process.env, IS_SANDBOX: '1', CLAUDE_AGENT_SDK_CLIENT_APP: 'sandbox-agents' },
      stderr: (data) => {
        for (const line of data.split('\n')) if (line.trim()) log(`session ${this.info.id}: claude: ${line}`);
      },
    };
    const query = module.query({ prompt: input, options });
    const proc = { query, input };
    this.process = proc;
    void this.consume(proc);
    return proc;
  }

  /** Reads the process's messages until it ends; a turn still open then ends with the reason. */
  private async consume(proc: { query: Query; input: InputQueue }): Promise<void> {
    let failure = 'the agent process ended';
    try {
      for await (const m of proc.query) this.onMessage(m);
    } catch (err) {
      failure = `the agent process failed: ${(err as Error).message}`;
    }
    if (this.process === proc) this.process = undefined;
    if (this.turn) {
      log(`session ${this.info.id}: ${failure}`);
      this.endTurn(undefined, failure);
    }
  }

  private onMessage(m: SDKMessage): void {
    if (m.type === 'system' && m.subtype === 'init') this.sdkSessionId = m.session_id;
    const turn = this.turn;
    if (!turn) return;
    turn.mapper.handle(m as unknown as SdkMessage);
    if (m.type === 'result') {
      this.endTurn(m as unknown as SdkMessage);
      this.totalCost = m.total_cost_usd;
    }
  }

  private endTurn(result: SdkMessage | undefined, failure?: string): void {
    const turn = this.turn;
    if (!turn) return;
    this.turn = undefined;
    clearTimeout(this.abortTimer);
    const reply = turn.mapper.finish(result, failure === 'aborted' ? undefined : failure, turn.costBefore);
    if (failure === 'aborted' && !reply.info.error) reply.info.error = ABORTED_ERROR;
    this.info.time.updated = Date.now();
    turn.done(reply);
  }

  private stopProcess(): void {
    const proc = this.process;
    this.process = undefined;
    if (!proc) return;
    proc.input.end();
    try {
      proc.query.close();
    } catch {
      /* already gone */
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

const sessions = new Map<string, AgentSession>();

class HttpFailure extends Error {
  constructor(
    readonly status: number,
    /** opencode's error name (`NotFoundError`, `BadRequestError`). */
    readonly errorName: string,
    message: string,
  ) {
    super(message);
  }
}

const notFound = (what: string) => new HttpFailure(404, 'NotFoundError', what);
const badRequest = (message: string) => new HttpFailure(400, 'BadRequestError', message);

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpFailure(413, 'BadRequestError', `request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw badRequest(`invalid JSON body: ${(err as Error).message}`);
  }
}

function sessionOr404(id: string): AgentSession {
  const s = sessions.get(id);
  if (!s) throw notFound(`Session not found: ${id}`);
  return s;
}

/** A prompt body: `{parts, model?: {providerID, modelID}, messageID?}` (opencode's PromptInput subset). */
function promptBody(body: unknown): { prompt: PreparedPrompt; modelID: string | undefined; ids: Queued['ids'] } {
  if (!body || typeof body !== 'object') throw badRequest('expected a JSON object with "parts"');
  const b = body as Record<string, unknown>;
  let prompt: PreparedPrompt;
  try {
    prompt = preparePrompt(b.parts);
  } catch (err) {
    if (err instanceof BadPrompt) throw badRequest(err.message);
    throw err;
  }
  const model = b.model as { modelID?: unknown } | undefined;
  const modelID = model && typeof model === 'object' && typeof model.modelID === 'string' && model.modelID ? model.modelID : undefined;
  const messageID = typeof b.messageID === 'string' && b.messageID.startsWith('msg_') ? b.messageID : undefined;
  const partIDs = (b.parts as unknown[])
    .filter((p) => !(p && typeof p === 'object' && (p as { ignored?: unknown }).ignored === true))
    .map((p) => {
      const id = (p as { id?: unknown }).id;
      return typeof id === 'string' && id.startsWith('prt_') ? id : undefined;
    });
  return { prompt, modelID, ids: { messageID, partIDs } };
}

async function route(req: http.IncomingMessage, res: http.ServerResponse, version: () => string): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://harness');
  const method = req.method ?? 'GET';
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const [a, id, sub, extra] = parts;

  if (method === 'GET' && parts.length === 0) return send(res, 200, { harness: 'claude-agent-sdk', model: config.model, workdir: config.workdir });
  if (method === 'GET' && a === 'event' && parts.length === 1) return subscribe(req, res);
  if (a !== 'session') throw notFound(`Not found: ${method} ${url.pathname}`);

  if (parts.length === 1) {
    if (method === 'GET') return send(res, 200, [...sessions.values()].map((s) => s.info).sort((x, y) => y.time.updated - x.time.updated));
    if (method === 'POST') {
      const body = ((await readJson(req)) ?? {}) as { title?: unknown; prompt?: unknown };
      const now = Date.now();
      const info: SessionInfo = {
        id: newId('ses'),
        projectID: 'global',
        directory: config.workdir,
        title: typeof body.title === 'string' && body.title ? body.title : `New session - ${new Date(now).toISOString()}`,
        version: version(),
        time: { created: now, updated: now },
      };
      // The platform sends the agent's instructions as `prompt`; the image's env carries them otherwise.
      const prompt = typeof body.prompt === 'string' && body.prompt.trim() ? body.prompt : config.prompt;
      sessions.set(info.id, new AgentSession(info, prompt));
      publish({ type: 'session.created', properties: { info } });
      publish({ type: 'session.updated', properties: { info } });
      return send(res, 200, info);
    }
  }
  if (parts.length === 2 && id === 'status' && method === 'GET') {
    return send(res, 200, Object.fromEntries([...sessions.values()].filter((s) => s.busy).map((s) => [s.info.id, { type: 'busy' }])));
  }
  const session = sessionOr404(id!);
  if (parts.length === 2) {
    if (method === 'GET') return send(res, 200, session.info);
    if (method === 'DELETE') {
      session.close();
      sessions.delete(session.info.id);
      publish({ type: 'session.deleted', properties: { info: session.info } });
      return send(res, 200, true);
    }
  }
  if (sub === 'message' && parts.length === 3) {
    if (method === 'GET') {
      const limit = Number(url.searchParams.get('limit') ?? 0);
      const all = session.messages;
      return send(res, 200, limit > 0 ? all.slice(-limit) : all);
    }
    if (method === 'POST') {
      const { prompt, modelID, ids } = promptBody(await readJson(req));
      const reply = await session.prompt(prompt, modelID, ids);
      return send(res, 200, reply);
    }
  }
  if (sub === 'message' && extra && parts.length === 4 && method === 'GET') {
    const message = session.messages.find((m) => m.info.id === extra);
    if (!message) throw notFound(`Message not found: ${extra}`);
    return send(res, 200, message);
  }
  if (sub === 'prompt_async' && parts.length === 3 && method === 'POST') {
    const { prompt, modelID, ids } = promptBody(await readJson(req));
    void session.prompt(prompt, modelID, ids).catch((err: Error) => {
      publish({ type: 'session.error', properties: { sessionID: session.info.id, error: { name: 'UnknownError', data: { message: err.message } } } });
    });
    return send(res, 204);
  }
  if (sub === 'abort' && parts.length === 3 && method === 'POST') {
    session.abort();
    return send(res, 200, true);
  }
  throw notFound(`Not found: ${method} ${url.pathname}`);
}

// ---------------------------------------------------------------------------------------------

function main(): void {
  let version = 'unknown';
  void loadSdk().then(
    (s) => (version = s.version),
    (err: Error) => log(`the SDK is not available yet: ${err.message}`),
  );
  const server = http.createServer((req, res) => {
    route(req, res, () => version).catch((err: unknown) => {
      if (err instanceof HttpFailure) return send(res, err.status, { name: err.errorName, data: { message: err.message } });
      log(`${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      send(res, 500, { name: 'UnknownError', data: { message: (err as Error).message ?? String(err) } });
    });
  });
  server.requestTimeout = 0;
  server.listen(config.port, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(`${JSON.stringify({ event: 'listening', port, pid: process.pid })}\n`);
    log(`listening on 127.0.0.1:${port} (model ${config.model}, workdir ${config.workdir})`);
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: closing ${sessions.size} session(s)`);
    for (const s of sessions.values()) s.close();
    for (const res of subscribers) res.end();
    server.close();
    server.closeAllConnections();
    // Let the SDK end its Claude Code processes before this one goes.
    setTimeout(() => process.exit(0), 300).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
