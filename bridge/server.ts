/**
 * The bridge's HTTP server on 127.0.0.1: Host and Origin checks (a web page must not drive it: DNS
 * rebinding, cross-site WebSocket), bearer auth in constant time, bodies ≤ 1 MiB, JSON errors in the
 * platform's shapes, and the `/tty` WebSocket upgrade with per-session tokens.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { API_PREFIX } from '../protocol/platform';
import { TTY_FLOW_ACCEPTED, TTY_FLOW_HEADER, TTY_FLOW_QUERY } from '../protocol/terminal';
import type { Api } from './api';
import type { BridgeLog } from './log';
import { HttpError, type SessionService } from './sessions';
import { clampSize } from './terminal';

export const MAX_BODY_BYTES = 1024 * 1024;
/** Messages to API harnesses carry attachments (up to 10 images of 5 MiB, base64): room for them. */
export const MAX_MESSAGE_BODY_BYTES = 80 * 1024 * 1024;
const MESSAGE_PATH = /\/sessions\/[^/]+\/(message|message_stream|opencode(\/.*)?)$/;
const HEARTBEAT_MS = 20_000;
const TTY_PATH = new RegExp(`^${API_PREFIX}/sessions/([^/]+)/tty$`);

export function sameSecret(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && presented.length === expected.length;
}

function bearer(req: http.IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h || !h.startsWith('Bearer ')) return undefined;
  return h.slice('Bearer '.length);
}

export interface BridgeServerOptions {
  masterKey: string;
  /** Origins allowed to call (e.g. a webview's); by default any Origin is refused. */
  allowedOrigins: string[];
}

export class BridgeServer {
  private readonly http: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024, perMessageDeflate: false });
  private readonly sockets = new Set<Socket>();
  private heartbeat: NodeJS.Timeout | undefined;
  port = 0;

  constructor(
    private readonly api: Api,
    private readonly sessions: SessionService,
    private readonly opts: BridgeServerOptions,
    private readonly log: BridgeLog,
  ) {
    this.http = http.createServer((req, res) => void this.onRequest(req, res));
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket as Socket, head));
    this.http.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.http.on('clientError', (_err, socket) => socket.destroy());
    this.http.requestTimeout = 60_000;
    this.http.headersTimeout = 20_000;
    // A /tty client that asks for flow control by acknowledgement (`?flow=1`) is told it has it.
    this.wss.on('headers', (headers, req) => {
      if (wantsFlow(req)) headers.push(`${TTY_FLOW_HEADER}: ${TTY_FLOW_ACCEPTED}`);
    });
  }

  listen(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, '127.0.0.1', () => {
        this.port = (this.http.address() as AddressInfo).port;
        this.startHeartbeat();
        resolve(`http://127.0.0.1:${this.port}`);
      });
    });
  }

  /** The request's Host must name this server by loopback; an Origin must be allow-listed. */
  private refusal(req: http.IncomingMessage): string | undefined {
    const host = (req.headers.host ?? '').toLowerCase();
    const ok = [`127.0.0.1:${this.port}`, `localhost:${this.port}`, `[::1]:${this.port}`];
    if (!ok.includes(host)) return 'forbidden host';
    const origin = req.headers.origin;
    if (origin !== undefined && !this.opts.allowedOrigins.includes(origin)) return 'forbidden origin';
    return undefined;
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body?: unknown): void => {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (body === undefined) {
        res.writeHead(status);
        res.end();
        return;
      }
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    };
    const started = Date.now();
    const url = parseTarget(req.url);
    if (!url) return void send(400, { error: 'malformed request target' });
    try {
      const refused = this.refusal(req);
      if (refused) return void send(403, { error: refused });
      const key = bearer(req);
      if (key === undefined || !sameSecret(key, this.opts.masterKey)) return void send(401, { error: 'unauthorized' });
      if (TTY_PATH.test(url.pathname)) return void send(426, { error: 'expected a WebSocket upgrade' });
      const body = await readBody(req, MESSAGE_PATH.test(url.pathname) ? MAX_MESSAGE_BODY_BYTES : MAX_BODY_BYTES);
      const reply = await this.api.handle({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body });
      // Server-sent events and the harness proxy write their own answer.
      if (reply.stream) return void (await reply.stream(res, req));
      send(reply.status, reply.body);
    } catch (err) {
      if (err instanceof HttpError) send(err.status, err.body);
      else {
        this.log.error(err as Error);
        send(500, { error: 'internal error' });
      }
    } finally {
      this.log.debug(`${req.method} ${url.pathname} → ${res.statusCode} (${Date.now() - started} ms)`);
    }
  }

  private onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const reject = (status: number, error: string) => {
      const body = JSON.stringify({ error });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    };
    socket.on('error', () => undefined);
    const url = parseTarget(req.url);
    if (!url) return reject(400, 'malformed request target');
    const refused = this.refusal(req);
    if (refused) return reject(403, refused);
    const match = TTY_PATH.exec(url.pathname);
    if (!match) return reject(404, 'not found');
    const id = safeDecode(match[1]);
    const session = id === undefined ? undefined : this.sessions.find(id);
    const token = bearer(req) ?? url.searchParams.get('token') ?? '';
    // The same answer for an unknown session and a wrong token: ids are not secrets, but no oracle.
    if (!session || !sameSecret(token, session.tty_token)) return reject(401, 'unauthorized');
    const hub = this.sessions.hub(session.id);
    if (session.status !== 'ready') return reject(409, `session not ready, status=${session.status}`);
    if (!hub) return reject(409, 'session not attachable yet: its sandbox is re-adopted once the runtime (Docker) is reachable');
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      (ws as WebSocket & { alive?: boolean }).alive = true;
      ws.on('pong', () => ((ws as WebSocket & { alive?: boolean }).alive = true));
      ws.on('message', (data, isBinary) => {
        this.sessions.touch(session);
        if (!isBinary) {
          const text = data.toString();
          if (text.includes('"resize"')) {
            try {
              const m = JSON.parse(text) as { type?: string; cols?: unknown; rows?: unknown };
              const size = m.type === 'resize' ? clampSize(m.cols, m.rows) : undefined;
              if (size) this.sessions.noteSize(session.id, size.cols, size.rows);
            } catch {
              /* not a control frame */
            }
          }
        }
      });
      hub.attach(ws, { flow: wantsFlow(req) });
      this.log.debug(`tty client attached to ${session.id} (${hub.clientCount} attached)`);
    });
  }

  private startHeartbeat(): void {
    this.heartbeat = setInterval(() => {
      for (const ws of this.wss.clients as Set<WebSocket & { alive?: boolean }>) {
        if (ws.alive === false) {
          ws.terminate();
          continue;
        }
        ws.alive = false;
        ws.ping();
      }
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const ws of this.wss.clients) ws.close(1012, 'bridge restarting');
    const closed = new Promise<void>((r) => this.http.close(() => r()));
    // Clients that do not read (paused by flow control) would hold the close for 30 s: a short grace.
    await new Promise((r) => setTimeout(r, 200));
    for (const ws of this.wss.clients) ws.terminate();
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

function wantsFlow(req: http.IncomingMessage): boolean {
  return parseTarget(req.url)?.searchParams.get(TTY_FLOW_QUERY) === '1';
}

/** The request target as a URL, or undefined when it is malformed (never a throw). */
export function parseTarget(target: string | undefined): URL | undefined {
  try {
    const url = new URL(target ?? '/', 'http://bridge');
    return url.host === 'bridge' ? url : undefined;
  } catch {
    return undefined;
  }
}

export function safeDecode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

async function readBody(req: http.IncomingMessage, max: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new HttpError(413, { error: `request body larger than ${max} bytes` });
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, { error: `invalid JSON body: ${(err as Error).message}` });
  }
}
