/**
 * The model gateway (bridge/sandboxNet.ts) on a streamed model response: first-byte latency and
 * throughput through the session's egress socket (stub → real key, streamed both ways) versus the
 * same request straight to the upstream, in the same run.
 *
 *   node --import tsx bench/gateway.bench.ts
 *
 * The upstream is a local HTTP server answering `POST /v1/messages` with Anthropic's SSE wire format
 * (message_start, content_block_delta × N, message_stop), written as fast as the socket takes it.
 * "First byte" = request sent → first body byte (the message_start event) received; the upstream
 * answers at once, so it is the path's own cost. Throughput = a long reply (N deltas of 1 KiB text)
 * read to the end. The upstream, the gateway and the client each run in their own process (as the
 * model API, the bridge and the sandbox do), so none takes CPU from another's event loop.
 * Prints a Markdown section for BENCHMARKS.md; it reports, never fails.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once as onceEvent } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLog } from '../bridge/log';
import { Providers, SandboxNet } from '../bridge/sandboxNet';

const REAL_KEY = 'sk-ant-bench-real-key-0123456789';
const STUB = 'stub_anthropic_0badc0de';
const FIRST_BYTE_ROUNDS = Number(process.env.ROUNDS ?? 200);
const STREAM_ROUNDS = Number(process.env.STREAM_ROUNDS ?? 5);
const STREAM_MIB = Number(process.env.STREAM_MIB ?? 64);

const log = (msg: string) => process.stderr.write(`[gateway.bench] ${msg}\n`);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
const median = (xs: number[]) => pct(xs, 50);

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Anthropic's streaming shape; `deltas` events of `size` characters each. */
function upstream(): Promise<http.Server> {
  const chunkText = 'x'.repeat(1024);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.headers['x-api-key'] !== REAL_KEY) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }));
        return;
      }
      const deltas = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('deltas') ?? 1);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(sse('message_start', { type: 'message_start', message: { id: 'msg_bench', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, usage: { input_tokens: 1, output_tokens: 0 } } }));
      res.write(sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
      const delta = sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: chunkText } });
      let i = 0;
      const pump = () => {
        while (i < deltas) {
          i++;
          if (!res.write(delta)) return void res.once('drain', pump);
        }
        res.write(sse('content_block_stop', { type: 'content_block_stop', index: 0 }));
        res.write(sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: deltas } }));
        res.end(sse('message_stop', { type: 'message_stop' }));
      };
      pump();
    });
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

interface Target {
  name: string;
  options: (path: string) => http.RequestOptions;
}

/** One request; resolves with ms to the first body byte, ms to the end, and bytes received. */
function once(t: Target, deltas: number): Promise<{ first: number; total: number; bytes: number }> {
  const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1024, stream: true, messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = 0;
    let bytes = 0;
    const req = http.request({ ...t.options(`/v1/messages?deltas=${deltas}`), method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'content-length': Buffer.byteLength(body), ...t.options('').headers } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${t.name}: HTTP ${res.statusCode}`));
      res.on('data', (c: Buffer) => {
        if (!first) first = performance.now() - t0;
        bytes += c.length;
      });
      res.on('end', () => resolve({ first, total: performance.now() - t0, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs this file in a child process in `role`; resolves with the child and what it reported ready. */
async function child(role: string, ...args: string[]): Promise<{ proc: ChildProcess; ready: string }> {
  const proc = fork(__filename, [role, ...args], { execArgv: process.execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const [ready] = (await onceEvent(proc, 'message')) as [string];
  return { proc, ready };
}

async function main(): Promise<void> {
  const up = await child('upstream');
  const port = Number(up.ready);
  const dir = mkdtempSync(join(tmpdir(), 'sa-gateway-bench-'));
  const socketPath = join(dir, 'egress.sock');
  const gw = await child('gateway', String(port), socketPath);
  const targets: Target[] = [
    { name: 'straight to the upstream', options: (path) => ({ host: '127.0.0.1', port, path, headers: { 'x-api-key': REAL_KEY } }) },
    { name: 'through the gateway (stub → key)', options: (path) => ({ socketPath, path: `/anthropic${path}`, headers: { 'x-api-key': STUB } }) },
  ];
  try {
    // Warm both paths.
    for (const t of targets) for (let i = 0; i < 20; i++) await once(t, 4);
    const first: Record<string, number[]> = {};
    const rate: Record<string, number[]> = {};
    // Interleaved so load changes hit both paths alike.
    for (let i = 0; i < FIRST_BYTE_ROUNDS; i++) for (const t of targets) (first[t.name] ??= []).push((await once(t, 4)).first);
    log(`first byte: ${FIRST_BYTE_ROUNDS} rounds done`);
    const deltas = STREAM_MIB * 1024;
    for (let i = 0; i < STREAM_ROUNDS; i++) {
      for (const t of targets) {
        const r = await once(t, deltas);
        (rate[t.name] ??= []).push(r.bytes / 1024 / 1024 / (r.total / 1000));
      }
    }
    log(`throughput: ${STREAM_ROUNDS} rounds of ${STREAM_MIB} MiB done`);
    const base = targets[0].name;
    const lines = [
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load ${loadavg()[0].toFixed(2)} at the end; ${FIRST_BYTE_ROUNDS} first-byte rounds, ${STREAM_ROUNDS} × ${STREAM_MIB} MiB streams, interleaved.`,
      '',
      '| path | first byte p50 | p99 | stream throughput (median) | vs straight |',
      '|---|---|---|---|---|',
      ...targets.map((t) => `| ${t.name} | ${median(first[t.name]).toFixed(2)} ms | ${pct(first[t.name], 99).toFixed(2)} ms | ${median(rate[t.name]).toFixed(0)} MiB/s | ${t.name === base ? '—' : `+${(median(first[t.name]) - median(first[base])).toFixed(2)} ms, ${((100 * median(rate[t.name])) / median(rate[base])).toFixed(0)}%`} |`),
    ];
    console.log(lines.join('\n'));
  } finally {
    gw.proc.kill();
    up.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'upstream') {
  void upstream().then((server) => process.send!(String((server.address() as AddressInfo).port)));
} else if (role === 'gateway') {
  const providers = new Providers();
  providers.set('anthropic', { base_url: `http://127.0.0.1:${rest[0]}`, api_key: REAL_KEY });
  const gateway = new SandboxNet({ socketPath: rest[1], label: 'bench', stubs: { anthropic: STUB }, providers, allowOut: [], denyOut: [], onPhase: () => undefined, log: createLog({ verbose: false, secrets: () => [REAL_KEY] }) });
  void gateway.listen().then(() => process.send!('ready'));
} else {
  void main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
