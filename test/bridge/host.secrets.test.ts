/**
 * An agent's secrets on the host runtime, end to end through a real bridge: the session gets stubs
 * (in the init config's env, never the values), the bridge's CA certificate (never its key), and its
 * egress socket swaps MY_TOKEN's stub for the value held in the bridge's memory toward the bound host
 * only; the blocked attempt shows on `GET /bridge/v1/sessions/{id}/blocked`. No file of the bridge's
 * state (log, state, session folders) holds a real value. The HTTPS upstream has a test CA of its own,
 * given to the bridge with `--extra-ca-file`.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { CertificateAuthority } from '../../bridge/ca';
import { startFakeAnthropic, type FakeAnthropic } from '../fixtures/fakeAnthropic';
import { attach, readyShellSession, settle, setProvider, shutDown, startBridge, type RunningBridge } from './harness';

const REAL_KEY = 'sk-ant-real-key-secrets-test-0123456789';
const MY_TOKEN = 'ghp_realHostTokenValue_9876543210';
const OTHER = 'other-real-host-secret-value-42';
const USER_ENV: Record<string, string> = {
  ANTHROPIC_API_KEY: 'sk-ant-users-own-env-key-4242',
  OPENAI_API_KEY: 'sk-users-own-openai-key-4242',
  GITHUB_TOKEN: 'ghp_usersOwnEnvToken4242',
  GH_TOKEN: 'ghp_usersOwnEnvGhToken4242',
  AWS_SECRET_ACCESS_KEY: 'users-own-aws-secret-4242',
  SSH_AUTH_SOCK: '/tmp/users-own-ssh-agent-4242.sock',
  GPG_AGENT_INFO: '/tmp/users-own-gpg-agent-4242:0:1',
  GIT_ASKPASS: '/usr/bin/users-own-askpass-4242',
  DBUS_SESSION_BUS_ADDRESS: 'unix:path=/tmp/users-own-bus-4242',
};

const dir = mkdtempSync(join(tmpdir(), 'sa-host-secrets-'));
const received: { host: string; authorization?: string; body: string }[] = [];
const servers: https.Server[] = [];

async function upstream(ca: CertificateAuthority, host: string, listenOn: string): Promise<number> {
  const server = https.createServer(await ca.leaf(host), (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ host, authorization: req.headers.authorization, body });
      res.end('ok');
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, listenOn, r));
  return (server.address() as AddressInfo).port;
}

/** What a TLS client in the sandbox does through HTTPS_PROXY: CONNECT on the egress socket, then HTTPS trusting `ca`. */
async function throughProxy(sock: string, host: string, port: number, ca: string, token: string): Promise<number> {
  const req = http.request({ socketPath: sock, method: 'CONNECT', path: `${host}:${port}` });
  req.end();
  const [res, socket] = (await once(req, 'connect')) as [http.IncomingMessage, Socket];
  assert.equal(res.statusCode, 200);
  const secure = tls.connect({ socket, host, ca, ...(host === 'localhost' ? { servername: host } : {}) });
  await once(secure, 'secureConnect');
  const body = JSON.stringify({ token });
  return new Promise((resolve, reject) => {
    const r = https.request({ createConnection: () => secure, host, port, method: 'POST', path: '/', headers: { authorization: `token ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (up) => {
      up.resume();
      up.on('end', () => {
        secure.destroy();
        resolve(up.statusCode ?? 0);
      });
    });
    r.on('error', reject);
    r.end(body);
  });
}

function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
    else if (st.isFile()) out.push(p);
  };
  walk(root);
  return out;
}

describe('agent secrets on the host runtime', { timeout: 180_000 }, () => {
  let bridge: RunningBridge;
  let fake: FakeAnthropic;
  let upstreamCa: CertificateAuthority;
  const ports = { bound: 0, other: 0, shell: 0 };

  before(async () => {
    upstreamCa = await CertificateAuthority.loadOrCreate(mkdtempSync(join(dir, 'upstream-ca-')));
    const caFile = join(dir, 'upstream-ca.pem');
    writeFileSync(caFile, upstreamCa.certPem);
    ports.bound = await upstream(upstreamCa, 'localhost', '127.0.0.1');
    ports.other = await upstream(upstreamCa, '127.0.0.1', '127.0.0.1');
    // Not in the sandbox's NO_PROXY (localhost, 127.0.0.1, ::1), so curl in a shell goes through the proxy.
    ports.shell = await upstream(upstreamCa, '127.0.0.2', '127.0.0.2');
    fake = await startFakeAnthropic({ apiKey: REAL_KEY });
    // The user's own environment holds credentials of all kinds: none may reach a host session.
    bridge = await startBridge({ runtime: 'host', extraArgs: ['--extra-ca-file', caFile], env: USER_ENV });
  });

  after(async () => {
    await shutDown(bridge);
    await fake?.close();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the session holds stubs and the CA certificate; its proxy swaps a stub only toward the bound host', async () => {
    assert.equal(await setProvider(bridge, 'anthropic', { base_url: fake.url, api_key: REAL_KEY }), 204);
    const agent = await bridge.client.createAgent({
      name: 'secrets-host',
      model: 'claude-sonnet-4-5',
      harness_id: 'claude-agent-sdk',
      env_vars: { MY_TOKEN, OTHER },
      env_var_hosts: { MY_TOKEN: ['localhost'], OTHER: ['127.0.0.1'] },
      allow_out: ['localhost', '127.0.0.1'],
    });
    const session = await settle(bridge.client, (await bridge.client.createSession(agent.id, {})).id);
    assert.equal(session.status, 'ready', `${session.failure_reason}\n${bridge.stderr.slice(-20).join('\n')}`);

    const sdir = join(bridge.stateDir, 'sessions', session.id);
    const config = JSON.parse(readFileSync(join(sdir, 'egress', 'init.json'), 'utf8')) as { env: Record<string, string>; ca_file?: string };
    assert.match(config.env.MY_TOKEN, /^stub_MY_TOKEN_[0-9a-f]{8}$/);
    assert.match(config.env.OTHER, /^stub_OTHER_[0-9a-f]{8}$/);
    assert.ok(config.ca_file && existsSync(config.ca_file));
    const caPem = readFileSync(config.ca_file, 'utf8');
    assert.equal(caPem, readFileSync(join(bridge.stateDir, 'ca-cert.pem'), 'utf8'));
    assert.doesNotMatch(caPem, /PRIVATE KEY/);

    const sock = join(sdir, 'egress', 'egress.sock');
    assert.equal(await throughProxy(sock, 'localhost', ports.bound, caPem, config.env.MY_TOKEN), 200);
    assert.deepEqual(received.at(-1), { host: 'localhost', authorization: `token ${MY_TOKEN}`, body: JSON.stringify({ token: MY_TOKEN }) });
    assert.equal(await throughProxy(sock, '127.0.0.1', ports.other, caPem, config.env.MY_TOKEN), 200);
    assert.deepEqual(received.at(-1), { host: '127.0.0.1', authorization: `token ${config.env.MY_TOKEN}`, body: JSON.stringify({ token: config.env.MY_TOKEN }) });

    const blocked = (await (await fetch(`${bridge.url}/bridge/v1/sessions/${session.id}/blocked`, { headers: { authorization: `Bearer ${bridge.masterKey}` } })).json()) as { blocked: { credential: string; host: string; where: string }[] };
    assert.deepEqual(
      blocked.blocked.map((b) => [b.credential, b.host, b.where]),
      [
        ['MY_TOKEN', '127.0.0.1', 'header'],
        ['MY_TOKEN', '127.0.0.1', 'body'],
      ],
    );

    // No real value in anything the bridge wrote (log, state, session folders, the sandbox's home).
    for (const f of filesUnder(bridge.stateDir)) {
      const text = readFileSync(f, 'latin1');
      for (const secret of [REAL_KEY, MY_TOKEN, OTHER]) assert.ok(!text.includes(secret), `${f} holds a real secret`);
    }

    // The list survives a bridge crash: the restarted bridge adopts the session and still shows it.
    const { stateDir, masterKey } = bridge;
    await bridge.kill();
    bridge = await startBridge({ runtime: 'host', stateDir, masterKey, extraArgs: ['--extra-ca-file', join(dir, 'upstream-ca.pem')], env: USER_ENV });
    const again = (await (await fetch(`${bridge.url}/bridge/v1/sessions/${session.id}/blocked`, { headers: { authorization: `Bearer ${bridge.masterKey}` } })).json()) as typeof blocked;
    assert.deepEqual(again.blocked, blocked.blocked);
    await bridge.client.deleteSession(session.id);
  });

  it('a host shell runs through init: stubs in its env, the proxy on loopback, the value swapped in toward the bound host', async () => {
    const { session } = await readyShellSession(bridge, 'secrets-host-shell', {
      env_vars: { MY_TOKEN },
      env_var_hosts: { MY_TOKEN: ['127.0.0.2'] },
      allow_out: ['127.0.0.2'],
    });
    assert.equal(session.unsandboxed, true);
    const tty = await attach(bridge, session);
    try {
      tty.type('echo "tok=$MY_TOKEN proxy=$HTTPS_PROXY"\r');
      const lines = await tty.waitFor(/tok=stub_MY_TOKEN_[0-9a-f]{8} proxy=http:\/\/127\.0\.0\.1:\d+/);
      const stub = /tok=(stub_MY_TOKEN_[0-9a-f]{8})/.exec(lines.join('\n'))![1];
      // curl trusts the bridge's CA through CURL_CA_BUNDLE and reaches the upstream through HTTPS_PROXY.
      tty.type(`curl -sS -o /dev/null -w 'http=%{http_code}\\n' -X POST -H "authorization: token $MY_TOKEN" -d "t=$MY_TOKEN" https://127.0.0.2:${ports.shell}/\r`);
      await tty.waitFor('http=200');
      assert.deepEqual(received.at(-1), { host: '127.0.0.2', authorization: `token ${MY_TOKEN}`, body: `t=${MY_TOKEN}` });
      assert.ok(!tty.received().includes(MY_TOKEN), 'the real value reached the terminal');
      // Nothing of the user's environment but what a program needs (PATH, locale, user, shell).
      // The marker is computed, so the typed command line itself never matches it.
      tty.type('echo "inherited=$(env | grep -c 4242)"\r');
      const scan = (await tty.waitFor(/^inherited=\d+/)).join('\n');
      assert.match(scan, /^inherited=0$/m, 'a host session inherited credentials from the user\'s environment');
      assert.notEqual(stub, MY_TOKEN);
    } finally {
      await tty.close();
      await bridge.client.deleteSession(session.id);
    }
  });
});
