import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostMatches, isLocalAddress, StubReplacer } from './sandboxNet';

describe('egress policy helpers', () => {
  it('host patterns: exact, wildcard subdomains, everything', () => {
    assert.ok(hostMatches('github.com', 'github.com'));
    assert.ok(hostMatches('github.com', 'GitHub.com:443'));
    assert.ok(!hostMatches('api.github.com', 'github.com'));
    assert.ok(hostMatches('api.github.com', '*.github.com'));
    assert.ok(hostMatches('github.com', '*.github.com'), 'the apex too, as the platform\'s vault');
    assert.ok(!hostMatches('evilgithub.com', '*.github.com'));
    assert.ok(hostMatches('anything.example', '*'));
    assert.ok(!hostMatches('x', ' '));
  });

  it('ports, IPv6 literals and CIDR blocks in rules', () => {
    assert.ok(hostMatches('github.com', 'github.com:443', 443));
    assert.ok(!hostMatches('github.com', 'github.com:443', 8443), 'a rule with a port matches that port only');
    assert.ok(hostMatches('github.com', 'github.com', 8443), 'a rule without a port matches any');
    assert.ok(hostMatches('::1', '::1', 443), 'a bare IPv6 literal is not host:port');
    assert.ok(hostMatches('::1', '[::1]:443', 443));
    assert.ok(!hostMatches('::1', '[::1]:443', 80));
    assert.ok(hostMatches('[::1]', '::1'));
    assert.ok(hostMatches('10.1.2.3', '10.0.0.0/8'));
    assert.ok(!hostMatches('11.1.2.3', '10.0.0.0/8'));
    assert.ok(hostMatches('fd00::5', 'fd00::/8'));
    assert.ok(!hostMatches('example.com', '10.0.0.0/8'), 'a name never matches a block by itself');
    assert.ok(!hostMatches('10.1.2.3', '10.0.0.0/33'), 'an impossible prefix matches nothing');
    assert.ok(hostMatches('10.1.2.3', '10.0.0.0/8:22', 22));
  });

  it('loopback, private, link-local and CGNAT addresses are local; public ones are not', () => {
    for (const ip of ['127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.1.1.1']) {
      assert.ok(isLocalAddress(ip), ip);
    }
    for (const ip of ['8.8.8.8', '172.32.0.1', '172.15.0.1', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) assert.ok(!isLocalAddress(ip), ip);
  });
});

describe('StubReplacer', () => {
  async function through(chunks: Buffer[], swaps: Record<string, string>): Promise<{ out: string; matches: string[] }> {
    const matches: string[] = [];
    const r = new StubReplacer(new Map(Object.entries(swaps)), (s) => matches.push(s));
    const parts: Buffer[] = [];
    r.on('data', (c: Buffer) => parts.push(c));
    const done = new Promise((resolve) => r.on('end', resolve));
    for (const c of chunks) r.write(c);
    r.end();
    await done;
    return { out: Buffer.concat(parts).toString('utf8'), matches };
  }
  const swaps = { stub_MY_TOKEN_0a1b2c3d: 'réal-välue', stub_X_11112222: 'stub_X_11112222' };
  const text = '{"a":"stub_MY_TOKEN_0a1b2c3d","b":"stub_X_11112222","c":"stub_MY_TOKEN_0a1b2c3d-end","d":"stub_MY_TOKEN_0a1b2c3"}';
  const expected = text.replaceAll('stub_MY_TOKEN_0a1b2c3d', 'réal-välue');

  it('replaces stubs split across every possible chunk boundary, one byte at a time too, and leaves near-misses', async () => {
    const bytes = Buffer.from(text);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { out, matches } = await through([bytes.subarray(0, cut), bytes.subarray(cut)], swaps);
      assert.equal(out, expected, `cut at ${cut}`);
      assert.equal(matches.length, 3);
    }
    const single = await through([...bytes].map((b) => Buffer.from([b])), swaps);
    assert.equal(single.out, expected);
    assert.deepEqual(single.matches, ['stub_MY_TOKEN_0a1b2c3d', 'stub_X_11112222', 'stub_MY_TOKEN_0a1b2c3d']);
  });

  it('passes bodies without stubs through unchanged (binary too)', async () => {
    const bin = Buffer.from([0, 255, 128, 10, 13, 0xc3, 0x28]);
    const r = new StubReplacer(new Map(Object.entries(swaps)));
    const parts: Buffer[] = [];
    r.on('data', (c: Buffer) => parts.push(c));
    r.end(bin);
    await new Promise((resolve) => r.on('end', resolve));
    assert.deepEqual(Buffer.concat(parts), bin);
  });
});
