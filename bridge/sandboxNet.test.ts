import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostMatches, isLocalAddress } from './sandboxNet';

describe('egress policy helpers', () => {
  it('host patterns: exact, wildcard subdomains, everything', () => {
    assert.ok(hostMatches('github.com', 'github.com'));
    assert.ok(hostMatches('github.com', 'GitHub.com:443'));
    assert.ok(!hostMatches('api.github.com', 'github.com'));
    assert.ok(hostMatches('api.github.com', '*.github.com'));
    assert.ok(!hostMatches('github.com', '*.github.com'));
    assert.ok(!hostMatches('evilgithub.com', '*.github.com'));
    assert.ok(hostMatches('anything.example', '*'));
    assert.ok(!hostMatches('x', ' '));
  });

  it('loopback, private, link-local and CGNAT addresses are local; public ones are not', () => {
    for (const ip of ['127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.1.1.1']) {
      assert.ok(isLocalAddress(ip), ip);
    }
    for (const ip of ['8.8.8.8', '172.32.0.1', '172.15.0.1', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) assert.ok(!isLocalAddress(ip), ip);
  });
});
