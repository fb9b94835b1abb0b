/**
 * The only module that touches VS Code's SecretStorage. Keys are typed; values never leave through
 * logs or messages.
 */
import * as vscode from 'vscode';
import { Disposable } from './disposable';

type SecretKey = `platform.masterKey:${string}` | `provider:${string}` | `agentSecrets:${string}` | `pinned:${string}`;

export class Secrets extends Disposable {
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;

  constructor(private readonly storage: vscode.SecretStorage) {
    super();
    this.register(storage.onDidChange((e) => e.key.startsWith('sandboxAgents.') && this.changed.fire()));
  }

  private key(k: SecretKey): string {
    return `sandboxAgents.${k}`;
  }

  getPlatformKey(baseUrl: string): Thenable<string | undefined> {
    return this.storage.get(this.key(`platform.masterKey:${baseUrl}`));
  }

  async setPlatformKey(baseUrl: string, masterKey: string): Promise<void> {
    await this.storage.store(this.key(`platform.masterKey:${baseUrl}`), masterKey);
  }

  async deletePlatformKey(baseUrl: string): Promise<void> {
    await this.storage.delete(this.key(`platform.masterKey:${baseUrl}`));
  }

  /** A model provider's `{base_url, api_key}` as JSON (local sandboxes' model gateway). */
  getProviderKey(provider: string): Thenable<string | undefined> {
    return this.storage.get(this.key(`provider:${provider}`));
  }

  async setProviderKey(provider: string, json: string): Promise<void> {
    await this.storage.store(this.key(`provider:${provider}`), json);
  }

  async deleteProviderKey(provider: string): Promise<void> {
    await this.storage.delete(this.key(`provider:${provider}`));
  }

  /** A backend's per-agent secret values as JSON (agent id → name → value). */
  getAgentSecrets(backendId: string): Thenable<string | undefined> {
    return this.storage.get(this.key(`agentSecrets:${backendId}`));
  }

  async setAgentSecrets(backendId: string, json: string): Promise<void> {
    await this.storage.store(this.key(`agentSecrets:${backendId}`), json);
  }

  async deleteAgentSecrets(backendId: string): Promise<void> {
    await this.storage.delete(this.key(`agentSecrets:${backendId}`));
  }

  /** A secret a pinned agent names in .vscode/sandbox-agents.json (`secrets`), by that name. */
  getPinnedSecret(name: string): Thenable<string | undefined> {
    return this.storage.get(this.key(`pinned:${name}`));
  }

  async setPinnedSecret(name: string, value: string): Promise<void> {
    await this.storage.store(this.key(`pinned:${name}`), value);
  }
}
