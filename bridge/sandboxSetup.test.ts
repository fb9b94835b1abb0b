import assert from 'node:assert/strict';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { layout } from './sandboxSetup';

test('session sockets stay in the session folder, unless a deep state dir would make their paths too long for a unix socket', () => {
  const short = layout('/s/sessions/0e8f2b1c-68b1-4254-a01f-701f195d97b1');
  assert.equal(short.egressSocket, '/s/sessions/0e8f2b1c-68b1-4254-a01f-701f195d97b1/egress/egress.sock');
  assert.equal(short.configFile, '/s/sessions/0e8f2b1c-68b1-4254-a01f-701f195d97b1/egress/init.json');
  const deepDir = join('/home/someone-with-a-long-name/.local/state/sandbox-agents/docker/sessions', '0e8f2b1c-68b1-4254-a01f-701f195d97b1');
  const deep = layout(deepDir);
  assert.equal(deep.dir, deepDir, 'the session folder itself does not move');
  for (const p of [deep.egressSocket, deep.ingressSocket]) assert.ok(p.length <= 100, `${p} (${p.length} bytes)`);
  assert.match(deep.egressSocket, /sa-s-[^/]+\/0e8f2b1c68b14254\/egress\/egress\.sock$/);
  const root = join(deep.egressDir, '..', '..');
  assert.equal(lstatSync(root).mode & 0o777, 0o700, 'the short folder is private');
});
