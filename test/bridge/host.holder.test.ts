/**
 * The host runtime's holder under a flood: when the bridge pauses a session (a client is behind),
 * the holder stops reading the PTY at once instead of filling its socket to the bridge. What the
 * terminal still has to show after a Ctrl+C is then the PTY's own small buffer, not the socket's
 * hundreds of KiB (that backlog is what delayed the prompt after Ctrl+C in the terminal tab).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLog } from '../../bridge/log';
import { HostRuntime } from '../../bridge/runtimes/host';
import type { SandboxSpec } from '../../bridge/runtimes/runtime';
import { BRIDGE_JS } from './harness';

const dir = mkdtempSync(join(tmpdir(), 'sa-holder-'));
const runtime = new HostRuntime({ stateDir: dir, bridgeScript: BRIDGE_JS }, createLog({ verbose: false, secrets: () => [] }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spec(command: string[]): SandboxSpec {
  return {
    sessionId: `holder-${Math.random().toString(16).slice(2)}`,
    agentId: 'a',
    bridgeId: 'b',
    harness: 'shell',
    command,
    env: { TERM: 'xterm-256color' },
    cols: 100,
    rows: 30,
    resources: { memoryMb: 512, cpus: 1, pids: 64 },
  };
}

describe('host holder: pause stops reading the PTY', { timeout: 120_000 }, () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('after pause, a Ctrl+C and resume, little is left ahead of the program\'s next output; the output then flows again', async () => {
    const backlogs: number[] = [];
    for (let round = 0; round < 3; round++) {
      // Ctrl+C ends `yes`; bash's trap (reset to default in its children) prints the marker and goes on.
      const proc = await runtime.start(spec(['/bin/bash', '-c', "trap 'echo; echo PROMPT-BACK' INT; yes; sleep 60"]));
      let received = 0;
      let tail = '';
      proc.onData((d) => {
        received += d.length;
        tail = (tail + d.toString('latin1')).slice(-64);
      });
      try {
        while (received < 256 * 1024) await sleep(10);
        proc.pause();
        await sleep(300);
        const atCtrlC = received;
        proc.write('\x03');
        await sleep(300);
        proc.resume();
        for (let i = 0; i < 3000 && !tail.includes('PROMPT-BACK'); i++) await sleep(10);
        assert.ok(tail.includes('PROMPT-BACK'), 'the program ran on after resume');
        backlogs.push(received - atCtrlC);
      } finally {
        await proc.destroy();
      }
    }
    // Without the holder pausing, the backlog is the socket's buffers: 130–220 KiB here every time.
    // With it, the PTY's buffer plus what was in flight when the pause arrived: 4–60 KiB (the least of three rounds: 4–8 KiB).
    assert.ok(Math.min(...backlogs) < 64 * 1024, `backlogs after Ctrl+C: ${backlogs.join(', ')} bytes`);
  });
});
