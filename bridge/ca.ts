/**
 * The bridge's certificate authority, one per install: it signs the leaf certificates the egress
 * proxy presents for hosts whose TLS it intercepts (hosts a session's credential is bound to).
 * The key stays in the bridge's state dir (0600) and never enters a sandbox; only the certificate
 * (0644) is handed to sandboxes so their TLS clients trust the intercepted hosts.
 */
import { webcrypto } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import './reflectMetadata';
import * as x509 from '@peculiar/x509';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const CA_KEY_FILE = 'ca-key.pem';
const CA_CERT_FILE = 'ca-cert.pem';
const DAY = 24 * 60 * 60 * 1000;

/** A leaf for one host: PEM key and certificate (chain: leaf then CA), ready for `tls.createSecureContext`. */
export interface LeafCredentials {
  key: string;
  cert: string;
}

export class CertificateAuthority {
  private readonly leaves = new Map<string, Promise<LeafCredentials>>();

  private constructor(
    private readonly key: CryptoKey,
    private readonly ca: x509.X509Certificate,
    /** PEM of the CA certificate (what sandboxes trust). */
    readonly certPem: string,
  ) {}

  /** Loads the CA from `dir`, creating it once (key 0600, certificate 0644). */
  static async loadOrCreate(dir: string): Promise<CertificateAuthority> {
    const keyFile = join(dir, CA_KEY_FILE);
    const certFile = join(dir, CA_CERT_FILE);
    if (existsSync(keyFile) && existsSync(certFile)) {
      const keyPem = readFileSync(keyFile, 'utf8');
      const certPem = readFileSync(certFile, 'utf8');
      const key = await crypto.subtle.importKey('pkcs8', pemBody(keyPem), ALG, false, ['sign']);
      return new CertificateAuthority(key, new x509.X509Certificate(certPem), certPem);
    }
    const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'CN=Sandbox Agents local egress CA, O=Sandbox Agents',
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 10 * 365 * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const keyPem = toPem(await crypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    const certPem = cert.toString('pem') + '\n';
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    writeFileSync(certFile, certPem, { mode: 0o644 });
    chmodSync(certFile, 0o644);
    return new CertificateAuthority(keys.privateKey, cert, certPem);
  }

  /** A leaf certificate for `host` (a name or an IP), created once per bridge run and cached. */
  leaf(host: string): Promise<LeafCredentials> {
    const name = host.toLowerCase();
    let p = this.leaves.get(name);
    if (!p) {
      p = this.issue(name);
      p.catch(() => this.leaves.delete(name));
      this.leaves.set(name, p);
    }
    return p;
  }

  private async issue(host: string): Promise<LeafCredentials> {
    const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${host.replace(/[,=+<>#;"\\]/g, '')}`,
      issuer: this.ca.subject,
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 30 * DAY),
      signingKey: this.key,
      publicKey: keys.publicKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: isIP(host) ? 'ip' : 'dns', value: host }], false),
        await x509.AuthorityKeyIdentifierExtension.create(this.ca, false),
      ],
    });
    return {
      key: toPem(await crypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'),
      cert: `${cert.toString('pem')}\n${this.certPem}`,
    };
  }
}

function serial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f; // positive
  return Buffer.from(b).toString('hex');
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function pemBody(pem: string): ArrayBuffer {
  const b = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
}
