/**
 * What init runs for each harness, and the files it seeds so each CLI starts straight into work:
 * no onboarding, no folder-trust or API-key prompt, no update check, its model API pointed at the
 * bridge's model gateway (through the loopback forwarder) with a stub key. Pure: the caller writes
 * the files and spawns the program.
 */
import { join } from 'node:path';
import { GATEWAY_ROUTES, providerFor, type InitConfig } from '../../protocol/sandbox';

export interface SeedFile {
  path: string;
  content: string;
  mode?: number;
}

export interface Launch {
  /** `terminal`: runs on the sandbox's TTY; `server`: an API harness listening on `port`. */
  kind: 'terminal' | 'server';
  command: string;
  args: string[];
  env: Record<string, string>;
  files: SeedFile[];
  /** The CLI init looks for (to say precisely what is missing). */
  binary: string;
}

export interface LaunchContext {
  config: InitConfig;
  home: string;
  proxyPort: number;
  /** API harnesses: the port the server must listen on. */
  harnessPort: number;
  /** The node that runs init (and the claude-agent-sdk server). */
  nodePath: string;
  /** The bridge's CA certificate and the bundle init built from it (system CAs + ours). */
  ca?: { file: string; bundle: string };
}

/** Where Debian-like images and hosts keep the system CAs. */
export const SYSTEM_CA_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/** The environment that makes TLS clients (OpenSSL, curl, git, Node, Python requests) trust the bridge's CA. */
export function caEnv(ca: { file: string; bundle: string }): Record<string, string> {
  return { SSL_CERT_FILE: ca.bundle, CURL_CA_BUNDLE: ca.bundle, GIT_SSL_CAINFO: ca.bundle, REQUESTS_CA_BUNDLE: ca.bundle, NODE_EXTRA_CA_CERTS: ca.file };
}

export function gatewayUrl(proxyPort: number, provider: keyof typeof GATEWAY_ROUTES): string {
  return `http://127.0.0.1:${proxyPort}${GATEWAY_ROUTES[provider]}`;
}

/** Environment every harness gets: proxies toward the bridge, loopback direct, no telemetry. */
export function baseEnv(ctx: LaunchContext): Record<string, string> {
  const proxy = `http://127.0.0.1:${ctx.proxyPort}`;
  return {
    HOME: ctx.home,
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    NO_PROXY: 'localhost,127.0.0.1,::1',
    no_proxy: 'localhost,127.0.0.1,::1',
    GIT_TERMINAL_PROMPT: '0',
    DO_NOT_TRACK: '1',
    ...(ctx.ca ? caEnv(ctx.ca) : {}),
    ...ctx.config.env,
  };
}

export function planLaunch(ctx: LaunchContext): Launch {
  const { config, home } = ctx;
  const provider = providerFor(config.harness, config.model);
  const stub = config.credentials[provider] ?? '';
  const env = baseEnv(ctx);
  switch (config.harness) {
    case 'shell': {
      const [command, ...args] = config.shell_command.length ? config.shell_command : ['/bin/bash', '-l'];
      return { kind: 'terminal', command, args, env, files: [], binary: command };
    }
    case 'claude-code': {
      const claudeJson = {
        hasCompletedOnboarding: true,
        theme: 'dark',
        autoUpdates: false,
        // Claude Code asks once whether to use an API key from the environment; it remembers the answer
        // by the key's last 20 characters.
        customApiKeyResponses: { approved: [stub.slice(-20)], rejected: [] },
        projects: { [config.workdir]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true } },
      };
      const args = ['--model', config.model];
      if (config.prompt) args.push('--append-system-prompt', config.prompt);
      return {
        kind: 'terminal',
        command: 'claude',
        args,
        env: {
          ...env,
          ANTHROPIC_BASE_URL: gatewayUrl(ctx.proxyPort, 'anthropic'),
          ANTHROPIC_API_KEY: stub,
          DISABLE_AUTOUPDATER: '1',
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        },
        files: [{ path: join(home, '.claude.json'), content: JSON.stringify(claudeJson, null, 2), mode: 0o600 }],
        binary: 'claude',
      };
    }
    case 'codex': {
      const codexHome = join(home, '.codex');
      const toml = [
        `model = ${tomlString(config.model)}`,
        'model_provider = "sandbox"',
        'check_for_update_on_startup = false',
        '',
        '[model_providers.sandbox]',
        'name = "Sandbox Agents gateway"',
        `base_url = ${tomlString(`${gatewayUrl(ctx.proxyPort, 'openai')}/v1`)}`,
        'env_key = "OPENAI_API_KEY"',
        'wire_api = "responses"',
        '',
        `[projects.${tomlString(config.workdir)}]`,
        'trust_level = "trusted"',
        '',
      ].join('\n');
      const files: SeedFile[] = [
        { path: join(codexHome, 'config.toml'), content: toml, mode: 0o600 },
        { path: join(codexHome, 'auth.json'), content: JSON.stringify({ OPENAI_API_KEY: stub }), mode: 0o600 },
      ];
      // Codex reads global instructions from $CODEX_HOME/AGENTS.md.
      if (config.prompt) files.push({ path: join(codexHome, 'AGENTS.md'), content: `${config.prompt}\n` });
      return { kind: 'terminal', command: 'codex', args: [], env: { ...env, CODEX_HOME: codexHome, OPENAI_API_KEY: stub }, files, binary: 'codex' };
    }
    case 'opencode': {
      const model = config.model.replace(/^(openai|anthropic)\//, '');
      const opencodeJson = {
        $schema: 'https://opencode.ai/config.json',
        autoupdate: false,
        share: 'disabled',
        model: `sandbox/${model}`,
        provider: {
          sandbox: {
            npm: provider === 'anthropic' ? '@ai-sdk/anthropic' : '@ai-sdk/openai-compatible',
            name: 'Sandbox Agents gateway',
            options: { baseURL: `${gatewayUrl(ctx.proxyPort, provider)}/v1`, apiKey: stub },
            models: { [model]: { name: model } },
          },
        },
      };
      const configDir = join(home, '.config', 'opencode');
      const files: SeedFile[] = [{ path: join(configDir, 'opencode.json'), content: JSON.stringify(opencodeJson, null, 2), mode: 0o600 }];
      // opencode's global rules file.
      if (config.prompt) files.push({ path: join(configDir, 'AGENTS.md'), content: `${config.prompt}\n` });
      return {
        kind: 'server',
        command: 'opencode',
        args: ['serve', '--hostname', '127.0.0.1', '--port', String(ctx.harnessPort)],
        // The sandbox cannot reach models.dev or download LSPs: don't try (and wait) at run time.
        env: { ...env, OPENCODE_DISABLE_AUTOUPDATE: '1', OPENCODE_DISABLE_MODELS_FETCH: '1', OPENCODE_DISABLE_LSP_DOWNLOAD: '1' },
        files,
        binary: 'opencode',
      };
    }
    case 'claude-agent-sdk': {
      const server = join(config.programs_dir, 'claude-agent-sdk-server.js');
      return {
        kind: 'server',
        command: ctx.nodePath,
        args: [server],
        env: {
          ...env,
          PORT: String(ctx.harnessPort),
          SANDBOX_AGENTS_MODEL: config.model,
          SANDBOX_AGENTS_PROMPT: config.prompt ?? '',
          SANDBOX_AGENTS_WORKDIR: config.workdir,
          ANTHROPIC_BASE_URL: gatewayUrl(ctx.proxyPort, 'anthropic'),
          ANTHROPIC_API_KEY: stub,
          DISABLE_AUTOUPDATER: '1',
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
          ...(config.sdk_node_path ? { NODE_PATH: config.sdk_node_path } : {}),
        },
        files: [],
        binary: server,
      };
    }
    default:
      throw new Error(`unknown harness "${config.harness}"`);
  }
}

function tomlString(s: string): string {
  return JSON.stringify(s);
}
