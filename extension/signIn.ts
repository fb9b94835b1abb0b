/**
 * Sign in to an agent platform: URL (validated, prefilled from settings) → master key (password
 * input) → verified with `GET /agents?limit=1` before anything is saved → URL to settings, key to
 * SecretStorage. Sign out forgets the key.
 */
import * as vscode from 'vscode';
import type { BackendRegistry } from './backends';
import { ActionableError, type Notifier } from './commands';
import { setting, updateSetting } from './config';
import { CancelledError, InvalidInputError, PlatformError } from './errors';
import type { Logger } from './logger';
import { tagged } from './logger';
import { MultiStepInput } from './multiStepInput';
import { PlatformClient, normalizeBaseUrl } from './platformClient';
import type { Secrets } from './secrets';

/** Programmatic sign-in (automation, tests): both values given, nothing asked. */
export interface SignInArgs {
  url: string;
  masterKey: string;
}

export class SignInFlow {
  constructor(
    private readonly secrets: Secrets,
    private readonly backends: BackendRegistry,
    private readonly notifier: Notifier,
    private readonly log: Logger,
  ) {}

  async signIn(args?: Partial<SignInArgs>): Promise<boolean> {
    const interactive = !(args?.url && args?.masterKey);
    const state = { url: args?.url ?? setting('platform.url') ?? '', key: args?.masterKey ?? '' };
    if (interactive) {
      await MultiStepInput.run<typeof state>(async (input, s) => {
        s.url = await input.input({
          title: 'Sign In to Agent Platform',
          step: 1,
          totalSteps: 2,
          value: s.url,
          prompt: 'The URL of your LiteLLM Agent Platform',
          placeholder: 'https://agents.example.com',
          validate: (v) => validationMessage(v),
        });
        return async (input2, s2) => {
          s2.key = await input2.input({
            title: 'Sign In to Agent Platform',
            step: 2,
            totalSteps: 2,
            value: '',
            prompt: `The master key for ${safeHost(s2.url)} (kept in VS Code's secret storage)`,
            password: true,
            validate: (v) => (v.trim() ? undefined : 'Enter the master key'),
          });
          return undefined;
        };
      }, state);
    }
    let baseUrl: string;
    try {
      baseUrl = normalizeBaseUrl(state.url);
    } catch (err) {
      throw new InvalidInputError((err as Error).message);
    }
    const masterKey = state.key.trim();
    if (!masterKey) throw new InvalidInputError('The master key is empty');

    const client = new PlatformClient({ baseUrl, apiKey: masterKey, log: tagged(this.log, 'sign-in'), retries: 0 });
    try {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Checking ${client.host}…`, cancellable: true },
        async (_p, token) => {
          const abort = new AbortController();
          const sub = token.onCancellationRequested(() => abort.abort());
          try {
            await client.listAgents({ limit: 1 }, { signal: abort.signal });
          } finally {
            sub.dispose();
          }
        },
      );
    } catch (err) {
      if (err instanceof CancelledError) throw err;
      const again = { title: 'Try Again', run: () => vscode.commands.executeCommand('sandboxAgents.signIn') };
      const message = err instanceof PlatformError && err.status === 401 ? err.message : err instanceof Error ? err.message : String(err);
      throw new ActionableError(message, interactive ? [again] : []);
    }
    await this.secrets.setPlatformKey(baseUrl, masterKey);
    await updateSetting('platform.url', baseUrl);
    await this.backends.reload();
    this.log.info(`signed in to ${client.host}`);
    this.notifier.show('info', `Signed in to ${client.host}.`);
    return true;
  }

  async signOut(): Promise<void> {
    const raw = setting('platform.url');
    if (!raw) {
      this.notifier.show('info', 'Not signed in to an agent platform.');
      return;
    }
    const baseUrl = normalizeBaseUrl(raw);
    await this.secrets.deletePlatformKey(baseUrl);
    await this.backends.reload();
    this.log.info(`signed out of ${safeHost(baseUrl)}`);
    this.notifier.show('info', `Signed out of ${safeHost(baseUrl)}. The master key was removed from secret storage.`);
  }
}

function validationMessage(value: string): string | undefined {
  try {
    normalizeBaseUrl(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
