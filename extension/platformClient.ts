/**
 * The one client of the platform API, used for a remote agent platform and for our local bridge alike.
 *
 * Built on node:http/https (not fetch) for a real connect timeout, streaming bodies and VS Code's
 * proxy support in the extension host. No `vscode` import: runs in plain Node for tests.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type * as z from 'zod/mini';
import {
  API_PREFIX,
  Agent,
  AgentList,
  CreateAgentBody,
  CreateSessionBody,
  DeleteSessionReply,
  Message,
  MessageBody,
  MessageList,
  ModelList,
  PatchAgentBody,
  Session,
  SessionList,
  StreamFrame,
  errorText,
  type ListAgentsQuery,
} from '../protocol/platform';
import { CancelledError, PlatformError, PlatformProtocolError, PlatformUnreachableError, redact } from './errors';
import { readSse } from './sse';
import { sleep } from './async';
import { type Logger, nullLogger } from './logger';

export interface PlatformClientOptions {
  /** Base URL of the platform (or bridge), e.g. `https://agents.example.com`; a path prefix is kept. */
  baseUrl: string;
  /** The master key; a function so a rotated key is picked up without a new client. */
  apiKey: string | (() => string | undefined | Promise<string | undefined>);
  /** Time allowed to open the TCP (and TLS) connection. Default 10 s. */
  connectTimeoutMs?: number;
  /** Time allowed for a whole ordinary request (not message or stream requests). Default 60 s. */
  requestTimeoutMs?: number;
  /** Retries of idempotent GETs after network errors and 502/503/504. Default 3. */
  retries?: number;
  /** First retry delay; doubles each time, with jitter. Default 300 ms. */
  retryBaseDelayMs?: number;
  /** Responses larger than this are refused (protects the extension host). Default 32 MiB. */
  maxResponseBytes?: number;
  log?: Logger;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

interface RawRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  /** false: no overall timeout (message requests may run for many minutes). */
  timeout?: boolean;
}

const RETRY_STATUSES = new Set([502, 503, 504]);
const RETRY_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Validates and normalises a platform URL typed by a person. Throws with a precise reason. */
export function normalizeBaseUrl(input: string): string {
  const trimmed = input.trim();
  if (!trimmed) throw new Error('Enter the platform URL, for example https://agents.example.com');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw new Error(`"${trimmed}" has no scheme: use https://${trimmed} (or http:// for a local server)`);
  }
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw new Error(`"${trimmed}" is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`Only http:// and https:// URLs are supported, not ${url.protocol}//`);
  if (url.username || url.password) throw new Error('Put the master key in the key prompt, not in the URL');
  if (url.search || url.hash) throw new Error('The platform URL takes no query string or fragment');
  let path = url.pathname.replace(/\/+$/, '');
  // People paste the API path too: keep only the base.
  const prefixAt = path.indexOf('/api/v1');
  if (prefixAt >= 0) path = path.slice(0, prefixAt);
  return `${url.protocol}//${url.host}${path}`;
}

export class PlatformClient {
  readonly baseUrl: string;
  readonly host: string;
  private readonly opts: Required<Omit<PlatformClientOptions, 'log' | 'apiKey' | 'baseUrl'>>;
  private readonly log: Logger;

  constructor(private readonly options: PlatformClientOptions) {
    this.baseUrl = normalizeBaseUrl(options.baseUrl);
    this.host = new URL(this.baseUrl).host;
    this.opts = {
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
      retries: options.retries ?? 3,
      retryBaseDelayMs: options.retryBaseDelayMs ?? 300,
      maxResponseBytes: options.maxResponseBytes ?? 32 * 1024 * 1024,
    };
    this.log = options.log ?? nullLogger;
  }

  // ------------------------------------------------------------------------------------------
  // Agents

  async listAgents(query: ListAgentsQuery = {}, o: RequestOptions = {}): Promise<AgentList> {
    return this.json(AgentList, { method: 'GET', path: '/agents', query: { ...query }, signal: o.signal });
  }

  /** Every agent, page by page (the platform caps a page at 200). */
  async listAllAgents(o: RequestOptions & { search?: string } = {}): Promise<Agent[]> {
    const all: Agent[] = [];
    for (let offset = 0; ; ) {
      const page = await this.listAgents({ limit: 200, offset, search: o.search }, o);
      all.push(...page.data);
      offset += page.data.length;
      if (page.data.length === 0 || offset >= (page.total ?? 0)) return all;
    }
  }

  /** Exact-name lookup through `search` (never by scanning the first page). */
  async findAgentByName(name: string, o: RequestOptions = {}): Promise<Agent | undefined> {
    const matches = await this.listAllAgents({ ...o, search: name });
    return matches.find((a) => a.name === name);
  }

  getAgent(id: string, o: RequestOptions = {}): Promise<Agent> {
    return this.json(Agent, { method: 'GET', path: `/agents/${enc(id)}`, signal: o.signal });
  }

  createAgent(body: CreateAgentBody, o: RequestOptions = {}): Promise<Agent> {
    return this.json(Agent, { method: 'POST', path: '/agents', body: CreateAgentBody.parse(body), signal: o.signal });
  }

  patchAgent(id: string, body: PatchAgentBody, o: RequestOptions = {}): Promise<Agent> {
    return this.json(Agent, { method: 'PATCH', path: `/agents/${enc(id)}`, body: PatchAgentBody.parse(body), signal: o.signal });
  }

  async deleteAgent(id: string, o: RequestOptions = {}): Promise<void> {
    await this.raw({ method: 'DELETE', path: `/agents/${enc(id)}`, signal: o.signal });
  }

  // ------------------------------------------------------------------------------------------
  // Sessions

  createSession(agentId: string, body: CreateSessionBody = {}, o: RequestOptions = {}): Promise<Session> {
    return this.json(Session, { method: 'POST', path: `/agents/${enc(agentId)}/session`, body: CreateSessionBody.parse(body), signal: o.signal });
  }

  getSession(id: string, o: RequestOptions = {}): Promise<Session> {
    return this.json(Session, { method: 'GET', path: `/sessions/${enc(id)}`, signal: o.signal });
  }

  listSessions(q: { agentId?: string; limit?: number } = {}, o: RequestOptions = {}): Promise<Session[]> {
    return this.json(SessionList, { method: 'GET', path: '/sessions', query: { agent_id: q.agentId, limit: q.limit }, signal: o.signal });
  }

  /** The only stop. */
  deleteSession(id: string, o: RequestOptions = {}): Promise<DeleteSessionReply> {
    return this.json(DeleteSessionReply, { method: 'DELETE', path: `/sessions/${enc(id)}`, signal: o.signal });
  }

  restartSession(id: string, o: RequestOptions = {}): Promise<Session> {
    return this.json(Session, { method: 'POST', path: `/sessions/${enc(id)}/restart`, signal: o.signal });
  }

  async abortSession(id: string, o: RequestOptions = {}): Promise<void> {
    await this.raw({ method: 'POST', path: `/sessions/${enc(id)}/abort`, signal: o.signal });
  }

  // ------------------------------------------------------------------------------------------
  // Messages (API harnesses)

  /** Blocks until the reply is complete, possibly for many minutes: no overall timeout, cancel by signal. */
  message(sessionId: string, body: MessageBody, o: RequestOptions = {}): Promise<Message> {
    return this.json(Message, { method: 'POST', path: `/sessions/${enc(sessionId)}/message`, body: MessageBody.parse(body), signal: o.signal, timeout: false });
  }

  /** The same request answered as SSE; yields each frame as it arrives. */
  async *messageStream(sessionId: string, body: MessageBody, o: RequestOptions = {}): AsyncGenerator<StreamFrame> {
    const res = await this.open({ method: 'POST', path: `/sessions/${enc(sessionId)}/message_stream`, body: MessageBody.parse(body), signal: o.signal, timeout: false });
    yield* this.frames(res, o.signal);
  }

  /** Subscribe-only event stream of a session. */
  async *events(sessionId: string, o: RequestOptions = {}): AsyncGenerator<StreamFrame> {
    const res = await this.open({ method: 'GET', path: `/sessions/${enc(sessionId)}/events`, signal: o.signal, timeout: false });
    yield* this.frames(res, o.signal);
  }

  messages(sessionId: string, o: RequestOptions = {}): Promise<Message[]> {
    return this.json(MessageList, { method: 'GET', path: `/sessions/${enc(sessionId)}/messages`, signal: o.signal });
  }

  /** Model ids from the gateway passthrough (`GET /api/v1/models`), for a picker. */
  async models(o: RequestOptions = {}): Promise<string[]> {
    const list = await this.json(ModelList, { method: 'GET', path: '../models', signal: o.signal });
    return list.data.map((m) => m.id);
  }

  // ------------------------------------------------------------------------------------------
  // Transport

  private async json<S extends z.ZodMiniType>(schema: S, req: RawRequest): Promise<z.output<S>> {
    const { body, contentType } = await this.raw(req);
    const text = body.toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new PlatformProtocolError(this.host, describeNonJson(text, contentType));
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? issue.path.join('.') : 'the response';
      throw new PlatformProtocolError(this.host, `unexpected ${req.method} ${apiPath(req.path)} reply (${where}: ${issue?.message ?? 'invalid'})`);
    }
    return parsed.data;
  }

  private async *frames(res: http.IncomingMessage, signal?: AbortSignal): AsyncGenerator<StreamFrame> {
    try {
      for await (const event of readSse(res)) {
        if (!event.data) continue;
        let value: unknown;
        try {
          value = JSON.parse(event.data);
        } catch {
          this.log.warn(`ignoring a non-JSON SSE frame (${event.data.length} chars)`);
          continue;
        }
        const frame = StreamFrame.safeParse(value);
        if (frame.success) yield frame.data;
        else this.log.warn('ignoring an SSE frame without a type');
      }
    } catch (err) {
      if (signal?.aborted) throw new CancelledError();
      throw this.networkError(err);
    } finally {
      res.destroy();
    }
  }

  /** A whole request with retries for idempotent GETs; returns the body of a 2xx answer. */
  private async raw(req: RawRequest): Promise<{ status: number; body: Buffer; contentType: string }> {
    const idempotent = req.method === 'GET';
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.open(req);
        const body = await this.readBody(res, req.signal);
        return { status: res.statusCode ?? 0, body, contentType: String(res.headers['content-type'] ?? '') };
      } catch (err) {
        const retriable =
          idempotent &&
          attempt < this.opts.retries &&
          !req.signal?.aborted &&
          ((err instanceof PlatformError && RETRY_STATUSES.has(err.status)) || (err instanceof PlatformUnreachableError && (!err.code || RETRY_CODES.has(err.code))));
        if (!retriable) throw err;
        const delay = this.opts.retryBaseDelayMs * 2 ** attempt * (0.75 + Math.random() * 0.5);
        this.log.info(`${req.method} ${apiPath(req.path)}: ${err instanceof Error ? err.message : err}; retry ${attempt + 1}/${this.opts.retries} in ${Math.round(delay)} ms`);
        await sleep(delay, req.signal);
      }
    }
  }

  /** Sends the request; resolves with the response once a 2xx status arrives, else throws a typed error. */
  private async open(req: RawRequest): Promise<http.IncomingMessage> {
    if (req.signal?.aborted) throw new CancelledError();
    const key = typeof this.options.apiKey === 'function' ? await this.options.apiKey() : this.options.apiKey;
    const url = new URL(this.baseUrl + apiPath(req.path));
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json, text/event-stream' };
    if (key) headers.authorization = `Bearer ${key}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    const started = Date.now();
    const mod = url.protocol === 'https:' ? https : http;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        cleanup();
        request.destroy();
        reject(err);
      };
      const request = mod.request(url, { method: req.method, headers, agent: false }, (response) => {
        if (settled) return response.destroy();
        settled = true;
        clearTimeout(connectTimer);
        // The overall timer keeps running while the body is read for ordinary requests.
        response.once('close', cleanup);
        resolve(response);
      });
      const onAbort = () => {
        fail(new CancelledError());
        request.destroy(new CancelledError());
      };
      const cleanup = () => {
        clearTimeout(connectTimer);
        clearTimeout(overallTimer);
        req.signal?.removeEventListener('abort', onAbort);
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
      const connectTimer = setTimeout(
        () => fail(new PlatformUnreachableError(this.baseUrl, `no connection within ${Math.round(this.opts.connectTimeoutMs / 1000)} s`, 'ETIMEDOUT')),
        this.opts.connectTimeoutMs,
      );
      request.once('socket', (socket) => {
        const connected = () => clearTimeout(connectTimer);
        if (!socket.connecting) connected();
        else socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', connected);
      });
      const overallTimer =
        req.timeout === false
          ? undefined
          : setTimeout(() => {
              const err = new PlatformUnreachableError(this.baseUrl, `no complete answer within ${Math.round(this.opts.requestTimeoutMs / 1000)} s`, 'ETIMEDOUT');
              if (!settled) fail(err);
              else request.destroy(err);
            }, this.opts.requestTimeoutMs);
      request.on('error', (err) => fail(this.networkError(err)));
      request.end(payload);
    });
    const status = res.statusCode ?? 0;
    this.log.debug(`${req.method} ${apiPath(req.path)} → ${status} (${Date.now() - started} ms)`);
    if (status >= 200 && status < 300) return res;
    const body = await this.readBody(res, req.signal).catch(() => Buffer.alloc(0));
    throw new PlatformError(status, this.errorDetail(body, String(res.headers['content-type'] ?? ''), key), req.method, apiPath(req.path), this.host);
  }

  private errorDetail(body: Buffer, contentType: string, key: string | undefined): string | undefined {
    const text = body.toString('utf8');
    let detail: string | undefined;
    try {
      detail = errorText(JSON.parse(text));
    } catch {
      detail = text.trim() ? describeNonJson(text, contentType) : undefined;
    }
    return detail === undefined ? undefined : redact(detail.slice(0, 500), [key]);
  }

  private async readBody(res: http.IncomingMessage, signal?: AbortSignal): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res) {
        size += (chunk as Buffer).length;
        if (size > this.opts.maxResponseBytes) {
          res.destroy();
          throw new PlatformProtocolError(this.host, `the answer is larger than ${this.opts.maxResponseBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (signal?.aborted) throw new CancelledError();
      if (err instanceof PlatformProtocolError || err instanceof PlatformUnreachableError) throw err;
      throw this.networkError(err);
    }
    if (!res.complete) throw new PlatformUnreachableError(this.baseUrl, 'the connection closed before the answer was complete', 'ECONNRESET');
    return Buffer.concat(chunks);
  }

  private networkError(err: unknown): Error {
    if (err instanceof CancelledError || err instanceof PlatformUnreachableError || err instanceof PlatformError) return err;
    const e = err as NodeJS.ErrnoException;
    const code = e?.code;
    const reasons: Record<string, string> = {
      ECONNREFUSED: 'connection refused (is it running, and is the port right?)',
      ENOTFOUND: 'host not found (check the spelling)',
      EAI_AGAIN: 'DNS lookup failed (check your network)',
      ECONNRESET: 'the connection was reset',
      ETIMEDOUT: 'the connection timed out',
      EHOSTUNREACH: 'host unreachable',
      ENETUNREACH: 'network unreachable',
      CERT_HAS_EXPIRED: 'its TLS certificate has expired',
      DEPTH_ZERO_SELF_SIGNED_CERT: 'it uses a self-signed TLS certificate',
      SELF_SIGNED_CERT_IN_CHAIN: 'its TLS certificate chain is self-signed',
      UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its TLS certificate cannot be verified',
      ERR_TLS_CERT_ALTNAME_INVALID: 'its TLS certificate is for another host name',
      EPROTO: 'TLS handshake failed (is it http, not https?)',
    };
    const reason = (code && reasons[code]) || redact(e?.message || String(err));
    return new PlatformUnreachableError(this.baseUrl, reason, code);
  }
}

function apiPath(path: string): string {
  // `../models` leaves the managed_agents prefix: GET /api/v1/models.
  return path.startsWith('../') ? `/api/v1/${path.slice(3)}` : `${API_PREFIX}${path}`;
}

function enc(id: string): string {
  if (!id) throw new Error('empty id');
  return encodeURIComponent(id);
}

function describeNonJson(text: string, contentType: string): string {
  if (/html/i.test(contentType) || /^\s*<(!doctype|html)/i.test(text)) {
    const title = /<title[^>]*>([^<]{1,120})<\/title>/i.exec(text)?.[1]?.trim();
    return `it answered with an HTML page${title ? ` ("${title}")` : ''}, not JSON: check the URL points at the agent platform`;
  }
  const snippet = text.trim().slice(0, 80).replace(/\s+/g, ' ');
  return `the answer is not JSON${snippet ? ` ("${snippet}")` : ''}`;
}

