/**
 * The extension host's connection to a session's `/tty` WebSocket (see platform-api.md, `/tty`).
 *
 * It resolves the URL (`tty_url`, else `sandbox_url` + `/tty` when reachable, else the fallback
 * setting), sends the token both as `Authorization: Bearer` and as `?token=`, sends the size as a text
 * frame right after open, keystrokes as binary frames, and keeps the socket honest: a ping every
 * `pingIntervalMs` (a missing pong means a dead socket) and a wall-clock check (a jump means the
 * machine slept). A lost socket is reattached with backoff after checking the session is still
 * `ready`; a session that ended, a rejected key or token, or an unusable URL stops it for good (until
 * `reconnectNow()`). Output is flow-controlled by the consumer's `ack`s: every URL asks for flow control
 * by acknowledgement (`?flow=1`, protocol/terminal.ts); a server that accepts it (the bridge) is sent
 * the acks and keeps the output in flight bounded itself, and the socket is never paused. With any
 * other server (the platform), reading pauses above a high-water mark of unacknowledged bytes.
 *
 * No `vscode` import: plain Node, tested against a real `ws` server. Never logs the token or a URL
 * carrying it (only paths).
 */
import WebSocket from 'ws';
import { TERMINAL_STATUSES, type Session } from '../protocol/platform';
import { TTY_FLOW_ACCEPTED, TTY_FLOW_HEADER, TTY_FLOW_QUERY, ttyAckFrame, type TtyState } from '../protocol/terminal';
import { PlatformError, redact, toUserMessage } from './errors';
import type { Logger } from './logger';

/** The setting a person can use when the platform gives no reachable terminal URL. */
export const TTY_FALLBACK_SETTING = 'sandboxAgents.platform.ttyFallbackUrl';

const IN_CLUSTER_HOST = /\.svc\.cluster\.local\.?$/i;
/** A wall-clock gap this much longer than the tick means the process was frozen (sleep, suspend). */
const CLOCK_JUMP_SLACK_MS = 10_000;
/** A connection that lived this long resets the backoff; shorter ones keep backing off. */
const STABLE_CONNECTION_MS = 10_000;
/** Close codes of a deliberate close by the server: check the session at once (it may have ended). */
const NORMAL_CLOSE_CODES = new Set([1000, 1001, 1005]);
/** Acks to the server are coalesced: sent at once from this many bytes, else after ACK_DELAY_MS. */
const ACK_BATCH_BYTES = 16 * 1024;
const ACK_DELAY_MS = 5;

// ---------------------------------------------------------------------------------------------
// URL resolution

function toWebSocketUrl(input: string | URL): URL | undefined {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return undefined;
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return undefined;
  return url;
}

/** `rel` (a path, with or without a leading slash) under `base`, keeping the base's path prefix. */
function underBase(baseUrl: string, rel: string): string {
  const base = toWebSocketUrl(baseUrl);
  if (!base) throw new Error(`The platform URL "${baseUrl}" is not an http:// or https:// URL.`);
  const prefix = base.pathname.replace(/\/+$/, '');
  const relative = new URL(rel.startsWith('/') ? rel : `/${rel}`, 'http://relative.invalid');
  // A platform behind a path prefix that already includes it keeps it once.
  const path = prefix && (relative.pathname === prefix || relative.pathname.startsWith(`${prefix}/`)) ? relative.pathname : `${prefix}${relative.pathname}`;
  return `${base.protocol}//${base.host}${path}${relative.search}`;
}

/**
 * The WebSocket URL of a session's terminal, by the platform's rules: `tty_url` (absolute, or relative
 * to the platform base), else `sandbox_url` + `/tty` unless that is an in-cluster name, else the
 * fallback setting. Throws an Error saying what to do when none applies.
 */
export function resolveTtyUrl(baseUrl: string, session: Pick<Session, 'tty_url' | 'sandbox_url'>, fallbackUrl?: string): string {
  const tty = session.tty_url?.trim();
  let ignoredTty: string | undefined;
  if (tty) {
    if (tty.startsWith('//')) {
      const url = toWebSocketUrl(new URL(tty, baseUrl));
      if (url) return url.toString();
    } else if (/^[a-z][a-z0-9+.-]*:/i.test(tty)) {
      const url = toWebSocketUrl(tty);
      if (url) return url.toString();
      ignoredTty = tty.split(':')[0];
    } else {
      return underBase(baseUrl, tty);
    }
  }

  const sandbox = session.sandbox_url?.trim();
  let inCluster: string | undefined;
  if (sandbox) {
    const url = toWebSocketUrl(sandbox);
    if (url && IN_CLUSTER_HOST.test(url.hostname)) inCluster = url.hostname;
    else if (url) {
      url.pathname = `${url.pathname.replace(/\/+$/, '')}/tty`;
      url.search = '';
      url.hash = '';
      return url.toString();
    }
  }

  const fallback = fallbackUrl?.trim();
  if (fallback) {
    const url = toWebSocketUrl(fallback);
    if (!url) throw new Error(`The setting "${TTY_FALLBACK_SETTING}" must be a ws://, wss://, http:// or https:// URL (it is "${redact(fallback)}").`);
    return url.toString();
  }

  const why = inCluster
    ? `the platform gave no tty_url and the sandbox address (${inCluster}) is only reachable inside its cluster`
    : ignoredTty
      ? `its tty_url has an unsupported scheme (${ignoredTty}:) and there is no usable sandbox address`
      : 'the platform gave neither a tty_url nor a sandbox address for this session';
  throw new Error(
    `Cannot open the terminal: ${why}. Set "${TTY_FALLBACK_SETTING}" to a WebSocket URL that reaches the session's /tty (for example wss://tty.example.com/tty), or ask the platform's operator to expose tty_url.`,
  );
}

// ---------------------------------------------------------------------------------------------
// The connection

export interface TtyConnectionOptions {
  sessionId: string;
  /** The platform (or bridge) base URL; a function when it can change (a restarted local bridge). */
  baseUrl: string | (() => string);
  /** `GET /sessions/{id}`, e.g. `(signal) => client.getSession(id, { signal })`. */
  getSession(signal?: AbortSignal): Promise<Session>;
  /** The `sandboxAgents.platform.ttyFallbackUrl` setting. */
  fallbackUrl?: string;
  log: Logger;
  /** WebSocket ping period. Default 20 s (load balancers drop sockets idle for 30–60 s). */
  pingIntervalMs?: number;
  /** A ping unanswered this long means the socket is dead. Default 10 s. */
  pongTimeoutMs?: number;
  /** Reconnect delays: doubling from minMs up to maxMs, with jitter. Default 250 ms … 15 s. */
  backoff?: { minMs: number; maxMs: number };
  /** The wall clock (injectable for tests). */
  now?: () => number;
  /** Period of the wall-clock check. Default 2 s. */
  clockTickMs?: number;
  /** Without ack flow control: reading pauses when this many delivered bytes are unacknowledged. Default 256 KiB. */
  highWaterBytes?: number;
  /** …and resumes when unacknowledged bytes fall to this. Default 64 KiB. */
  lowWaterBytes?: number;
  /** The terminal's size, sent right after every open. Without one no size is sent until `resize()`. */
  initialSize?: { cols: number; rows: number };
  /** Time allowed for the WebSocket handshake. Default 15 s. */
  handshakeTimeoutMs?: number;
  /** Jitter source (injectable for tests). */
  random?: () => number;
}

type Options = Required<Omit<TtyConnectionOptions, 'fallbackUrl' | 'initialSize'>> & Pick<TtyConnectionOptions, 'fallbackUrl'>;

export class TtyConnection {
  private readonly o: Options;
  private current: TtyState = { kind: 'connecting', attempt: 1 };
  private readonly stateListeners = new Set<(s: TtyState) => void>();
  private readonly dataListeners = new Set<(bytes: Buffer) => void>();
  private size: { cols: number; rows: number } | undefined;

  private started = false;
  /** A final state was reached (ended, unauthorized, failed): nothing runs until `reconnectNow()`. */
  private stopped = false;
  private disposed = false;
  /** Bumped whenever an attempt starts or everything stops: stale async continuations bail out. */
  private run = 0;
  private firstAttempt: Promise<void> | undefined;
  private sessionRequest: AbortController | undefined;
  private token: string | undefined;

  private ws: WebSocket | undefined;
  private openedAt = 0;
  /** The number of the current (or next) attempt since the last open, shown to the user. */
  private attempt = 1;
  /** Consecutive failures (drives the backoff; survives connections that die at once). */
  private failures = 0;

  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private clockTimer: NodeJS.Timeout | undefined;
  private lastTick = 0;

  private unackedBytes = 0;
  /** Of those, the bytes delivered on the current socket; the rest came earlier and are acked first. */
  private socketUnacked = 0;
  /** The current socket's server accepted acks (`x-sandbox-agents-flow: ack`). */
  private ackMode = false;
  /** Acknowledged bytes not yet sent to the server (coalesced). */
  private ackPending = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  private paused = false;

  constructor(options: TtyConnectionOptions) {
    this.o = {
      sessionId: options.sessionId,
      baseUrl: options.baseUrl,
      getSession: options.getSession,
      fallbackUrl: options.fallbackUrl,
      log: options.log,
      pingIntervalMs: options.pingIntervalMs ?? 20_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
      backoff: options.backoff ?? { minMs: 250, maxMs: 15_000 },
      now: options.now ?? Date.now,
      clockTickMs: options.clockTickMs ?? 2_000,
      highWaterBytes: options.highWaterBytes ?? 256 * 1024,
      lowWaterBytes: options.lowWaterBytes ?? 64 * 1024,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 15_000,
      random: options.random ?? Math.random,
    };
    if (options.initialSize) this.size = clampSize(options.initialSize.cols, options.initialSize.rows);
  }

  get state(): TtyState {
    return this.current;
  }

  /** Bytes delivered through `onData` and not yet acknowledged with `ack()`. */
  get unacked(): number {
    return this.unackedBytes;
  }

  /** True while reading from the socket is paused for flow control. */
  get readingPaused(): boolean {
    return this.paused;
  }

  /** How output is flow-controlled on the current socket: acks sent to the server, or paused reads. */
  get flowControl(): 'ack' | 'pause' {
    return this.ackMode ? 'ack' : 'pause';
  }

  onState(listener: (state: TtyState) => void): { dispose(): void } {
    this.stateListeners.add(listener);
    return { dispose: () => void this.stateListeners.delete(listener) };
  }

  onData(listener: (bytes: Buffer) => void): { dispose(): void } {
    this.dataListeners.add(listener);
    return { dispose: () => void this.dataListeners.delete(listener) };
  }

  /**
   * Starts connecting. Resolves when the first attempt has settled: the state is then `open`,
   * `reconnecting` (it keeps trying by itself) or final (`ended`, `unauthorized`, `failed`).
   * Calling it again returns the same promise.
   */
  connect(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    if (!this.started) {
      this.started = true;
      this.startClock();
      this.firstAttempt = this.attemptNow();
    }
    return this.firstAttempt!;
  }

  /** Sends keystrokes or a paste as one binary frame. False (and dropped) when not open. */
  write(data: string | Uint8Array): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.current.kind !== 'open') return false;
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length === 0) return true;
    ws.send(bytes, { binary: true });
    return true;
  }

  /** Remembers the size and sends it now when open (and after every reconnect). */
  resize(cols: number, rows: number): void {
    const size = clampSize(cols, rows);
    if (!size) return;
    this.size = size;
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN && this.current.kind === 'open') this.sendSize(ws);
  }

  /**
   * The consumer finished processing `bytes` of output (in the order it was delivered). With ack flow
   * control the current socket's share is passed on to the server; otherwise reading resumes below the
   * low-water mark.
   */
  ack(bytes: number): void {
    if (!Number.isFinite(bytes) || bytes <= 0) return;
    const acked = Math.min(bytes, this.unackedBytes);
    // Bytes from earlier sockets were delivered first: they are paid off first, and never told to this server.
    const earlier = this.unackedBytes - this.socketUnacked;
    const current = Math.max(0, acked - earlier);
    this.unackedBytes -= acked;
    this.socketUnacked -= current;
    if (this.ackMode) {
      if (current > 0) this.queueAck(current);
    } else if (this.paused && this.unackedBytes <= this.o.lowWaterBytes) this.resumeReading();
  }

  /**
   * Skips the backoff wait, or starts over after a final state (e.g. after signing in again).
   * Does nothing while open or while an attempt is under way.
   */
  reconnectNow(): void {
    if (this.disposed) return;
    if (!this.started) {
      void this.connect();
      return;
    }
    if (this.stopped) {
      this.stopped = false;
      this.failures = 0;
      this.attempt = 1;
      this.startClock();
      void this.attemptNow();
      return;
    }
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      void this.attemptNow();
    }
  }

  /** Closes the socket, stops every timer and never reconnects. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.halt('terminal closed');
    this.setState({ kind: 'closed' });
    this.stateListeners.clear();
    this.dataListeners.clear();
    this.o.log.debug(`${this.label}: disposed`);
  }

  // ------------------------------------------------------------------------------------------

  private get label(): string {
    return `tty ${this.o.sessionId}`;
  }

  private baseUrl(): string {
    return typeof this.o.baseUrl === 'function' ? this.o.baseUrl() : this.o.baseUrl;
  }

  private setState(state: TtyState): void {
    this.current = state;
    for (const listener of [...this.stateListeners]) {
      try {
        listener(state);
      } catch (err) {
        this.o.log.error(err instanceof Error ? err : String(err));
      }
    }
  }

  /** One attempt: check the session, resolve the URL, open the socket. */
  private async attemptNow(): Promise<void> {
    const run = ++this.run;
    this.setState({ kind: 'connecting', attempt: this.attempt });
    const request = new AbortController();
    this.sessionRequest = request;
    let session: Session;
    try {
      session = await this.o.getSession(request.signal);
    } catch (err) {
      if (run !== this.run) return;
      return this.onSessionError(err);
    } finally {
      if (this.sessionRequest === request) this.sessionRequest = undefined;
    }
    if (run !== this.run) return;

    if (TERMINAL_STATUSES.has(session.status)) {
      return this.finish({ kind: 'ended', status: session.status, reason: session.failure_reason?.trim() || `The session is ${session.status}.` });
    }
    if (session.status !== 'ready') {
      return this.scheduleRetry(`the session is ${session.status}${session.phase ? ` (${session.phase})` : ''}`);
    }

    let url: string;
    try {
      url = resolveTtyUrl(this.baseUrl(), session, this.o.fallbackUrl);
    } catch (err) {
      return this.finish({ kind: 'failed', message: toUserMessage(err, [session.tty_token ?? undefined]) });
    }
    this.token = session.tty_token ?? undefined;
    await this.openSocket(url, this.token, run);
  }

  private onSessionError(err: unknown): void {
    const message = toUserMessage(err, [this.token]);
    if (err instanceof PlatformError && err.status === 401) return this.finish({ kind: 'unauthorized', message });
    if (err instanceof PlatformError && err.status === 404) return this.finish({ kind: 'ended', status: 'deleted', reason: 'The session no longer exists.' });
    this.scheduleRetry(`cannot check the session: ${message}`);
  }

  private openSocket(url: string, token: string | undefined, run: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const target = new URL(url);
      if (token) target.searchParams.set('token', token);
      target.searchParams.set(TTY_FLOW_QUERY, '1');
      const path = target.pathname;
      this.o.log.debug(`${this.label}: opening ${path}`);
      let ws: WebSocket;
      try {
        ws = new WebSocket(target, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
          handshakeTimeout: this.o.handshakeTimeoutMs,
          followRedirects: false,
        });
      } catch (err) {
        this.finish({ kind: 'failed', message: toUserMessage(err, [token]) });
        return resolve();
      }
      this.ws = ws;
      let opened = false;
      let acks = false;
      let lastError: string | undefined;
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        resolve();
      };

      ws.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        if (this.ws === ws) this.ws = undefined;
        ws.terminate();
        settle();
        if (run !== this.run) return;
        this.o.log.warn(`${this.label}: the upgrade of ${path} was refused with HTTP ${status}`);
        if (status === 401) {
          this.finish({ kind: 'unauthorized', message: 'The terminal refused the session\'s token (HTTP 401). Sign in again, or restart the session.' });
        } else if (status === 403) {
          this.finish({ kind: 'failed', message: `The server refused the terminal connection (HTTP 403) to ${target.host}.` });
        } else {
          // 404/409/410: the next attempt's session check says whether it ended; others are retried.
          this.scheduleRetry(`the server refused the terminal (HTTP ${status})`);
        }
      });
      ws.on('upgrade', (res) => {
        acks = res.headers[TTY_FLOW_HEADER] === TTY_FLOW_ACCEPTED;
      });
      ws.on('open', () => {
        opened = true;
        settle();
        if (this.ws !== ws) return;
        this.onOpen(ws, path, acks);
      });
      ws.on('message', (data: WebSocket.RawData) => this.onMessage(ws, data));
      ws.on('pong', () => {
        if (this.ws === ws) this.clearPongDeadline();
      });
      ws.on('error', (err) => {
        lastError = redact(err.message, [token]);
        this.o.log.debug(`${this.label}: socket error: ${lastError}`);
      });
      ws.on('close', (code, reason) => {
        settle();
        if (this.ws !== ws) return;
        this.ws = undefined;
        this.stopKeepalive();
        this.endSocketFlow();
        const why = redact(reason.toString('utf8'), [token]);
        this.o.log.info(`${this.label}: ${opened ? 'connection closed' : 'could not connect'} (${code}${why ? ` ${why}` : ''}${lastError && !opened ? `: ${lastError}` : ''})`);
        this.onSocketLost(opened, code, opened ? `the connection closed (${code}${why ? ` ${why}` : ''})` : `cannot connect: ${lastError ?? `closed (${code})`}`);
      });
    });
  }

  private onOpen(ws: WebSocket, path: string, acks: boolean): void {
    this.openedAt = this.o.now();
    this.attempt = 0;
    this.endSocketFlow();
    this.ackMode = acks;
    this.sendSize(ws);
    this.startKeepalive(ws);
    if (!acks && this.unackedBytes > this.o.highWaterBytes) this.pauseReading();
    this.o.log.info(`${this.label}: attached (${path}; flow control: ${acks ? 'acks' : 'paused reads'})`);
    this.setState({ kind: 'open' });
  }

  private onMessage(ws: WebSocket, data: WebSocket.RawData): void {
    if (this.ws !== ws || this.disposed) return;
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    // Anything arriving proves the socket alive.
    this.clearPongDeadline();
    this.unackedBytes += bytes.length;
    this.socketUnacked += bytes.length;
    for (const listener of [...this.dataListeners]) {
      try {
        listener(bytes);
      } catch (err) {
        this.o.log.error(err instanceof Error ? err : String(err));
      }
    }
    if (!this.ackMode && !this.paused && this.unackedBytes > this.o.highWaterBytes) this.pauseReading();
  }

  private sendSize(ws: WebSocket): void {
    if (!this.size) return;
    ws.send(JSON.stringify({ type: 'resize', cols: this.size.cols, rows: this.size.rows }), { binary: false });
  }

  /** A socket known to be open (or opening) is dead: drop it and reconnect. */
  private socketDead(reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.o.log.warn(`${this.label}: ${reason}; reconnecting`);
    const wasOpen = ws.readyState === WebSocket.OPEN;
    this.ws = undefined;
    this.stopKeepalive();
    this.endSocketFlow();
    ws.terminate();
    this.onSocketLost(wasOpen, 1006, reason);
  }

  private onSocketLost(wasOpen: boolean, code: number, reason: string): void {
    this.paused = false;
    if (this.disposed || this.stopped) return;
    if (wasOpen) {
      if (this.o.now() - this.openedAt >= STABLE_CONNECTION_MS) this.failures = 0;
      // A deliberate close may mean the program exited: check the session at once (unless the
      // server keeps closing fresh connections, which gets the backoff like any failure).
      if (NORMAL_CLOSE_CODES.has(code) && this.failures === 0) return this.scheduleRetry(reason, 0);
    }
    this.scheduleRetry(reason);
  }

  private scheduleRetry(reason: string, delayMs?: number): void {
    if (this.disposed || this.stopped) return;
    this.failures++;
    this.attempt++;
    const delay = delayMs ?? this.backoffDelay(this.failures);
    this.setState({ kind: 'reconnecting', attempt: this.attempt, delayMs: delay, reason });
    this.o.log.info(`${this.label}: reconnecting in ${delay} ms (attempt ${this.attempt}): ${reason}`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.attemptNow();
    }, delay);
  }

  private backoffDelay(failures: number): number {
    const { minMs, maxMs } = this.o.backoff;
    const base = Math.min(maxMs, minMs * 2 ** Math.min(30, failures - 1));
    return Math.round(Math.min(maxMs, base + this.o.random() * base * 0.5));
  }

  /** A final state: stop everything but the listeners; `reconnectNow()` may start over. */
  private finish(state: Extract<TtyState, { kind: 'ended' | 'unauthorized' | 'failed' }>): void {
    if (this.disposed) return;
    this.stopped = true;
    this.halt('session ended');
    this.o.log.info(`${this.label}: ${state.kind}: ${state.kind === 'ended' ? `${state.status}: ${state.reason}` : state.message}`);
    this.setState(state);
  }

  /** Cancels the attempt under way and every timer, and closes the socket (dispose and final states). */
  private halt(closeReason: string): void {
    this.run++;
    this.sessionRequest?.abort();
    this.sessionRequest = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stopClock();
    this.closeSocket(1000, closeReason);
  }

  private closeSocket(code: number, reason: string): void {
    const ws = this.ws;
    this.ws = undefined;
    this.stopKeepalive();
    this.endSocketFlow();
    this.paused = false;
    if (!ws) return;
    if (ws.readyState === WebSocket.OPEN) {
      // The close handshake needs the socket read again; a peer that never answers is cut off.
      ws.resume();
      ws.close(code, reason);
      const force = setTimeout(() => ws.terminate(), 2_000);
      force.unref();
      ws.once('close', () => clearTimeout(force));
    } else if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Keepalive and sleep detection

  private startKeepalive(ws: WebSocket): void {
    this.stopKeepalive();
    this.pingTimer = setInterval(() => {
      if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
      // While reading is paused a pong could not be read; the deadline would be a false alarm.
      if (this.paused || this.pongTimer) return;
      try {
        ws.ping();
      } catch {
        return;
      }
      this.pongTimer = setTimeout(() => {
        this.pongTimer = undefined;
        if (this.ws === ws) this.socketDead(`no answer to a keepalive ping within ${formatMs(this.o.pongTimeoutMs)}`);
      }, this.o.pongTimeoutMs);
    }, this.o.pingIntervalMs);
  }

  private clearPongDeadline(): void {
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
  }

  private stopKeepalive(): void {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    this.clearPongDeadline();
  }

  private startClock(): void {
    this.stopClock();
    this.lastTick = this.o.now();
    this.clockTimer = setInterval(() => this.tick(), this.o.clockTickMs);
  }

  private stopClock(): void {
    clearInterval(this.clockTimer);
    this.clockTimer = undefined;
  }

  private tick(): void {
    const now = this.o.now();
    const gap = now - this.lastTick;
    this.lastTick = now;
    if (gap <= this.o.clockTickMs + CLOCK_JUMP_SLACK_MS) return;
    this.o.log.info(`${this.label}: the clock jumped ${formatMs(gap)} (the machine slept?)`);
    if (this.ws) this.socketDead(`the computer slept or its clock jumped (${formatMs(gap)})`);
    else if (this.retryTimer) this.reconnectNow();
  }

  // ------------------------------------------------------------------------------------------
  // Flow control

  private queueAck(bytes: number): void {
    this.ackPending += bytes;
    if (this.ackPending >= ACK_BATCH_BYTES) this.sendAck();
    else this.ackTimer ??= setTimeout(() => this.sendAck(), ACK_DELAY_MS);
  }

  private sendAck(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const ws = this.ws;
    const bytes = this.ackPending;
    this.ackPending = 0;
    if (bytes > 0 && this.ackMode && ws && ws.readyState === WebSocket.OPEN) ws.send(ttyAckFrame(bytes), { binary: false });
  }

  /** The socket is gone or replaced: what it delivered counts as earlier output, its acks are void. */
  private endSocketFlow(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.ackPending = 0;
    this.ackMode = false;
    this.socketUnacked = 0;
  }

  private pauseReading(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    this.paused = true;
    this.clearPongDeadline();
    ws.pause();
    this.o.log.debug(`${this.label}: reading paused (${this.unackedBytes} bytes unacknowledged)`);
  }

  private resumeReading(): void {
    this.paused = false;
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.resume();
    this.o.log.debug(`${this.label}: reading resumed (${this.unackedBytes} bytes unacknowledged)`);
  }
}

function clampSize(cols: number, rows: number): { cols: number; rows: number } | undefined {
  if (!Number.isFinite(cols) || !Number.isFinite(rows)) return undefined;
  return { cols: Math.max(1, Math.round(cols)), rows: Math.max(1, Math.round(rows)) };
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms)} ms`;
}
