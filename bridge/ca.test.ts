import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as https from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CertificateAuthority } from './ca';

const dir = mkdtempSync(join(tmpdir(), 'sa-ca-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Serves `host`'s leaf on loopback and makes one HTTPS request trusting only `ca` (SNI/verification against `host`). */
async function handshake(leafFrom: CertificateAuthority, host: string, ca: string): Promise<string> {
  const leaf = await leafFrom.leaf(host);
  const server = https.createServer({ key: leaf.key, cert: leaf.cert }, (_req, res) => res.end('hello'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, ...(isIP(host) ? {} : { servername: host }), headers: { host }, ca }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe('the per-install CA', () => {
  it('is created once: key 0600, certificate 0644, and loaded again with the same certificate', async () => {
    const a = await CertificateAuthority.loadOrCreate(dir);
    assert.equal(statSync(join(dir, 'ca-key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'ca-cert.pem')).mode & 0o777, 0o644);
    assert.equal(readFileSync(join(dir, 'ca-cert.pem'), 'utf8'), a.certPem);
    assert.doesNotMatch(a.certPem, /PRIVATE KEY/);
    const b = await CertificateAuthority.loadOrCreate(dir);
    assert.equal(b.certPem, a.certPem);
  });

  it('signs leaves a TLS client trusting only the CA accepts for that host name, also after a reload', async () => {
    const a = await CertificateAuthority.loadOrCreate(dir);
    assert.equal(await handshake(a, 'api.example.test', a.certPem), 'hello');
    const reloaded = await CertificateAuthority.loadOrCreate(dir);
    assert.equal(await handshake(reloaded, 'git.example.test', a.certPem), 'hello');
  });

  it('a leaf is refused for another host name and by a client that does not trust the CA', async () => {
    const a = await CertificateAuthority.loadOrCreate(dir);
    const leaf = await a.leaf('one.example.test');
    const server = https.createServer({ key: leaf.key, cert: leaf.cert }, (_req, res) => res.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const get = (servername: string, ca?: string) =>
      new Promise<void>((resolve, reject) => https.get({ host: '127.0.0.1', port, servername, ca }, () => resolve()).on('error', reject));
    try {
      await assert.rejects(get('two.example.test', a.certPem), /altnames|Hostname/i);
      await assert.rejects(get('one.example.test'), /self[- ]signed|unable to get|unable to verify/i);
    } finally {
      server.close();
    }
  });

  it('caches one leaf per host (case-insensitive) and issues IP leaves', async () => {
    const a = await CertificateAuthority.loadOrCreate(dir);
    assert.equal(await a.leaf('Cache.Example.Test'), await a.leaf('cache.example.test'));
    assert.notEqual((await a.leaf('other.example.test')).key, (await a.leaf('cache.example.test')).key);
    assert.equal(await handshake(a, '127.0.0.1', a.certPem), 'hello');
  });
});
