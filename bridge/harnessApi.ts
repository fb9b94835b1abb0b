/**
 * The platform's message endpoints for sessions of API harnesses (`opencode`, `claude-agent-sdk`),
 * on top of the harness server's opencode-style API, as the platform implements them
 * (BerriAI/litellm-agent-platform, `sessions/[id]/{message,message_stream,messages,abort,events,
 * opencode}` and `server/harness.ts`):
 *
 * - `POST message`: the body checked as the platform checks it (`SendMessageBody`), expanded
 *   (attachments win over parts, parts over text), sent to `POST /session/{hid}/message`; the
 *   harness's `{info, parts}` (the turn's last assistant message) is the reply, kept as `response`.
 * - `POST message_stream`: SSE. Subscribes to the harness's `/event` bus, says `{"type":"ready"}`,
 *   fires `POST /session/{hid}/prompt_async`, forwards the bus events of this session (and the
 *   session-less `server.connected` / `server.heartbeat`, which keep the stream alive) as
 *   `{"type":"harness_event","event":…}`, and ends with `{"type":"done"}` on `session.idle`, or
 *   `{"type":"error","message":…}`; at most 10 minutes. A client that leaves stops the forwarding,
 *   not the turn.
 * - `GET events`: the same stream without sending anything.
 * - `GET messages`: `GET /session/{hid}/message`, the whole thread (`[]` while there is none).
 * - `POST abort`: `POST /session/{hid}/abort` → `{ok: true}`.
 * - `ANY opencode/<path>`: the harness API verbatim (what `lap`'s REPL and opencode's SDK use).
 *
 * The harness server is reached through an endpoint (`{socketPath}`: the sandbox's ingress socket;
 * `{host, port}`: a loopback port), and its session (`harness_session_id`) is created when the
 * bridge session becomes ready (`sessionReady`, which also sends the session's `initial_prompt`),
 * or on first use; a harness that forgot it (restarted) gets a new one. The stored session carries
 * `harness_session_id` and `response`; the caller persists them (`saved`).
 */
import * as http from 'node:http';
import { createParser } from 'eventsource-parser';
import * as z from 'zod/mini';
import '../protocol/zod';
import { SendMessageBody } from '../protocol/platform';
import { HttpError } from './sessions';

/** Harnesses whose sandbox runs an opencode-style API server (the others are TUIs behind /tty). */
export const API_HARNESSES: ReadonlySet<string> = new Set(['opencode', 'claude-agent-sdk']);

export type HarnessEndpoint = { socketPath: string } | { host: string; port: number };

/** The fields of a stored session this module reads and writes. */
export interface HarnessSessionRecord {
  id: string;
  status: string;
  title?: string | null;
  failure_reason?: string | null;
  harness_session_id?: string | null;
  response?: unknown;
}

export interface HarnessLimits {
  /** A `message_stream` / `events` stream ends after this long (the platform's 10 min). */
  streamCapMs: number;
  /** A blocking `message` waits this long for the harness (the platform's 30 min). */
  messageTimeoutMs: number;
  /** Other calls to the harness (create session, prompt_async, list, abort). */
  requestTimeoutMs: number;
  /** `opencode/…` waits this long for a session that is still starting (the platform's 60 s). */
  readyWaitMs: number;
  /** `message_stream` waits this long for the bus's first event before sending the prompt. */
  connectWaitMs: number;
  /** While a turn runs, the session counts as active this often (the idle reaper spares it). */
  activityMs: number;
}

const DEFAULT_LIMITS: HarnessLimits = {
  streamCapMs: 600_000,
  messageTimeoutMs: 1_800_000,
  requestTimeoutMs: 60_000,
  readyWaitMs: 60_000,
  connectWaitMs: 5_000,
  activityMs: 15_000,
};

export interface HarnessApiDeps<S extends HarnessSessionRecord> {
  /** The stored session; throws `HttpError` 404 when there is none. */
  session(id: string): S;
  /** Its agent's harness id. */
  harnessOf(session: S): string | undefined;
  /** Where its harness server answers, once the session is ready. */
  endpoint(sessionId: string): HarnessEndpoint | undefined;
  /** `harness_session_id`, `response` or `failure_reason` changed on the record: persist it. */
  saved(session: S): void;
  /** Message activity (`last_seen_at`, the idle reaper). */
  touch(session: S): void;
  log?: { info(message: string): void; warn(message: string): void; debug(message: string): void };
  limits?: Partial<HarnessLimits>;
}

/** Writes a streamed reply (SSE, or a proxied response) once the request was accepted. */
export type StreamWriter = (res: http.ServerResponse, req?: http.IncomingMessage) => Promise<void>;

/** An opencode prompt part, as sent to the harness. */
export type HarnessPart = Record<string, unknown>;

export interface InitialPrompt {
  text?: string;
  attachments?: { name?: string; mime_type: string; base64: string }[];
}

// ---------------------------------------------------------------------------------------------
// Message bodies

const NO_CONTENT = "message body must include 'text', 'parts', or 'attachments'";

/** zod issues as the platform answers them: `{error: [{code, path, message}]}`. */
function checkBody(raw: unknown): SendMessageBody {
  const r = SendMessageBody.safeParse(raw);
  if (!r.success) throw new HttpError(400, { error: r.error.issues.map((i) => ({ code: i.code, path: i.path, message: i.message })) });
  return r.data;
}

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif', 'image/webp': 'webp' };

/**
 * The parts a body stands for: attachments (with the text first) win over parts, parts over text.
 * Attachments become opencode `file` parts with data URLs, which both harness servers read.
 */
export function expandBody(body: SendMessageBody): HarnessPart[] {
  if (body.attachments && body.attachments.length > 0) {
    return [
      ...(body.text ? [{ type: 'text', text: body.text }] : []),
      ...body.attachments.map((a, i) => ({
        type: 'file',
        mime: a.mime_type,
        filename: a.name ?? `attachment-${i + 1}.${EXTENSIONS[a.mime_type] ?? 'bin'}`,
        url: `data:${a.mime_type};base64,${a.base64}`,
      })),
    ];
  }
  if (body.parts !== undefined) return body.parts;
  if (body.text !== undefined) return [{ type: 'text', text: body.text }];
  throw new HttpError(400, { error: NO_CONTENT });
}

// ---------------------------------------------------------------------------------------------
// SSE frames

/** A bus event of the harness, as `/event` sends it. */
export interface BusEvent {
  type: string;
  properties?: Record<string, unknown>;
  [key: string]: unknown;
}

const BusEventSchema = z.looseObject({ type: z.string(), properties: z.optional(z.record(z.string(), z.unknown())) });

/** Session-less bus events the platform forwards to every stream (liveness). */
const SESSIONLESS = new Set(['server.connected', 'server.heartbeat']);

/** Whether the platform forwards a bus event to a stream of harness session `hid`. */
export function forwards(event: BusEvent, hid: string): boolean {
  const sid = event.properties?.sessionID;
  if (typeof sid !== 'string' || !sid) return SESSIONLESS.has(event.type);
  return sid === hid;
}

export function sseFrame(frame: Record<string, unknown>): string {
  return `data: ${JSON.stringify(frame)}\n\n`;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

// ---------------------------------------------------------------------------------------------
// The harness server's HTTP API

class HarnessUnreachable extends Error {}

interface Sent {
  res: http.IncomingMessage;
  /** Ends the exchange (the response is not read further). */
  close(): void;
}

/** One request to the harness server; resolves with its response (not yet read). */
function send(
  endpoint: HarnessEndpoint,
  method: string,
  path: string,
  o: { body?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Sent> {
  return new Promise<Sent>((resolve, reject) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(Buffer.byteLength(o.body));
    }
    const target = 'socketPath' in endpoint ? { socketPath: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port };
    const req = http.request({ ...target, method, path, headers, agent: false });
    let timer: NodeJS.Timeout | undefined;
    const close = () => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      req.destroy();
    };
    const onAbort = () => {
      close();
      reject(new HarnessUnreachable('cancelled'));
    };
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    if (o.timeoutMs) {
      timer = setTimeout(() => {
        req.destroy(new HarnessUnreachable(`no answer within ${Math.round(o.timeoutMs! / 1000)} s`));
      }, o.timeoutMs);
    }
    req.on('response', (res) => {
      res.on('end', () => clearTimeout(timer));
      res.on('error', () => undefined);
      resolve({ res, close });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err instanceof HarnessUnreachable ? err : new HarnessUnreachable(err.code ?? err.message));
    });
    req.end(o.body);
  });
}

async function readText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface Answer {
  status: number;
  text: string;
}

async function call(endpoint: HarnessEndpoint, method: string, path: string, body: unknown, timeoutMs: number): Promise<Answer> {
  const sent = await send(endpoint, method, path, { body: body === undefined ? undefined : JSON.stringify(body), timeoutMs, headers: { accept: 'application/json' } });
  try {
    return { status: sent.res.statusCode ?? 0, text: await readText(sent.res) };
  } finally {
    sent.close();
  }
}

/** The platform's answer when the harness fails: 502 "harness request failed", with the reason. */
function failed(what: string): HttpError {
  return new HttpError(502, { error: `harness request failed: ${what}` });
}

/** A harness error answer in a line: its status and message (opencode's `{name, data: {message}}`, or `{error}`). */
function answerError(answer: Answer): string {
  const body = parseJson(answer.text) as { name?: unknown; data?: { message?: unknown }; error?: unknown } | undefined;
  const message = body && typeof body === 'object' ? (body.data?.message ?? body.error) : undefined;
  return `${answer.status} ${typeof message === 'string' ? message : short(answer.text)}`;
}

function short(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  return t.length > 300 ? `${t.slice(0, 299)}…` : t;
}

// ---------------------------------------------------------------------------------------------

export class HarnessApi<S extends HarnessSessionRecord> {
  private readonly limits: HarnessLimits;
  /** Harness sessions being created, per bridge session (one at a time). */
  private readonly creating = new Map<string, Promise<string>>();
  /** `initial_prompt`s waiting for their session to be ready. */
  private readonly initial = new Map<string, InitialPrompt>();

  constructor(private readonly deps: HarnessApiDeps<S>) {
    this.limits = { ...DEFAULT_LIMITS, ...deps.limits };
  }

  isApiHarness(session: S): boolean {
    return API_HARNESSES.has(this.deps.harnessOf(session) ?? '');
  }

  // -------------------------------------------------------------------------------------------
  // Session lifecycle (called by whoever owns the sessions)

  /** At session create: keeps `initial_prompt` / `initial_attachments` until the session is ready. */
  sessionCreated(sessionId: string, body: { initial_prompt?: string; initial_attachments?: InitialPrompt['attachments'] }): void {
    if (body.initial_prompt || body.initial_attachments?.length) this.initial.set(sessionId, { text: body.initial_prompt, attachments: body.initial_attachments });
  }

  /**
   * The session became ready (first start or restart): creates its harness session, then sends the
   * initial prompt, if any, in the background (the reply lands in `response`; a failure in
   * `failure_reason`, the session staying ready, as on the platform). Never rejects.
   */
  async sessionReady(sessionId: string): Promise<void> {
    let session: S;
    try {
      session = this.deps.session(sessionId);
    } catch {
      return;
    }
    if (!this.isApiHarness(session)) return;
    try {
      await this.createHarnessSession(session);
    } catch (err) {
      this.deps.log?.warn(`session ${sessionId}: could not create its harness session: ${errorMessage(err)}`);
      return;
    }
    const prompt = this.initial.get(sessionId);
    this.initial.delete(sessionId);
    if (prompt) void this.runInitialPrompt(session, prompt);
  }

  /** The session ended: forget what was kept for it. */
  sessionEnded(sessionId: string): void {
    this.initial.delete(sessionId);
    this.creating.delete(sessionId);
  }

  private async runInitialPrompt(session: S, prompt: InitialPrompt): Promise<void> {
    try {
      const parts = expandBody({ text: prompt.text ?? '', attachments: prompt.attachments });
      const reply = await this.sendBlocking(session, parts);
      session.response = reply;
      this.deps.saved(session);
    } catch (err) {
      const reason = err instanceof HttpError ? errorText(err.body) : errorMessage(err);
      this.deps.log?.warn(`session ${session.id}: initial_prompt failed: ${reason}`);
      session.failure_reason = `initial_prompt failed: ${reason}`;
      this.deps.saved(session);
    }
  }

  // -------------------------------------------------------------------------------------------
  // The platform's routes

  /** `POST /sessions/{id}/message`. */
  async message(sessionId: string, raw: unknown): Promise<unknown> {
    const body = checkBody(raw);
    const { session } = this.ready(sessionId);
    const parts = expandBody(body);
    const reply = await this.sendBlocking(session, parts);
    session.response = reply;
    this.deps.saved(session);
    return reply;
  }

  /** `POST /sessions/{id}/message_stream`: checks now (JSON errors), streams once accepted. */
  async messageStream(sessionId: string, raw: unknown): Promise<StreamWriter> {
    const body = checkBody(raw);
    const { session } = this.ready(sessionId);
    const parts = expandBody(body);
    return (res) => this.stream(session, res, parts);
  }

  /** `GET /sessions/{id}/events`: the session's bus, subscribe only. */
  async events(sessionId: string): Promise<StreamWriter> {
    const { session } = this.ready(sessionId);
    return (res) => this.stream(session, res, undefined);
  }

  /** `GET /sessions/{id}/messages`: the harness's thread; `[]` while the session has none. */
  async messages(sessionId: string): Promise<unknown[]> {
    const session = this.deps.session(sessionId);
    if (!this.isApiHarness(session) || session.status !== 'ready') return [];
    const endpoint = this.deps.endpoint(session.id);
    const hid = session.harness_session_id ?? (await this.creating.get(session.id)?.catch(() => undefined));
    if (!endpoint || !hid) return [];
    const answer = await this.callHarness(endpoint, 'GET', `/session/${encodeURIComponent(hid)}/message`, undefined, this.limits.requestTimeoutMs);
    // A harness that forgot the session (restarted) has no thread to show.
    if (answer.status === 404) return [];
    if (answer.status < 200 || answer.status >= 300) throw failed(answerError(answer));
    const list = parseJson(answer.text);
    if (!Array.isArray(list)) throw failed('the message list is not an array');
    return list;
  }

  /** `POST /sessions/{id}/abort`: aborts the running turn (nothing when none runs). */
  async abort(sessionId: string): Promise<{ ok: true }> {
    const { session, endpoint } = this.ready(sessionId);
    const hid = session.harness_session_id ?? (await this.creating.get(session.id)?.catch(() => undefined));
    if (!hid) return { ok: true };
    const answer = await this.callHarness(endpoint, 'POST', `/session/${encodeURIComponent(hid)}/abort`, {}, this.limits.requestTimeoutMs);
    if ((answer.status < 200 || answer.status >= 300) && answer.status !== 404) throw failed(answerError(answer));
    return { ok: true };
  }

  /**
   * `ANY /sessions/{id}/opencode/<tail>`: the harness API verbatim. A session still starting is
   * waited for (60 s, then 504); a session that ended answers 410.
   */
  async opencode(sessionId: string, o: { method: string; tail: string; search: string; body: unknown }): Promise<StreamWriter> {
    const deadline = Date.now() + this.limits.readyWaitMs;
    for (;;) {
      const session = this.deps.session(sessionId);
      if (!this.isApiHarness(session)) throw new HttpError(409, { error: `session ${session.id} runs a terminal harness: connect to /tty` });
      if (session.status === 'failed' || session.status === 'dead') throw new HttpError(410, { error: `session ${sessionId} is ${session.status}` });
      if (session.status === 'ready' && this.deps.endpoint(sessionId)) break;
      if (Date.now() >= deadline) throw new HttpError(504, { error: `session ${sessionId} not ready within ${Math.round(this.limits.readyWaitMs / 1000)}s` });
      await sleep(Math.min(1000, Math.max(10, deadline - Date.now())));
    }
    const { session, endpoint } = this.ready(sessionId);
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    return async (res, req) => {
      const cancel = new AbortController();
      const onClose = () => cancel.abort();
      res.on('close', onClose);
      let sent: Sent;
      try {
        sent = await send(endpoint, o.method, `/${o.tail}${o.search}`, {
          body,
          headers: { accept: String(req?.headers.accept ?? '*/*'), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          signal: cancel.signal,
        });
      } catch (err) {
        res.off('close', onClose);
        if (cancel.signal.aborted) return;
        const e = failed(errorMessage(err));
        writeJson(res, e.status, e.body);
        return;
      }
      const type = String(sent.res.headers['content-type'] ?? 'application/json');
      const streaming = type.includes('text/event-stream');
      const headers: Record<string, string> = streaming ? { ...SSE_HEADERS, 'content-type': type } : { 'content-type': type };
      // opencode's message list pages with these.
      for (const h of ['link', 'x-next-cursor']) if (typeof sent.res.headers[h] === 'string') headers[h] = sent.res.headers[h] as string;
      res.writeHead(sent.res.statusCode ?? 502, headers);
      if (streaming) {
        res.flushHeaders();
        this.deps.touch(session);
      }
      await new Promise<void>((resolve) => {
        sent.res.on('end', resolve);
        sent.res.on('close', resolve);
        res.on('close', resolve);
        sent.res.pipe(res);
      });
      res.off('close', onClose);
      sent.close();
      if (!res.writableEnded) res.end();
    };
  }

  // -------------------------------------------------------------------------------------------

  /** The session, ready, of an API harness, with its harness server's endpoint; else 404 / 409. */
  private ready(sessionId: string): { session: S; endpoint: HarnessEndpoint } {
    const session = this.deps.session(sessionId);
    const harness = this.deps.harnessOf(session);
    if (!API_HARNESSES.has(harness ?? '')) throw new HttpError(409, { error: `session ${session.id} runs a terminal harness: connect to /tty` });
    if (session.status !== 'ready') throw new HttpError(409, { error: `session ${session.id} is not ready (status ${session.status})` });
    const endpoint = this.deps.endpoint(session.id);
    if (!endpoint) throw new HttpError(409, { error: `session ${session.id} is not ready: its ${harness} server cannot be reached` });
    return { session, endpoint };
  }

  private async callHarness(endpoint: HarnessEndpoint, method: string, path: string, body: unknown, timeoutMs: number): Promise<Answer> {
    try {
      return await call(endpoint, method, path, body, timeoutMs);
    } catch (err) {
      throw failed(errorMessage(err));
    }
  }

  /** The harness session id: the stored one, the one being created, or a new one. */
  private async harnessSession(session: S): Promise<string> {
    return session.harness_session_id ?? this.creating.get(session.id) ?? this.createHarnessSession(session);
  }

  /** Creates a harness session (replacing any stored one) and stores its id. */
  private createHarnessSession(session: S): Promise<string> {
    const pending = this.creating.get(session.id);
    if (pending) return pending;
    const creation = (async () => {
      const endpoint = this.deps.endpoint(session.id);
      if (!endpoint) throw new HttpError(409, { error: `session ${session.id} is not ready: its harness server cannot be reached` });
      const answer = await this.callHarness(endpoint, 'POST', '/session', { title: session.title ?? 'default' }, this.limits.requestTimeoutMs);
      let data = parseJson(answer.text);
      if (Array.isArray(data)) data = data[0];
      const id = data && typeof data === 'object' ? (data as { id?: unknown }).id : undefined;
      if (answer.status < 200 || answer.status >= 300 || typeof id !== 'string' || !id) {
        throw failed(`creating the harness session answered ${answerError(answer)}`);
      }
      session.harness_session_id = id;
      this.deps.saved(session);
      this.deps.log?.info(`session ${session.id}: harness session ${id}`);
      return id;
    })();
    this.creating.set(session.id, creation);
    const forget = () => {
      if (this.creating.get(session.id) === creation) this.creating.delete(session.id);
    };
    creation.then(forget, forget);
    return creation;
  }

  /** Keeps the session active while `work` runs. */
  private async active<T>(session: S, work: () => Promise<T>): Promise<T> {
    this.deps.touch(session);
    const timer = setInterval(() => this.deps.touch(session), this.limits.activityMs);
    try {
      return await work();
    } finally {
      clearInterval(timer);
      this.deps.touch(session);
    }
  }

  /** `POST /session/{hid}/message`: one turn, its last assistant message. A forgotten session is made again once. */
  private async sendBlocking(session: S, parts: HarnessPart[]): Promise<unknown> {
    return this.active(session, async () => {
      for (let attempt = 0; ; attempt++) {
        const endpoint = this.deps.endpoint(session.id);
        if (!endpoint) throw new HttpError(409, { error: `session ${session.id} is not ready: its harness server cannot be reached` });
        const hid = attempt === 0 ? await this.harnessSession(session) : await this.createHarnessSession(session);
        const answer = await this.callHarness(endpoint, 'POST', `/session/${encodeURIComponent(hid)}/message`, { parts }, this.limits.messageTimeoutMs);
        // opencode answers 404 (older versions: 200 with no body) for a session it does not know.
        if (attempt === 0 && (answer.status === 404 || (answer.status === 200 && !answer.text.trim()))) {
          this.deps.log?.warn(`session ${session.id}: the harness does not know session ${hid}; creating a new one`);
          if (session.harness_session_id === hid) session.harness_session_id = null;
          continue;
        }
        if (answer.status < 200 || answer.status >= 300) throw failed(answerError(answer));
        if (!answer.text.trim()) throw failed('empty response body');
        const reply = parseJson(answer.text);
        if (reply === undefined) throw failed('invalid JSON response body');
        return reply;
      }
    });
  }

  /**
   * The SSE of `message_stream` (`parts` given) and `events`: subscribe to the bus, `ready`, send
   * the prompt, forward this session's events until `session.idle` (`done`), an error, the cap, or
   * the client leaving.
   */
  private async stream(session: S, res: http.ServerResponse, parts: HarnessPart[] | undefined): Promise<void> {
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    const upstream = new AbortController();
    let finished = false;
    let resolveEnd!: () => void;
    const ended = new Promise<void>((r) => (resolveEnd = r));
    const write = (frame: Record<string, unknown>) => {
      if (!res.destroyed && !res.writableEnded) res.write(sseFrame(frame));
    };
    const finish = (frame?: Record<string, unknown>) => {
      if (finished) return;
      finished = true;
      if (frame) write(frame);
      upstream.abort();
      clearTimeout(cap);
      clearInterval(activity);
      if (!res.writableEnded) res.end();
      resolveEnd();
    };
    // The client left: stop forwarding; the turn goes on in the harness.
    res.on('close', () => finish());
    const cap = setTimeout(() => finish({ type: 'error', message: 'stream timeout' }), this.limits.streamCapMs);
    const activity = setInterval(() => this.deps.touch(session), this.limits.activityMs);
    this.deps.touch(session);

    const endpoint = this.deps.endpoint(session.id);
    let hid: string;
    let bus: Sent;
    try {
      if (!endpoint) throw new HarnessUnreachable('the harness server cannot be reached');
      hid = await this.harnessSession(session);
      bus = await send(endpoint, 'GET', '/event', { headers: { accept: 'text/event-stream' }, signal: upstream.signal });
      if (bus.res.statusCode !== 200) {
        const text = await readText(bus.res).catch(() => '');
        throw new HarnessUnreachable(`${bus.res.statusCode} ${short(text)}`);
      }
    } catch (err) {
      if (!finished) this.deps.log?.warn(`session ${session.id}: harness event stream failed: ${errorMessage(err)}`);
      finish({ type: 'error', message: 'harness event stream failed' });
      return ended;
    }
    if (upstream.signal.aborted) {
      bus.close();
      return ended;
    }
    upstream.signal.addEventListener('abort', () => bus.close(), { once: true });

    // Events read before the prompt went out wait here, so `ready` comes first.
    const held: BusEvent[] = [];
    let live = false;
    let connected!: () => void;
    const firstEvent = new Promise<void>((r) => (connected = r));
    const deliver = (event: BusEvent) => {
      if (finished || !forwards(event, hid)) return;
      write({ type: 'harness_event', event });
      if (event.type === 'session.idle') finish({ type: 'done' });
    };
    const parser = createParser({
      onEvent: (e) => {
        const parsed = BusEventSchema.safeParse(parseJson(e.data));
        if (!parsed.success) return;
        const event = parsed.data as BusEvent;
        connected();
        if (live) deliver(event);
        else held.push(event);
      },
    });
    bus.res.setEncoding('utf8');
    bus.res.on('data', (chunk: string) => parser.feed(chunk));
    bus.res.on('end', () => finish({ type: 'error', message: 'event stream interrupted' }));
    bus.res.on('error', () => finish({ type: 'error', message: 'event stream interrupted' }));

    let waitTimer: NodeJS.Timeout | undefined;
    await Promise.race([firstEvent, ended, new Promise<void>((r) => (waitTimer = setTimeout(r, this.limits.connectWaitMs)))]);
    clearTimeout(waitTimer);
    if (finished) return ended;
    write({ type: 'ready' });

    if (parts) {
      try {
        let answer = await call(endpoint, 'POST', `/session/${encodeURIComponent(hid)}/prompt_async`, { parts }, this.limits.requestTimeoutMs);
        if (answer.status === 404) {
          // The harness forgot the session (restarted): a new one, as the blocking route does.
          this.deps.log?.warn(`session ${session.id}: the harness does not know session ${hid}; creating a new one`);
          if (session.harness_session_id === hid) session.harness_session_id = null;
          hid = await this.createHarnessSession(session);
          answer = await call(endpoint, 'POST', `/session/${encodeURIComponent(hid)}/prompt_async`, { parts }, this.limits.requestTimeoutMs);
        }
        if (answer.status < 200 || answer.status >= 300) throw new HarnessUnreachable(answerError(answer));
      } catch (err) {
        if (!finished) this.deps.log?.warn(`session ${session.id}: prompt_async failed: ${errorMessage(err)}`);
        finish({ type: 'error', message: 'prompt_async failed' });
        return ended;
      }
    }
    live = true;
    for (const event of held.splice(0)) deliver(event);
    return ended;
  }
}

// ---------------------------------------------------------------------------------------------

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function writeJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errorMessage(err: unknown): string {
  if (err instanceof HttpError) return errorText(err.body);
  return err instanceof Error ? err.message : String(err);
}

function errorText(body: unknown): string {
  if (body && typeof body === 'object' && 'error' in body) {
    const e = (body as { error: unknown }).error;
    return typeof e === 'string' ? e : JSON.stringify(e);
  }
  return String(body);
}
