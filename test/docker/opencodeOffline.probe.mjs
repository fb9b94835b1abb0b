// Runs inside the opencode image (network "none", as uid 1001) for test/docker/images.test.ts:
// starts fake OpenAI-compatible and Anthropic model servers and a recording proxy on loopback, points
// opencode at them the way init does, runs `opencode serve`, sends one message through each provider
// package, waits a little more, and prints one JSON line: the replies and every destination opencode
// tried to reach through the proxy (in a real sandbox the proxy is the bridge, the only way out).
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

const home = process.env.HOME;
const proxied = [];
const requests = [];

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

// Every way out of the sandbox goes through here; nothing is let through.
const proxy = http.createServer((req, res) => {
  proxied.push(`${req.method} ${req.url}`);
  res.writeHead(502).end();
});
proxy.on('connect', (req, socket) => {
  socket.on('error', () => undefined);
  proxied.push(`CONNECT ${req.url}`);
  socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
});
proxy.on('clientError', (_e, socket) => socket.destroy());
const proxyPort = await listen(proxy);

const sse = (res, events) => {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const [event, data] of events) res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  res.end();
};

const models = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url.endsWith('/chat/completions')) {
      const chunk = (delta, extra = {}) => ({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gw-model', choices: [{ index: 0, delta, ...extra }] });
      return sse(res, [
        ['', chunk({ role: 'assistant', content: 'hello from the fake ' })],
        ['', chunk({ content: 'OpenAI-compatible server' })],
        ['', { ...chunk({}, { finish_reason: 'stop' }), usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } }],
        ['', '[DONE]'],
      ]);
    }
    if (req.url.includes('/v1/messages')) {
      const usage = { input_tokens: 3, output_tokens: 5 };
      return sse(res, [
        ['message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-fake', content: [], stop_reason: null, usage } }],
        ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
        ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'hello from the fake ' } }],
        ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Anthropic server' } }],
        ['content_block_stop', { type: 'content_block_stop', index: 0 }],
        ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 5 } }],
        ['message_stop', { type: 'message_stop' }],
      ]);
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
  });
});
const modelPort = await listen(models);

const configDir = join(home, '.config', 'opencode');
mkdirSync(configDir, { recursive: true });
writeFileSync(
  join(configDir, 'opencode.json'),
  JSON.stringify({
    $schema: 'https://opencode.ai/config.json',
    autoupdate: false,
    share: 'disabled',
    model: 'gateway/gw-model',
    provider: {
      gateway: {
        npm: '@ai-sdk/openai-compatible',
        name: 'gateway (OpenAI-compatible)',
        options: { baseURL: `http://127.0.0.1:${modelPort}/v1`, apiKey: 'stub' },
        models: { 'gw-model': { name: 'gw-model' } },
      },
      claude: {
        npm: '@ai-sdk/anthropic',
        name: 'gateway (Anthropic)',
        options: { baseURL: `http://127.0.0.1:${modelPort}/v1`, apiKey: 'stub' },
        models: { 'claude-fake': { name: 'claude-fake' } },
      },
    },
  }),
);

const proxyUrl = `http://127.0.0.1:${proxyPort}`;
const serverPort = 4096;
const child = spawn('opencode', ['serve', '--hostname', '127.0.0.1', '--port', String(serverPort)], {
  cwd: '/work/repo',
  env: {
    ...process.env,
    HTTP_PROXY: proxyUrl,
    HTTPS_PROXY: proxyUrl,
    http_proxy: proxyUrl,
    https_proxy: proxyUrl,
    NO_PROXY: 'localhost,127.0.0.1,::1',
    no_proxy: 'localhost,127.0.0.1,::1',
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let output = '';
child.stdout.on('data', (d) => (output += d));
child.stderr.on('data', (d) => (output += d));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function call(method, path, body, timeoutMs = 60_000) {
  const res = await fetch(`http://127.0.0.1:${serverPort}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

const result = { proxied, requests, replies: {}, providers: [], configDir: [], cacheDir: [], error: undefined };
const t0 = Date.now();
try {
  for (let i = 0; !output.includes('listening'); i++) {
    if (child.exitCode !== null) throw new Error(`opencode serve exited ${child.exitCode}: ${output}`);
    if (i > 600) throw new Error(`opencode serve did not listen in 60 s: ${output}`);
    await sleep(100);
  }
  result.listeningMs = Date.now() - t0;
  // A request that arrives in the very moment the server starts listening can stay unanswered
  // (seen with 1.18.33): ask again with a short timeout until it answers.
  let providers;
  for (let attempt = 0; !providers; attempt++) {
    try {
      providers = await call('GET', '/provider', undefined, 10_000);
    } catch (e) {
      if (attempt >= 5) throw e;
    }
  }
  result.providers = (providers.all ?? []).map((p) => p.id).filter((id) => id === 'gateway' || id === 'claude');
  for (const [providerID, modelID] of [
    ['gateway', 'gw-model'],
    ['claude', 'claude-fake'],
  ]) {
    const session = await call('POST', '/session', {});
    const reply = await call('POST', `/session/${session.id}/message`, { parts: [{ type: 'text', text: 'say hello' }], model: { providerID, modelID } });
    result.replies[providerID] = (reply.parts ?? [])
      .filter((p) => p.type === 'text')
      .map((p) => p.text)
      .join('');
  }
  // opencode starts its own installs in the background shortly after its first request: give them time.
  await sleep(Number(process.env.PROBE_LINGER_MS ?? 6000));
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  result.output = output.slice(-4000);
} finally {
  child.kill('SIGTERM');
  const ls = (d) => {
    try {
      return readdirSync(d).sort();
    } catch {
      return [];
    }
  };
  result.configDir = ls(configDir);
  result.cacheDir = ls(join(home, '.cache', 'opencode'));
  result.cacheBin = ls(join(home, '.cache', 'opencode', 'bin'));
  await sleep(300);
  process.stdout.write(`PROBE-RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
}
