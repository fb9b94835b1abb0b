/**
 * The backends the extension talks to. Each is one PlatformClient: a remote agent platform the user
 * signed in to, and (with the bridge) the local one. Everything else works on `Backend`, never on
 * where it runs.
 */
import * as vscode from 'vscode';
import { HARNESSES, type HarnessInfo } from '../protocol/harnesses';
import { affects, setting } from './config';
import { Disposable } from './disposable';
import type { Logger } from './logger';
import { tagged } from './logger';
import { PlatformClient, normalizeBaseUrl } from './platformClient';
import type { Secrets } from './secrets';

export type BackendKind = 'platform' | 'local';

export interface Backend {
  /** Stable id used in tree ids and command arguments: `platform` or `local`. */
  readonly id: string;
  readonly kind: BackendKind;
  /** "Platform — agents.example.com", "Local — Docker" */
  readonly label: string;
  /** Valid once `ready()` resolved. */
  readonly client: PlatformClient;
  readonly harnesses: readonly HarnessInfo[];
  /** Values that must be stripped from anything shown or logged. */
  readonly secrets: readonly string[];
  /** Makes the backend usable (the local bridge starts here, on first use); throws why not. */
  ready(signal?: AbortSignal): Promise<void>;
  /** Local: the full log of the last image build for a harness. */
  buildLog?(harness: string): Promise<string | undefined>;
}

export class BackendRegistry extends Disposable {
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  /** Fires when a backend appears, disappears or changes (sign in/out, URL change). */
  readonly onDidChange = this.changed.event;
  private backends: Backend[] = [];
  private loading: Promise<void> | undefined;

  constructor(
    private readonly secrets: Secrets,
    private readonly log: Logger,
    private readonly local?: Backend,
  ) {
    super();
    this.register(vscode.workspace.onDidChangeConfiguration((e) => affects(e, 'platform.url', 'local.enabled') && void this.reload()));
    this.register(secrets.onDidChange(() => void this.reload()));
  }

  /** Current backends (after the first `ready()`). */
  all(): readonly Backend[] {
    return this.backends;
  }

  get(id: string): Backend | undefined {
    return this.backends.find((b) => b.id === id);
  }

  /** Resolves once the backends are known (reads settings and SecretStorage; no network). */
  ready(): Promise<void> {
    return (this.loading ??= this.reload());
  }

  /** Every secret of every backend, for redaction. */
  allSecrets(): string[] {
    return this.backends.flatMap((b) => b.secrets);
  }

  async reload(): Promise<void> {
    const next: Backend[] = [];
    if (this.local && setting('local.enabled')) next.push(this.local);
    const platform = await this.platformBackend();
    if (platform) next.push(platform);
    const key = (b: Backend) => (b.kind === 'local' ? 'local' : `${b.id}:${b.client.baseUrl}:${b.secrets.join()}`);
    const before = this.backends.map(key).join('|');
    const after = next.map(key).join('|');
    this.backends = next;
    await vscode.commands.executeCommand('setContext', 'sandboxAgents.signedIn', !!platform);
    if (before !== after) this.changed.fire();
  }

  private async platformBackend(): Promise<Backend | undefined> {
    const raw = setting('platform.url');
    if (!raw) return undefined;
    let baseUrl: string;
    try {
      baseUrl = normalizeBaseUrl(raw);
    } catch (err) {
      this.log.warn(`setting sandboxAgents.platform.url is invalid: ${(err as Error).message}`);
      return undefined;
    }
    const key = await this.secrets.getPlatformKey(baseUrl);
    if (!key) return undefined;
    return createPlatformBackend(baseUrl, key, this.log);
  }
}

export function createPlatformBackend(baseUrl: string, masterKey: string, log: Logger): Backend {
  const client = new PlatformClient({ baseUrl, apiKey: masterKey, log: tagged(log, 'platform') });
  return {
    id: 'platform',
    kind: 'platform',
    label: `Platform — ${client.host}`,
    client,
    harnesses: HARNESSES.filter((h) => h.backends.includes('platform')),
    secrets: [masterKey],
    ready: async () => undefined,
  };
}
