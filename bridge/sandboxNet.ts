/**
 * A sandbox's only way out: one HTTP server per session on a unix socket the sandbox has mounted
 * (read-only directory; see shared/docs/sandbox-networking.md). In-sandbox init forwards
 * `127.0.0.1:<port>` to it. It serves three things, told apart by the request line:
 *
 * - `POST /_sandbox/phase` (origin-form): init's bring-up reports;
 * - `/anthropic/…`, `/openai/…` (origin-form): the **model gateway**: the stub key the sandbox holds
 *   is swapped for the real one and the request streams to the configured upstream, both ways,
 *   without buffering;
 * - absolute-form requests and `CONNECT` (the sandbox's `HTTP(S)_PROXY`): the **egress proxy**,
 *   subject to the agent's `allow_out`/`deny_out`, refusing loopback, private and link-local
 *   destinations unless allow-listed (through the proxy, 127.0.0.1 is the *host's* loopback).
 *   Toward a host one of the agent's secrets is bound to (`env_var_hosts`), TLS is terminated with a
 *   leaf from the bridge's CA and the secret's stub is replaced by its value in headers and text
 *   bodies; stubs of secrets bound elsewhere are left as they are and the attempt is recorded.
 *   Every other `CONNECT` is a plain tunnel.
 */
import { lookup } from 'node:dns/promises';
import { appendFileSync, chmodSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import * as tls from 'node:tls';
import { GATEWAY_ROUTES, PHASE_PATH, PhaseReport, type Provider } from '../protocol/sandbox';
import { BlockedInterception as BlockedEntry, type BlockedInterception } from '../protocol/harnesses';
import type { CertificateAuthority } from './ca';
import type { BridgeLog } from './log';

export interface ProviderConfig {
  /** e.g. https://api.anthropic.com, https://api.openai.com, or a LiteLLM proxy. */
  base_url: string;
  api_key: string;
}

/** The real model keys, in the bridge's memory only (the extension hands them over). */
export class Providers {
  private readonly map = new Map<Provider, ProviderConfig>();
  set(provider: Provider, config: ProviderConfig | undefined): void {
    if (config) this.map.set(provider, config);
    else this.map.delete(provider);
  }
  get(provider: Provider): ProviderConfig | undefined {
    return this.map.get(provider);
  }
  configured(): Provider[] {
    return [...this.map.keys()];
  }
  /** Every real key, so logs can redact them. */
  secrets(): string[] {
    return [...this.map.values()].map((c) => c.api_key).filter(Boolean);
  }
}

export interface SandboxNetOptions {
  socketPath: string;
  label: string;
  /** provider → the stub this session's sandbox holds. */
  stubs: Partial<Record<Provider, string>>;
  providers: Providers;
  allowOut: string[];
  denyOut: string[];
  onPhase(report: PhaseReport): void;
  log: BridgeLog;
  /** The agent's secrets as this sandbox holds them: env var name, stub, and the hosts it may go to. */
  secrets?: SecretBinding[];
  /** A secret's real value (bridge memory only); undefined when the bridge lost it (restarted). */
  secretValue?(name: string): string | undefined;
  /** Signs the leaves for intercepted hosts; without it every CONNECT is a plain tunnel. */
  ca?: CertificateAuthority;
  /** PEM certificates trusted for intercepted upstreams besides Node's own roots (tests). */
  extraCa?: string[];
  /** Where the blocked list is kept across bridge restarts (JSON lines; names and hosts, never values). */
  blockedFile?: string;
}

export interface SecretBinding {
  name: string;
  stub: string;
  hosts: string[];
}

/** A stub that went toward a host its secret is not bound to (it was sent unchanged). */
export type { BlockedInterception };

const BLOCKED_MAX = 100;
/** Bodies we rewrite: text only, never compressed. */
const TEXT_BODY = /^(text\/|application\/(json|x-www-form-urlencoded|[\w.+-]+\+json)\b)/i;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);
const DEFAULT_UPSTREAM: Record<Provider, string> = { anthropic: 'https://api.anthropic.com', openai: 'https://api.openai.com' };

export class SandboxNet {
  private readonly server: http.Server;
  private readonly sockets = new Set<Duplex>();
  /** HTTP over the TLS connections we terminated; the real destination per connection. */
  private readonly mitm: http.Server;
  private readonly targets = new WeakMap<object, { host: string; port: number }>();
  private readonly upstreamAgent: https.Agent;
  private readonly blockedList: BlockedInterception[] = [];

  constructor(private readonly o: SandboxNetOptions) {
    if (o.blockedFile) this.blockedList.push(...readBlocked(o.blockedFile));
    this.mitm = http.createServer((req, res) => {
      const target = this.targets.get(req.socket);
      if (!target) return void res.destroy();
      this.forward('https:', target.host, target.port, req, res).catch((err: Error) => {
        this.o.log.warn(`${this.o.label}: ${target.host}: ${err.message}`);
        if (err instanceof MissingSecret && !res.headersSent) missingReply(res, err.message);
        else if (!res.headersSent) reply(res, 502, { error: err.message });
        else res.destroy();
      });
    });
    this.mitm.on('clientError', (_err, socket) => socket.destroy());
    this.upstreamAgent = new https.Agent({ keepAlive: true, ...(o.extraCa?.length ? { ca: [...tls.rootCertificates, ...o.extraCa] } : {}) });
    this.server = http.createServer((req, res) => void this.request(req, res));
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void this.connect(req, socket, head));
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  listen(): Promise<void> {
    rmSync(this.o.socketPath, { force: true });
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.socketPath, () => {
        // The sandbox runs as another uid: connecting needs write permission on the socket.
        chmodSync(this.o.socketPath, 0o666);
        resolve();
      });
    });
  }

  /** Stubs sent toward hosts their secrets are not bound to, oldest first (at most 100). */
  blocked(): BlockedInterception[] {
    return [...this.blockedList];
  }

  close(): void {
    this.server.close();
    this.mitm.close();
    this.upstreamAgent.destroy();
    for (const s of this.sockets) s.destroy();
    rmSync(this.o.socketPath, { force: true });
  }

  private async request(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    try {
      if (url.startsWith('/')) {
        if (url === PHASE_PATH && req.method === 'POST') return await this.phase(req, res);
        const provider = (Object.keys(GATEWAY_ROUTES) as Provider[]).find((p) => url === GATEWAY_ROUTES[p] || url.startsWith(`${GATEWAY_ROUTES[p]}/`));
        if (provider) return this.gateway(provider, url.slice(GATEWAY_ROUTES[provider].length) || '/', req, res);
        return reply(res, 404, { error: `no route ${url} (the gateway serves ${Object.values(GATEWAY_ROUTES).join(', ')})` });
      }
      return await this.proxyHttp(url, req, res);
    } catch (err) {
      this.o.log.warn(`${this.o.label}: ${(err as Error).message}`);
      if (err instanceof MissingSecret && !res.headersSent) return missingReply(res, err.message);
      if (!res.headersSent) reply(res, 502, { error: (err as Error).message });
      else res.destroy();
    }
  }

  private async phase(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const text = await readBody(req, 64 * 1024);
    let parsed: ReturnType<typeof PhaseReport.safeParse>;
    try {
      parsed = PhaseReport.safeParse(JSON.parse(text));
    } catch {
      return reply(res, 400, { error: 'phase report is not JSON' });
    }
    if (!parsed.success) return reply(res, 400, { error: 'invalid phase report' });
    this.o.onPhase(parsed.data);
    reply(res, 204);
  }

  private gateway(provider: Provider, rest: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const stub = this.o.stubs[provider];
    const config = this.o.providers.get(provider);
    if (!config) {
      const message = `Sandbox Agents has no ${provider === 'anthropic' ? 'Anthropic' : 'OpenAI'} key for this bridge: run "Sandbox Agents: Set Model Provider Key" in VS Code.`;
      return providerError(res, provider, 401, message);
    }
    // Only this session's stub unlocks the key; the real key replaces it wherever it appears.
    const headers: http.OutgoingHttpHeaders = {};
    let presented = false;
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      if ((name === 'x-api-key' || name === 'authorization' || name === 'api-key') && stub) {
        const v = String(value);
        if (v.includes(stub)) {
          presented = true;
          headers[name] = v.split(stub).join(config.api_key);
          continue;
        }
        continue; // any other credential is dropped
      }
      headers[name] = value;
    }
    if (!presented) return providerError(res, provider, 401, 'the request did not carry this sandbox\'s key');
    this.o.log.debug(`${this.o.label}: gateway ${req.method} ${provider}${rest.split('?')[0]}`);
    const base = new URL(config.base_url || DEFAULT_UPSTREAM[provider]);
    const target = new URL(base.pathname.replace(/\/$/, '') + rest, base);
    const client = target.protocol === 'https:' ? https : http;
    const upstream = client.request(target, { method: req.method, headers: { ...headers, host: target.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, filterHeaders(up.headers));
      res.flushHeaders();
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      this.o.log.warn(`${this.o.label}: gateway → ${target.host}: ${err.message}`);
      if (!res.headersSent) providerError(res, provider, 502, `the model gateway could not reach ${target.origin}: ${err.message}`);
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  private async proxyHttp(url: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return reply(res, 400, { error: 'malformed proxy request' });
    }
    if (target.protocol !== 'http:') return reply(res, 400, { error: `unsupported scheme ${target.protocol}` });
    const port = Number(target.port || 80);
    const blocked = await this.policy(target.hostname, port);
    this.o.log.debug(`${this.o.label}: ${req.method} ${target.origin}${blocked ? ` refused: ${blocked}` : ''}`);
    if (blocked) return blockedReply(res, blocked);
    await this.forward('http:', target.hostname, port, req, res, `${target.pathname}${target.search}`);
  }

  private async connect(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? '');
    if (!m) {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const host = m[1];
    const port = Number(m[2]);
    const blocked = await this.policy(host, port).catch((e: Error) => e.message);
    this.o.log.debug(`${this.o.label}: CONNECT ${host}:${port}${blocked ? ` refused: ${blocked}` : ''}`);
    if (blocked) {
      socket.end(`HTTP/1.1 403 Forbidden\r\nX-Vault-Blocked: egress-policy\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(blocked)}\r\n\r\n${blocked}`);
      return;
    }
    if (this.o.ca && this.bound(host, port).length > 0) return this.intercept(host, port, socket, head);
    const upstream = net.connect(port, host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    upstream.on('error', (err) => {
      if (socket.writable) socket.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-length: ${Buffer.byteLength(err.message)}\r\n\r\n${err.message}`);
    });
    socket.on('close', () => upstream.destroy());
  }

  /** The secrets bound to `host` (their stubs are swapped toward it). */
  private bound(host: string, port: number): SecretBinding[] {
    return (this.o.secrets ?? []).filter((b) => b.hosts.some((p) => hostMatches(host, p, port)));
  }

  /** Terminates the sandbox's TLS with a leaf for `host`; the requests inside go through `forward`. */
  private async intercept(host: string, port: number, socket: Duplex, head: Buffer): Promise<void> {
    let leaf;
    try {
      leaf = await this.o.ca!.leaf(host);
    } catch (err) {
      const why = `could not make a certificate for ${host}: ${(err as Error).message}`;
      socket.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-length: ${Buffer.byteLength(why)}\r\n\r\n${why}`);
      return;
    }
    this.o.log.debug(`${this.o.label}: CONNECT ${host}:${port} intercepted (a secret is bound to it)`);
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) socket.unshift(head);
    const secure = new tls.TLSSocket(socket as net.Socket, { isServer: true, key: leaf.key, cert: leaf.cert, ALPNProtocols: ['http/1.1'] });
    secure.on('error', () => secure.destroy());
    this.targets.set(secure, { host, port });
    this.mitm.emit('connection', secure);
  }

  /**
   * One request toward `host`: the stubs of secrets bound to it become their values (headers, and
   * text bodies as they stream); any other stub of this session is left alone and recorded.
   */
  private async forward(protocol: 'http:' | 'https:', host: string, port: number, req: http.IncomingMessage, res: http.ServerResponse, path = req.url ?? '/'): Promise<void> {
    const bound = this.bound(host, port);
    const boundNames = new Set(bound.map((b) => b.name));
    const swaps = new Map<string, string>();
    const missing: string[] = [];
    for (const b of bound) {
      const value = this.o.secretValue?.(b.name);
      if (value) swaps.set(b.stub, value);
      else missing.push(b.name);
    }
    // Stubs that must not be swapped here: the other secrets' and the model providers'.
    const foreign = new Map<string, string>();
    for (const b of this.o.secrets ?? []) if (!boundNames.has(b.name)) foreign.set(b.stub, b.name);
    for (const [provider, stub] of Object.entries(this.o.stubs)) if (stub && !bound.some((b) => b.stub === stub)) foreign.set(stub, provider);
    const record = (stub: string, where: BlockedInterception['where']) => {
      const credential = foreign.get(stub);
      if (credential) this.recordBlocked({ at: new Date().toISOString(), credential, host, method: req.method ?? 'GET', path: path.split('?')[0], where });
    };
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      const one = (v: string) => {
        for (const stub of foreign.keys()) if (v.includes(stub)) record(stub, 'header');
        const lost = missing.find((n) => v.includes(bound.find((b) => b.name === n)!.stub));
        if (lost) throw new MissingSecret(lost, host);
        return replaceAll(v, swaps);
      };
      // Basic credentials (git over HTTPS: user:token) carry the stub base64-encoded.
      const decoded = (v: string) => {
        const basic = name === 'authorization' ? /^(basic\s+)([A-Za-z0-9+/]+={0,2})\s*$/i.exec(v) : null;
        if (!basic) return one(v);
        const plain = Buffer.from(basic[2], 'base64').toString('utf8');
        const swapped = one(plain);
        return swapped === plain ? one(v) : `${basic[1]}${Buffer.from(swapped, 'utf8').toString('base64')}`;
      };
      headers[name] = Array.isArray(value) ? value.map(decoded) : decoded(value);
    }
    // Replies from a host that gets values must be readable to scrub them (see below).
    if (swaps.size) headers['accept-encoding'] = 'identity';
    const rewrite = bound.length > 0 && TEXT_BODY.test(String(req.headers['content-type'] ?? '')) && !req.headers['content-encoding'];
    if (rewrite) {
      // The length changes with the values: the body goes chunked.
      delete headers['content-length'];
      if (missing.length) this.o.log.warn(`${this.o.label}: ${missing.join(', ')} cannot be swapped toward ${host}: the bridge has no value (it keeps secrets in memory only and was restarted)`);
    }
    this.o.log.debug(`${this.o.label}: ${req.method} ${protocol}//${host}:${port}${path.split('?')[0]}${bound.length ? ` (secrets: ${[...boundNames].join(', ')})` : ''}`);
    const client = protocol === 'https:' ? https : http;
    const upstream = client.request(
      { protocol, host, port, path, method: req.method, headers: { ...headers, host: req.headers.host ?? (port === (protocol === 'https:' ? 443 : 80) ? host : `${host}:${port}`) }, ...(protocol === 'https:' ? { agent: this.upstreamAgent, servername: net.isIP(host) ? undefined : host } : {}) },
      (up) => {
        // What comes back from a bound host may echo a value (an API showing the credential it got,
        // an error quoting a header): values become their stubs again before the sandbox sees them.
        const back = new Map([...swaps].map(([stub, value]) => [value, stub]));
        const out = filterHeaders(up.headers);
        if (back.size) for (const [k, v] of Object.entries(out)) out[k] = Array.isArray(v) ? v.map((x) => replaceAll(x, back)) : typeof v === 'string' ? replaceAll(v, back) : v;
        const scrub = back.size > 0 && TEXT_BODY.test(String(up.headers['content-type'] ?? '')) && !up.headers['content-encoding'];
        if (scrub) delete out['content-length'];
        res.writeHead(up.statusCode ?? 502, out);
        res.flushHeaders();
        (scrub ? up.pipe(new StubReplacer(back, () => this.o.log.warn(`${this.o.label}: ${host} sent a secret's value back; the sandbox got its stub`))) : up).pipe(res);
        up.on('error', () => res.destroy());
      },
    );
    upstream.on('error', (err) => {
      this.o.log.warn(`${this.o.label}: ${host}:${port}: ${err.message}`);
      if (!res.headersSent) reply(res, 502, { error: `could not reach ${host}:${port}: ${err.message}` });
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (rewrite) {
      const scan = new Map(swaps);
      for (const stub of foreign.keys()) scan.set(stub, stub);
      req.pipe(new StubReplacer(scan, (stub) => record(stub, 'body'))).pipe(upstream);
    } else req.pipe(upstream);
  }

  private recordBlocked(entry: BlockedInterception): void {
    this.o.log.warn(`${this.o.label}: the stub of ${entry.credential} went toward ${entry.host} (${entry.where}), which it is not bound to: sent unchanged`);
    this.blockedList.push(entry);
    if (this.blockedList.length > BLOCKED_MAX) this.blockedList.splice(0, this.blockedList.length - BLOCKED_MAX);
    if (this.o.blockedFile) {
      try {
        appendFileSync(this.o.blockedFile, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
      } catch (err) {
        this.o.log.warn(`${this.o.label}: could not keep the blocked list: ${(err as Error).message}`);
      }
    }
  }

  /** Why a destination is refused, or undefined when it may be reached. */
  private async policy(host: string, port: number): Promise<string | undefined> {
    const name = host.toLowerCase();
    if (this.o.denyOut.some((p) => hostMatches(name, p, port))) return `egress to ${host} is denied by this agent's deny_out`;
    let allowed = this.o.allowOut.some((p) => hostMatches(name, p, port));
    // IP and CIDR rules apply to the addresses a name resolves to as well.
    const addressRules = !net.isIP(name) && [...this.o.denyOut, ...this.o.allowOut].some(isAddressRule);
    const addresses = allowed && !addressRules ? [] : net.isIP(name) ? [name] : (await lookup(name, { all: true }).catch(() => [])).map((a) => a.address);
    if (addressRules) {
      const denied = addresses.find((a) => this.o.denyOut.some((p) => isAddressRule(p) && hostMatches(a, p, port)));
      if (denied) return `egress to ${host} (${denied}) is denied by this agent's deny_out`;
      allowed ||= addresses.length > 0 && addresses.every((a) => this.o.allowOut.some((p) => isAddressRule(p) && hostMatches(a, p, port)));
    }
    if (this.o.allowOut.length > 0 && !allowed) return `egress to ${host}:${port} is not in this agent's allow_out`;
    if (allowed) return undefined;
    if (addresses.length === 0) return `cannot resolve ${host}`;
    const local = addresses.find(isLocalAddress);
    if (local) return `egress to ${host}:${port} (${local}) is a loopback, private or link-local address; add it to the agent's allow_out to reach it`;
    return undefined;
  }
}

/** A bound stub whose value the bridge does not hold (it keeps secrets in memory only). */
class MissingSecret extends Error {
  constructor(name: string, host: string) {
    super(`the stub of ${name} cannot be swapped toward ${host}: the bridge has no value for ${name} (it keeps secrets in memory only and was restarted). Save the agent's environment variables again, then retry.`);
  }
}

function missingReply(res: http.ServerResponse, why: string): void {
  res.writeHead(502, { 'content-type': 'text/plain', 'x-vault-blocked': 'missing-secret', 'content-length': Buffer.byteLength(why) }).end(why);
}

/** The last BLOCKED_MAX entries of a blocked-list file; unreadable lines are skipped. */
function readBlocked(file: string): BlockedInterception[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: BlockedInterception[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const parsed = BlockedEntry.safeParse(JSON.parse(line));
      if (parsed.success) out.push(parsed.data);
    } catch {
      /* a torn last line after a crash */
    }
  }
  return out.slice(-BLOCKED_MAX);
}

function replaceAll(text: string, swaps: Map<string, string>): string {
  let out = text;
  for (const [stub, value] of swaps) if (out.includes(stub)) out = out.split(stub).join(value);
  return out;
}

/**
 * Replaces strings in a byte stream (stubs by values toward a bound host; values by stubs in what
 * comes back), also across chunk boundaries: the last `longest - 1` bytes are held back until the
 * next chunk (or the end) shows whether a match starts there. Works on bytes, so UTF-8 survives.
 */
export class StubReplacer extends Transform {
  private carry = '';
  private readonly re: RegExp | undefined;
  private readonly keep: number;
  /** Both as latin1 strings (one character per byte). */
  private readonly values: Map<string, string>;
  private readonly originals: Map<string, string>;

  constructor(swaps: Map<string, string>, private readonly onMatch: (stub: string) => void = () => undefined) {
    super();
    const bytes = (v: string) => Buffer.from(v, 'utf8').toString('latin1');
    const keys = [...swaps.keys()].filter(Boolean).map((k) => [bytes(k), k] as const).sort((a, b) => b[0].length - a[0].length);
    this.originals = new Map(keys);
    this.values = new Map(keys.map(([b, k]) => [b, bytes(swaps.get(k)!)]));
    this.re = keys.length ? new RegExp(keys.map(([b]) => b.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g') : undefined;
    this.keep = keys.length ? keys[0][0].length - 1 : 0;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.re) return done(null, chunk);
    const text = this.carry + Buffer.from(chunk).toString('latin1');
    let out = '';
    let at = 0;
    this.re.lastIndex = 0;
    for (let m = this.re.exec(text); m; m = this.re.exec(text)) {
      out += text.slice(at, m.index) + this.values.get(m[0]);
      at = m.index + m[0].length;
      this.onMatch(this.originals.get(m[0]) ?? m[0]);
    }
    const rest = text.slice(at);
    const hold = Math.min(rest.length, this.keep);
    out += rest.slice(0, rest.length - hold);
    this.carry = rest.slice(rest.length - hold);
    done(null, out ? Buffer.from(out, 'latin1') : undefined);
  }

  override _flush(done: TransformCallback): void {
    done(null, this.carry ? Buffer.from(this.carry, 'latin1') : undefined);
  }
}

/**
 * One egress or binding rule against a destination: `example.com`, `*.example.com` (it and its subdomains),
 * `*`, an IP address, a CIDR block (`10.0.0.0/8`, `fd00::/8`), each optionally with a port
 * (`example.com:8443`, `[::1]:443`) that must then match too. IPv6 literals may be bare (`::1`).
 */
export function hostMatches(host: string, pattern: string, port?: number): boolean {
  const rule = parseRule(pattern);
  if (!rule) return false;
  if (rule.port !== undefined && port !== undefined && rule.port !== port) return false;
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (rule.cidr) return net.isIP(name) !== 0 && rule.cidr.check(name, net.isIP(name) === 6 ? 'ipv6' : 'ipv4');
  if (rule.host === '*') return true;
  // As the platform's vault: `*.example.com` covers example.com and its subdomains.
  if (rule.host.startsWith('*.')) return name === rule.host.slice(2) || name.endsWith(rule.host.slice(1));
  return name === rule.host;
}

/** Whether a rule names addresses (an IP or a CIDR block): such rules also apply to what a name resolves to. */
export function isAddressRule(pattern: string): boolean {
  const rule = parseRule(pattern);
  return !!rule && (rule.cidr !== undefined || net.isIP(rule.host) !== 0);
}

function parseRule(pattern: string): { host: string; port?: number; cidr?: net.BlockList } | undefined {
  let p = pattern.trim().toLowerCase();
  if (!p) return undefined;
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(p);
  if (bracketed) {
    p = bracketed[1];
    if (bracketed[2]) port = Number(bracketed[2]);
  } else if (p.split(':').length === 2) {
    const m = /^(.*):(\d+)$/.exec(p);
    if (m) {
      p = m[1];
      port = Number(m[2]);
    }
  }
  const slash = /^(.+)\/(\d{1,3})$/.exec(p);
  if (slash && net.isIP(slash[1])) {
    const family = net.isIP(slash[1]) === 6 ? 'ipv6' : 'ipv4';
    const prefix = Number(slash[2]);
    if (prefix > (family === 'ipv6' ? 128 : 32)) return undefined;
    const cidr = new net.BlockList();
    cidr.addSubnet(slash[1], prefix, family);
    return { host: p, port, cidr };
  }
  return { host: p, port };
}

export function isLocalAddress(ip: string): boolean {
  const v = ip.toLowerCase();
  if (v === '::1' || v === '::' || v.startsWith('fe80:') || v.startsWith('fc') || v.startsWith('fd')) return true;
  const mapped = v.startsWith('::ffff:') ? v.slice(7) : v;
  const parts = mapped.split('.').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n))) return false;
  const [a, b] = parts;
  return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
}

function filterHeaders(h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function reply(res: http.ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function blockedReply(res: http.ServerResponse, why: string): void {
  res.writeHead(403, { 'content-type': 'text/plain', 'x-vault-blocked': 'egress-policy', 'content-length': Buffer.byteLength(why) }).end(why);
}

/** An error in the provider's own shape, so the CLI shows the message. */
function providerError(res: http.ServerResponse, provider: Provider, status: number, message: string): void {
  const type = status === 401 ? 'authentication_error' : 'api_error';
  reply(res, status, provider === 'anthropic' ? { type: 'error', error: { type, message } } : { error: { message, type, code: null } });
}

function readBody(req: http.IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
