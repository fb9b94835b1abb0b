import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanPhase, parseTime, pollDelays, relativeAge, sessionDetails } from './sessionInfo';

test('polling starts at 250 ms and backs off to 2 s', () => {
  const it = pollDelays();
  const first = Array.from({ length: 8 }, () => it.next().value!);
  assert.equal(first[0], 250);
  assert.ok(first.every((d, i) => i === 0 || d >= first[i - 1]));
  assert.equal(first.at(-1), 2000);
});

test('phases read as words, with their detail', () => {
  assert.equal(humanPhase({ status: 'creating', phase: 'pod_pending', phase_detail: 'pulling image' }), 'Pod pending: pulling image');
  assert.equal(humanPhase({ status: 'creating', phase: null }), 'creating');
});

test('times: ISO strings, epoch seconds and epoch milliseconds', () => {
  const ms = Date.UTC(2026, 5, 1, 10, 0, 0);
  assert.equal(parseTime('2026-06-01T10:00:00Z'), ms);
  assert.equal(parseTime(ms / 1000), ms);
  assert.equal(parseTime(ms), ms);
  assert.equal(parseTime(String(ms / 1000)), ms);
  assert.equal(parseTime('not a time'), undefined);
  assert.equal(parseTime(null), undefined);
});

test('ages are short', () => {
  const now = 1_000_000_000;
  assert.equal(relativeAge(now - 5_000, now), '5s');
  assert.equal(relativeAge(now - 5 * 60_000, now), '5m');
  assert.equal(relativeAge(now - 3 * 3600_000, now), '3h');
  assert.equal(relativeAge(now - 2 * 86400_000, now), '2d');
  assert.equal(relativeAge(undefined, now), '');
});

test('details name everything a person needs to report a failed session', () => {
  const text = sessionDetails('Platform — h', { id: 's1', agent_id: 'a1', status: 'failed', phase: 'pod_pending', phase_detail: 'x', failure_reason: 'ImagePullBackOff', created_at: '2026-06-01T10:00:00Z' });
  for (const s of ['s1', 'a1', 'failed', 'pod_pending', 'ImagePullBackOff', 'Platform — h', 'Created:']) assert.ok(text.includes(s), s);
});
