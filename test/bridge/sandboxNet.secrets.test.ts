/**
 * The egress proxy and the agent's secrets, driven the way a sandbox drives it (HTTP over the
 * session's unix socket): toward a host a secret is bound to, TLS is intercepted with the bridge's CA
 * and the stub becomes the real value in headers and JSON bodies; toward a host it is not bound to,
 * the stub arrives unchanged and the attempt is recorded; an unbound host is a plain tunnel.
 * Upstreams are local HTTPS servers with a test CA of their own, trusted by the bridge through `extraCa`.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { CertificateAuthority } from '../../bridge/ca';
import { createLog } from '../../bridge/log';
import { Providers, SandboxNet } from '../../bridge/sandboxNet';

const dir = mkdtempSync(join(tmpdir(), 'sa-secrets-'));
const MY_TOKEN = 'ghp_realTokenValue_0123456789';
const OTHER = 'other-real-secret-value';
const STUB = 'stub_MY_TOKEN_0a1b2c3d';
const OTHER_STUB = 'stub_OTHER_9f8e7d6c';

interface Seen {
  authorization?: string;
  body: string;
}

let bridgeCa: CertificateAuthority;
let upstreamCa: CertificateAuthority;
const servers: (http.Server | https.Server)[] = [];
let net_: SandboxNet;
let values: Record<string, string> = { MY_TOKEN, OTHER };
const seen = new Map<string, Seen[]>();

/** An upstream that remembers what it received and answers `ok`. */
async function upstream(name: string, host: string, secure: boolean): Promise<number> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.set(name, [...(seen.get(name) ?? []), { authorization: req.headers.authorization, body }]);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok from ${name}`);
    });
  };
  const server = secure ? https.createServer(await upstreamCa.leaf(host), handler) : http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, isIP(host) ? host : '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** CONNECT through the sandbox's socket, then one HTTPS request in the tunnel trusting `ca`. */
async function viaConnect(host: string, port: number, ca: string, headers: http.OutgoingHttpHeaders, body: string): Promise<{ status: number; text: string; issuer: string }> {
  const req = http.request({ socketPath: net_sockPath, method: 'CONNECT', path: `${host}:${port}` });
  req.end();
  const [res, socket] = (await once(req, 'connect')) as [http.IncomingMessage, Socket];
  assert.equal(res.statusCode, 200, `CONNECT ${host}:${port}`);
  const secure = tls.connect({ socket, host, ca, ...(isIP(host) ? {} : { servername: host }) });
  await once(secure, 'secureConnect');
  const issuer = secure.getPeerCertificate(true).issuerCertificate?.fingerprint256 ?? '';
  return new Promise((resolve, reject) => {
    const r = https.request({ createConnection: () => secure, host, port, method: 'POST', path: '/api?x=1', headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (up) => {
      let text = '';
      up.on('data', (c) => (text += c));
      up.on('end', () => {
        secure.destroy();
        resolve({ status: up.statusCode ?? 0, text, issuer });
      });
    });
    r.on('error', reject);
    r.end(body);
  });
}

let net_sockPath = '';
const ports = { bound: 0, other: 0, unbound: 0, plain: 0 };

before(async () => {
  bridgeCa = await CertificateAuthority.loadOrCreate(mkdtempSync(join(dir, 'bridge-')));
  upstreamCa = await CertificateAuthority.loadOrCreate(mkdtempSync(join(dir, 'upstream-')));
  ports.bound = await upstream('bound', 'localhost', true);
  ports.other = await upstream('other', '127.0.0.1', true);
  ports.unbound = await upstream('unbound', '127.0.0.2', true);
  ports.plain = await upstream('plain', 'localhost', false);
  net_sockPath = join(dir, 'egress.sock');
  net_ = new SandboxNet({
    socketPath: net_sockPath,
    label: 'test',
    stubs: { anthropic: 'stub_anthropic_11112222' },
    providers: new Providers(),
    allowOut: ['localhost', '127.0.0.1', '127.0.0.2'],
    denyOut: [],
    onPhase: () => undefined,
    log: createLog({ verbose: false, secrets: () => [MY_TOKEN, OTHER] }),
    secrets: [
      { name: 'MY_TOKEN', stub: STUB, hosts: ['localhost'] },
      { name: 'OTHER', stub: OTHER_STUB, hosts: ['127.0.0.1'] },
    ],
    secretValue: (name) => values[name],
    ca: bridgeCa,
    extraCa: [upstreamCa.certPem],
  });
  await net_.listen();
});

after(() => {
  net_?.close();
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

const json = (o: unknown) => JSON.stringify(o);
const fingerprint = (ca: CertificateAuthority) => new X509Certificate(ca.certPem).fingerprint256;

describe('secrets through the egress proxy', () => {
  it('toward its bound host, the stub becomes the real value in a header and in a JSON body (TLS intercepted with the bridge CA)', async () => {
    const r = await viaConnect('localhost', ports.bound, bridgeCa.certPem, { authorization: `Bearer ${STUB}`, 'content-type': 'application/json' }, json({ token: STUB, note: 'x' }));
    assert.equal(r.status, 200);
    assert.equal(r.text, 'ok from bound');
    assert.equal(r.issuer, fingerprint(bridgeCa));
    const got = seen.get('bound')!.at(-1)!;
    assert.equal(got.authorization, `Bearer ${MY_TOKEN}`);
    assert.deepEqual(JSON.parse(got.body), { token: MY_TOKEN, note: 'x' });
  });

  it('toward a host bound to another secret, the stub arrives unchanged and the attempt is listed', async () => {
    const r = await viaConnect('127.0.0.1', ports.other, bridgeCa.certPem, { authorization: `Bearer ${STUB}`, 'content-type': 'application/json', 'x-other': OTHER_STUB }, json({ token: STUB }));
    assert.equal(r.status, 200);
    const got = seen.get('other')!.at(-1)!;
    assert.equal(got.authorization, `Bearer ${STUB}`);
    assert.deepEqual(JSON.parse(got.body), { token: STUB });
    const blocked = net_.blocked().filter((b) => b.host === '127.0.0.1');
    assert.deepEqual(
      blocked.map((b) => [b.credential, b.where, b.method, b.path]),
      [
        ['MY_TOKEN', 'header', 'POST', '/api'],
        ['MY_TOKEN', 'body', 'POST', '/api'],
      ],
    );
  });

  it('Basic credentials (git over HTTPS sends user:token base64-encoded): the stub inside is swapped toward the bound host only', async () => {
    const basic = (v: string) => `Basic ${Buffer.from(v).toString('base64')}`;
    await viaConnect('localhost', ports.bound, bridgeCa.certPem, { authorization: basic(`x-access-token:${STUB}`) }, '');
    assert.equal(seen.get('bound')!.at(-1)!.authorization, basic(`x-access-token:${MY_TOKEN}`));
    const before = net_.blocked().length;
    await viaConnect('127.0.0.1', ports.other, bridgeCa.certPem, { authorization: basic(`x-access-token:${STUB}`) }, '');
    assert.equal(seen.get('other')!.at(-1)!.authorization, basic(`x-access-token:${STUB}`));
    assert.deepEqual(net_.blocked().slice(before).map((b) => [b.credential, b.where]), [['MY_TOKEN', 'header']]);
    // Basic credentials without a stub pass untouched.
    await viaConnect('localhost', ports.bound, bridgeCa.certPem, { authorization: basic('user:plain-password') }, '');
    assert.equal(seen.get('bound')!.at(-1)!.authorization, basic('user:plain-password'));
  });

  it('a bound host that echoes the value back: the sandbox gets the stub again (headers and text body, across chunks)', async () => {
    const echo = https.createServer(await upstreamCa.leaf('localhost'), (req, res) => {
      req.resume();
      const auth = String(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json', 'x-echo': auth });
      // Split inside the value: the scrubber must hold back a partial match.
      const text = JSON.stringify({ you_sent: auth, again: auth });
      const cut = text.indexOf(MY_TOKEN) + 5;
      res.write(text.slice(0, cut));
      setTimeout(() => res.end(text.slice(cut)), 20);
    });
    servers.push(echo);
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const port = (echo.address() as AddressInfo).port;
    const r = await viaConnect('localhost', port, bridgeCa.certPem, { authorization: `Bearer ${STUB}` }, '');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { you_sent: `Bearer ${STUB}`, again: `Bearer ${STUB}` });
    assert.ok(!r.text.includes(MY_TOKEN));
  });

  it('a host no secret is bound to is a plain tunnel: the client sees the upstream\'s own certificate', async () => {
    const before = net_.blocked().length;
    const r = await viaConnect('127.0.0.2', ports.unbound, upstreamCa.certPem, { authorization: `Bearer ${STUB}`, 'content-type': 'application/json' }, json({ token: STUB }));
    assert.equal(r.status, 200);
    assert.equal(r.issuer, fingerprint(upstreamCa));
    const got = seen.get('unbound')!.at(-1)!;
    assert.equal(got.authorization, `Bearer ${STUB}`);
    assert.equal(net_.blocked().length, before);
    // A client trusting only the bridge CA refuses it.
    await assert.rejects(viaConnect('127.0.0.2', ports.unbound, bridgeCa.certPem, {}, ''), /self[- ]signed|unable to (get|verify)|certificate/i);
  });

  it('plain-HTTP proxy requests to a bound host get the real value too', async () => {
    const body = new URLSearchParams({ token: STUB }).toString();
    const status = await new Promise<number>((resolve, reject) => {
      const r = http.request(
        { socketPath: net_sockPath, method: 'POST', path: `http://localhost:${ports.plain}/form`, headers: { host: `localhost:${ports.plain}`, 'x-api-key': STUB, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      r.on('error', reject);
      r.end(body);
    });
    assert.equal(status, 200);
    assert.equal(new URLSearchParams(seen.get('plain')!.at(-1)!.body).get('token'), MY_TOKEN);
  });

  it('a bound stub whose value the bridge lost (restart) is refused with a message saying so', async () => {
    values = { OTHER };
    try {
      const r = await viaConnect('localhost', ports.bound, bridgeCa.certPem, { authorization: `Bearer ${STUB}` }, '');
      assert.equal(r.status, 502);
      assert.match(r.text, /no value for MY_TOKEN.*restarted/);
    } finally {
      values = { MY_TOKEN, OTHER };
    }
  });
});

describe('the model gateway streams', () => {
  it('a long SSE reply arrives event by event: the upstream sends each next event only after the client got the previous one', { timeout: 20_000 }, async () => {
    const REAL = 'sk-ant-real-streaming-key-000';
    const STREAM_STUB = 'stub_anthropic_5e5e5e5e';
    const EVENTS = 50;
    let delivered: () => void = () => undefined;
    const keys: (string | undefined)[] = [];
    const server = http.createServer(async (req, res) => {
      keys.push(req.headers['x-api-key'] as string | undefined);
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < EVENTS; i++) {
        const got = new Promise<void>((r) => (delivered = r));
        res.write(`event: content_block_delta\ndata: {"i":${i},"pad":"${'x'.repeat(200)}"}\n\n`);
        // Waits for the client: a gateway that buffered the reply would never get past the first event.
        await got;
      }
      res.end('event: message_stop\ndata: {}\n\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const providers = new Providers();
    providers.set('anthropic', { base_url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, api_key: REAL });
    const sockPath = join(dir, 'stream.sock');
    const gw = new SandboxNet({ socketPath: sockPath, label: 'stream', stubs: { anthropic: STREAM_STUB }, providers, allowOut: [], denyOut: [], onPhase: () => undefined, log: createLog({ verbose: false }) });
    await gw.listen();
    try {
      const seenEvents: number[] = [];
      let stopped = false;
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ socketPath: sockPath, method: 'POST', path: '/anthropic/v1/messages', headers: { 'x-api-key': STREAM_STUB, 'content-type': 'application/json' } }, (res) => {
          assert.equal(res.statusCode, 200);
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            buf += c;
            let at: number;
            while ((at = buf.indexOf('\n\n')) >= 0) {
              const frame = buf.slice(0, at);
              buf = buf.slice(at + 2);
              const data = /data: (.*)/.exec(frame)?.[1];
              if (frame.startsWith('event: message_stop')) stopped = true;
              else if (data) {
                seenEvents.push((JSON.parse(data) as { i: number }).i);
                delivered();
              }
            }
          });
          res.on('end', resolve);
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end('{"stream":true}');
      });
      assert.deepEqual(seenEvents, [...Array(EVENTS).keys()]);
      assert.ok(stopped);
      assert.deepEqual(keys, [REAL], 'the upstream got the real key');
    } finally {
      gw.close();
      server.close();
    }
  });
});

describe('egress rules with ports and address blocks', () => {
  async function connectStatus(rules: { allowOut: string[]; denyOut: string[] }, target: string): Promise<{ status: number; blocked?: string }> {
    const sock = join(dir, `rules-${Math.random().toString(16).slice(2)}.sock`);
    const n = new SandboxNet({ socketPath: sock, label: 'rules', stubs: {}, providers: new Providers(), ...rules, onPhase: () => undefined, log: createLog({ verbose: false, secrets: () => [] }) });
    await n.listen();
    try {
      const req = http.request({ socketPath: sock, method: 'CONNECT', path: target });
      req.end();
      const [res, socket] = (await Promise.race([once(req, 'connect'), once(req, 'response').then(([r]) => [r, undefined])])) as [http.IncomingMessage, Socket | undefined];
      socket?.destroy();
      return { status: res.statusCode ?? 0, blocked: res.headers['x-vault-blocked'] as string | undefined };
    } finally {
      n.close();
    }
  }

  it('a deny_out block applies to what a name resolves to; a port in a rule must match', async () => {
    assert.deepEqual(await connectStatus({ allowOut: ['localhost'], denyOut: ['127.0.0.0/8'] }, `localhost:${ports.bound}`), { status: 403, blocked: 'egress-policy' });
    assert.equal((await connectStatus({ allowOut: ['127.0.0.0/8'], denyOut: [] }, `localhost:${ports.bound}`)).status, 200, 'an allowed block admits a name resolving into it');
    assert.equal((await connectStatus({ allowOut: [`localhost:${ports.bound}`], denyOut: [] }, `localhost:${ports.bound}`)).status, 200);
    assert.equal((await connectStatus({ allowOut: [`localhost:${ports.bound}`], denyOut: [] }, `localhost:${ports.other}`)).status, 403, 'another port is not allowed');
  });
});
