import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InitConfig } from '../../protocol/sandbox';
import { planLaunch, type LaunchContext } from './launch';

function ctx(harness: string, over: Partial<InitConfig> = {}): LaunchContext {
  const config: InitConfig = {
    version: 1,
    session_id: 's1',
    harness,
    model: 'm-1',
    prompt: 'Be brief.',
    workdir: '/work/repo',
    home: '/home/sandbox',
    workspace: { mode: 'none' },
    egress_socket: '/run/sandbox/egress.sock',
    proxy_port: 3128,
    ingress_socket: '/run/sandbox-in/ingress.sock',
    harness_port: 4096,
    credentials: { anthropic: 'stub_anthropic_0123abcd', openai: 'stub_openai_89abcdef' },
    shell_command: ['/bin/bash', '-l'],
    env: { EXTRA: '1' },
    bin_dirs: [],
    programs_dir: '/opt/sandbox-agents',
    sdk_node_path: '/opt/claude-agent-sdk/node_modules',
    ...over,
  };
  return { config, home: config.home, proxyPort: 3128, harnessPort: 4096, nodePath: '/usr/bin/node' };
}

const file = (l: ReturnType<typeof planLaunch>, suffix: string) => l.files.find((f) => f.path.endsWith(suffix))?.content ?? '';

describe('planLaunch', () => {
  it('with the bridge CA, every harness trusts it (bundle for OpenSSL, curl, git, Python; the CA alone for Node) and holds the agent\'s secrets as stubs', () => {
    for (const h of ['shell', 'claude-code', 'codex', 'opencode', 'claude-agent-sdk']) {
      const c = ctx(h, { env: { MY_TOKEN: 'stub_MY_TOKEN_0a1b2c3d' }, ca_file: '/run/sandbox/ca.pem' });
      const l = planLaunch({ ...c, ca: { file: '/run/sandbox/ca.pem', bundle: '/tmp/sandbox-agents-ca-s1.pem' } });
      assert.equal(l.env.SSL_CERT_FILE, '/tmp/sandbox-agents-ca-s1.pem');
      assert.equal(l.env.GIT_SSL_CAINFO, '/tmp/sandbox-agents-ca-s1.pem');
      assert.equal(l.env.REQUESTS_CA_BUNDLE, '/tmp/sandbox-agents-ca-s1.pem');
      assert.equal(l.env.CURL_CA_BUNDLE, '/tmp/sandbox-agents-ca-s1.pem');
      assert.equal(l.env.NODE_EXTRA_CA_CERTS, '/run/sandbox/ca.pem');
      assert.equal(l.env.MY_TOKEN, 'stub_MY_TOKEN_0a1b2c3d');
    }
    assert.equal(planLaunch(ctx('shell')).env.SSL_CERT_FILE, undefined);
  });

  it('every harness gets the proxies, loopback direct, and the extra env', () => {
    for (const h of ['shell', 'claude-code', 'codex', 'opencode', 'claude-agent-sdk']) {
      const l = planLaunch(ctx(h));
      assert.equal(l.env.HTTPS_PROXY, 'http://127.0.0.1:3128');
      assert.equal(l.env.http_proxy, 'http://127.0.0.1:3128');
      assert.match(l.env.NO_PROXY, /127\.0\.0\.1/);
      assert.equal(l.env.EXTRA, '1');
      assert.equal(l.env.HOME, '/home/sandbox');
    }
  });

  it('Claude Code: gateway URL, stub key, no first-run prompts, the prompt appended', () => {
    const l = planLaunch(ctx('claude-code'));
    assert.equal(l.kind, 'terminal');
    assert.equal(l.command, 'claude');
    assert.deepEqual(l.args, ['--model', 'm-1', '--append-system-prompt', 'Be brief.']);
    assert.equal(l.env.ANTHROPIC_BASE_URL, 'http://127.0.0.1:3128/anthropic');
    assert.equal(l.env.ANTHROPIC_API_KEY, 'stub_anthropic_0123abcd');
    const seeded = JSON.parse(file(l, '/.claude.json')) as Record<string, any>;
    assert.equal(seeded.hasCompletedOnboarding, true);
    assert.deepEqual(seeded.customApiKeyResponses.approved, ['stub_anthropic_0123abcd'.slice(-20)]);
    assert.equal(seeded.projects['/work/repo'].hasTrustDialogAccepted, true);
  });

  it('Codex: a custom provider on the gateway (responses API), the stub in auth.json, instructions file, trusted folder', () => {
    const l = planLaunch(ctx('codex'));
    const toml = file(l, '/.codex/config.toml');
    assert.match(toml, /^model = "m-1"$/m);
    assert.match(toml, /^base_url = "http:\/\/127\.0\.0\.1:3128\/openai\/v1"$/m);
    assert.match(toml, /^wire_api = "responses"$/m);
    assert.match(toml, /^\[projects\."\/work\/repo"\]\ntrust_level = "trusted"$/m);
    assert.deepEqual(JSON.parse(file(l, '/.codex/auth.json')), { OPENAI_API_KEY: 'stub_openai_89abcdef' });
    assert.equal(file(l, '/.codex/AGENTS.md'), 'Be brief.\n');
    assert.equal(l.env.CODEX_HOME, '/home/sandbox/.codex');
  });

  it('opencode: a server on the harness port, an OpenAI-compatible provider (Anthropic for claude models)', () => {
    const l = planLaunch(ctx('opencode', { model: 'gpt-5' }));
    assert.equal(l.kind, 'server');
    assert.deepEqual(l.args, ['serve', '--hostname', '127.0.0.1', '--port', '4096']);
    const cfg = JSON.parse(file(l, '/opencode/opencode.json')) as Record<string, any>;
    assert.equal(cfg.model, 'sandbox/gpt-5');
    assert.equal(cfg.provider.sandbox.npm, '@ai-sdk/openai-compatible');
    assert.equal(cfg.provider.sandbox.options.baseURL, 'http://127.0.0.1:3128/openai/v1');
    assert.equal(cfg.provider.sandbox.options.apiKey, 'stub_openai_89abcdef');
    const claude = JSON.parse(file(planLaunch(ctx('opencode', { model: 'anthropic/claude-sonnet-4-5' })), '/opencode/opencode.json')) as Record<string, any>;
    assert.equal(claude.provider.sandbox.npm, '@ai-sdk/anthropic');
    assert.equal(claude.provider.sandbox.options.baseURL, 'http://127.0.0.1:3128/anthropic/v1');
    assert.equal(claude.model, 'sandbox/claude-sonnet-4-5');
  });

  it('claude-agent-sdk: our server on node, with model, prompt, workdir and the SDK path', () => {
    const l = planLaunch(ctx('claude-agent-sdk'));
    assert.equal(l.kind, 'server');
    assert.equal(l.command, '/usr/bin/node');
    assert.deepEqual(l.args, ['/opt/sandbox-agents/claude-agent-sdk-server.js']);
    assert.equal(l.env.PORT, '4096');
    assert.equal(l.env.SANDBOX_AGENTS_MODEL, 'm-1');
    assert.equal(l.env.NODE_PATH, '/opt/claude-agent-sdk/node_modules');
    assert.equal(l.env.ANTHROPIC_API_KEY, 'stub_anthropic_0123abcd');
  });

  it('shell runs the configured program; an unknown harness is an error', () => {
    const l = planLaunch(ctx('shell', { shell_command: ['/bin/sh', '-c', 'exec bash'] }));
    assert.equal(l.command, '/bin/sh');
    assert.deepEqual(l.args, ['-c', 'exec bash']);
    assert.throws(() => planLaunch(ctx('gemini')), /unknown harness "gemini"/);
  });
});
