import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CancelledError, PlatformError, isCancellation, redact, toUserMessage } from './errors';

test('redact removes given secrets and anything shaped like a token', () => {
  const key = 'my-master-key-123';
  const text = `failed with ${key} at wss://h/tty?token=abc123def&x=1, header Bearer eyJhbGciOi.payload.sig, key sk-ant-api03-abcdefghijklmnop`;
  const out = redact(text, [key]);
  assert.ok(!out.includes(key));
  assert.ok(!out.includes('abc123def'));
  assert.ok(!out.includes('eyJhbGciOi'));
  assert.ok(!out.includes('abcdefghijklmnop'));
  assert.match(out, /token=\*\*\*&x=1/);
});

test('toUserMessage gives one secret-free line for any thrown value', () => {
  assert.equal(toUserMessage(new Error('boom k3y-value'), ['k3y-value']), 'boom ***');
  assert.equal(toUserMessage('plain'), 'plain');
  assert.equal(toUserMessage(undefined), 'Unknown error');
  assert.equal(toUserMessage(new PlatformError(401, 'unauthorized', 'GET', '/x', 'h:1')), 'The master key was rejected by h:1.');
  assert.equal(toUserMessage(new PlatformError(500, undefined, 'GET', '/x', 'h:1')), 'h:1 answered 500: internal server error');
});

test('cancellation is recognised from our error and from AbortError', () => {
  assert.ok(isCancellation(new CancelledError()));
  const abort = new Error('aborted');
  abort.name = 'AbortError';
  assert.ok(isCancellation(abort));
  assert.ok(!isCancellation(new Error('x')));
});
