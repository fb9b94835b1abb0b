/**
 * The platform contract against the in-memory test server (test/fixtures/platformServer.ts).
 * Run: node --import tsx --test test/contract/platformServer.contract.test.ts
 */
import { startPlatformTestServer } from '../fixtures/platformServer';
import { platformContract } from './platformContract';

platformContract('in-memory platform test server', () => startPlatformTestServer({ phaseDelayMs: 20 }), {
  harnesses: ['opencode', 'claude-agent-sdk', 'claude-code', 'codex'],
  pollIntervalMs: 5,
});
