/**
 * Session start → `ready` per harness with a warm image, against a plain `docker run` of the same
 * image in the same run (the cost of a container alone).
 *
 *   node esbuild.config.mjs && node --import tsx bench/harness-start.bench.ts
 *
 * Uses an isolated test dockerd and the harness images built from harness-containers/ with the
 * offline local node base (as the docker test tier does; built once and cached). "Session start" is
 * `POST /agents/{id}/session` to the first `GET /sessions/{id}` answering `ready`, polled every 20 ms:
 * container create + start + init (forwarder, seeding) + the harness up (TUI spawned, or API server
 * listening). "docker run" is `docker run --rm --network none <image> true` through the CLI: create,
 * start, exit, remove. Prints a Markdown section for BENCHMARKS.md; it reports, never fails.
 */
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { NODE_BASE_IMAGE, sharedTestDockerd } from '../test/docker/dockerd';
import { ensureHarnessImages, type ImageName } from '../test/docker/harnessImages';
import { startFakeAnthropic } from '../test/fixtures/fakeAnthropic';
import { startFakeOpenAI } from '../test/fixtures/fakeOpenAI';
import { removeStateDir, setProvider, startBridge, type RunningBridge } from '../test/bridge/harness';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
/** `program`: the harness's own program started once in a plain container (its load time). */
const HARNESSES: { id: ImageName; model: string; program: string[] }[] = [
  { id: 'shell', model: 'none', program: ['bash', '-lc', 'true'] },
  { id: 'claude-code', model: 'claude-sonnet-4-5', program: ['claude', '--version'] },
  { id: 'codex', model: 'gpt-5-codex', program: ['codex', '--version'] },
  { id: 'opencode', model: 'gpt-5', program: ['opencode', '--version'] },
  { id: 'claude-agent-sdk', model: 'claude-sonnet-4-5', program: ['node', '-e', "require('/opt/claude-agent-sdk/node_modules/@anthropic-ai/claude-agent-sdk')"] },
];

const log = (msg: string) => process.stderr.write(`[harness-start.bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs: number[]) => `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;

function dockerRun(host: string, image: string, command: string[] = ['true']): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn('docker', ['-H', host, 'run', '--rm', '--network', 'none', image, ...command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`docker run ${image}: ${err.trim()}`))));
  });
}

async function sessionStart(bridge: RunningBridge, agentId: string): Promise<number> {
  const t0 = performance.now();
  const created = await bridge.client.createSession(agentId, { title: 'bench' });
  for (;;) {
    const s = await bridge.client.getSession(created.id);
    if (s.status === 'ready') {
      const ms = performance.now() - t0;
      await bridge.client.deleteSession(s.id);
      return ms;
    }
    if (s.status !== 'creating') throw new Error(`session ${s.id} ${s.status}: ${s.failure_reason}`);
    await sleep(20);
  }
}

async function main(): Promise<void> {
  const daemon = await sharedTestDockerd();
  const anthropic = await startFakeAnthropic();
  const openai = await startFakeOpenAI();
  let bridge: RunningBridge | undefined;
  try {
    const { refs } = await ensureHarnessImages(daemon.host, (p) => log(`${p.image}: ${p.step ?? p.line}`));
    bridge = await startBridge({ runtime: 'docker', dockerHost: daemon.host, extraArgs: ['--base-image', NODE_BASE_IMAGE, '--build-network', 'host'] });
    for (const [p, url] of [['anthropic', anthropic.url], ['openai', openai.url]] as const) {
      await setProvider(bridge, p, { base_url: url, api_key: 'bench-key' });
    }
    const rows: string[] = [];
    for (const h of HARNESSES) {
      const agent = await bridge.client.createAgent({ name: `bench-${h.id}`, model: h.model, harness_id: h.id });
      // Warm-up: the first start also checks the image and the page cache.
      await sessionStart(bridge, agent.id);
      await dockerRun(daemon.host, refs[h.id]);
      const starts: number[] = [];
      const runs: number[] = [];
      const programs: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        // Rotate which goes first, so none always runs on a warmer machine.
        const steps = [
          async () => starts.push(await sessionStart(bridge!, agent.id)),
          async () => runs.push(await dockerRun(daemon.host, refs[h.id])),
          async () => programs.push(await dockerRun(daemon.host, refs[h.id], h.program)),
        ];
        for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]();
      }
      log(`${h.id}: session ${starts.map((x) => x.toFixed(0)).join(', ')} ms; docker run ${runs.map((x) => x.toFixed(0)).join(', ')} ms; program ${programs.map((x) => x.toFixed(0)).join(', ')} ms`);
      rows.push(`| ${h.id} | ${fmt(starts)} | ${fmt(runs)} | +${(median(starts) - median(runs)).toFixed(0)} ms | \`${h.program.join(' ').slice(0, 40)}\`: ${fmt(programs)} |`);
    }
    const cpu = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? '?';
    console.log(`## Session start with a warm image (\`node --import tsx bench/harness-start.bench.ts\`)

Machine: ${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}. Median (min–max) of ${ROUNDS} rounds per harness, the two measures alternating.

| harness | session start → \`ready\` (bridge) | \`docker run --rm --network none <image> true\` (baseline) | difference | the harness's program alone in \`docker run\` |
|---|---|---|---|---|
${rows.join('\n')}
`);
  } finally {
    if (bridge) {
      await bridge.stop();
      removeStateDir(bridge.stateDir);
    }
    await anthropic.close();
    await openai.close();
    await daemon.release();
  }
}

void main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
