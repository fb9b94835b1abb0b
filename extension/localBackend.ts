/**
 * "Local": the bridge on this machine as a backend, started on first use. Its status bar item shows
 * the bridge and runtime state; when Docker is unreachable, one precise message offers the ways out.
 */
import * as vscode from 'vscode';
import { HARNESSES, LOCAL_HARNESSES, type BlockedList, type BridgeStatus } from '../protocol/harnesses';
import type { Backend } from './backends';
import { BridgeSupervisor, RuntimeProblemError, defaultStateBase, type BridgeSettings } from './bridgeSupervisor';
import { ActionableError, type MessageAction } from './commands';
import { affects, setting, updateSetting } from './config';
import { Disposable } from './disposable';
import type { Logger } from './logger';
import type { PlatformClient } from './platformClient';
import { PROVIDERS, readProviderKeys } from './providerKeys';
import type { AgentSecrets } from './agentSecrets';
import type { Secrets } from './secrets';

const STATUS_TTL_MS = 30_000;
export const INSTALL_DOCKER_URL = 'https://docs.docker.com/engine/install/';

function bridgeSettings(): BridgeSettings {
  return {
    runtime: setting('local.runtime') === 'host' ? 'host' : 'docker',
    stateBase: setting('local.stateDir') || defaultStateBase(),
    dockerHost: setting('local.dockerHost') || undefined,
    image: setting('local.shellImage') || undefined,
    baseImage: setting('local.baseImage') || undefined,
  };
}

export class LocalBackend extends Disposable implements Backend {
  readonly id = 'local';
  readonly kind = 'local' as const;
  readonly harnesses = HARNESSES.filter((h) => LOCAL_HARNESSES.includes(h.id));
  readonly supervisor: BridgeSupervisor;
  private readonly item = this.register(vscode.window.createStatusBarItem('sandboxAgents.local', vscode.StatusBarAlignment.Left, 50));
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  /** The bridge or its runtime changed state (started, Docker went away, runtime switched). */
  readonly onDidChange = this.changed.event;
  private lastStatus: { at: number; status: BridgeStatus } | undefined;

  /** The bridge (by pid) that has the current provider keys. */
  private keysPushedTo: number | undefined;

  constructor(
    bridgeScript: string,
    private readonly log: Logger,
    private readonly secretStore?: Secrets,
    private readonly agentSecrets?: AgentSecrets,
  ) {
    super();
    if (secretStore) this.register(secretStore.onDidChange(() => (this.keysPushedTo = undefined)));
    this.supervisor = new BridgeSupervisor(bridgeScript, bridgeSettings(), log);
    this.item.name = 'Sandbox Agents: Local';
    this.item.command = 'sandboxAgents.localActions';
    this.render(undefined);
    this.item.show();
    this.register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (!affects(e, 'local.runtime', 'local.dockerHost', 'local.shellImage', 'local.baseImage', 'local.stateDir')) return;
        this.supervisor.configure(bridgeSettings());
        this.lastStatus = undefined;
        this.render(undefined);
        this.changed.fire();
      }),
    );
  }

  get label(): string {
    return setting('local.runtime') === 'host' ? 'Local — host processes (unsandboxed)' : 'Local — Docker';
  }

  get client(): PlatformClient {
    const c = this.supervisor.connection;
    if (!c) throw new Error('the local bridge is not started yet');
    return c.client;
  }

  get secrets(): readonly string[] {
    const c = this.supervisor.connection;
    return c ? [c.masterKey] : [];
  }

  /** The keys changed: a running bridge gets them now, one started later on its start. */
  async providerKeysChanged(): Promise<void> {
    this.keysPushedTo = undefined;
    const conn = this.supervisor.connection;
    if (conn) await this.pushProviderKeys(conn.pid);
  }

  /** Hands the model provider keys and agents' secrets to the bridge (memory only); a restarted bridge gets them again. */
  private async pushProviderKeys(pid: number): Promise<void> {
    if (!this.secretStore) return;
    const keys = await readProviderKeys(this.secretStore);
    for (const p of PROVIDERS) await this.supervisor.setProvider(p, keys[p]);
    this.log.info(`model provider keys handed to the bridge: ${PROVIDERS.filter((p) => keys[p]).join(', ') || 'none'}`);
    // The bridge holds agents' secret values in memory only: a new bridge gets them again.
    const conn = this.supervisor.connection;
    if (this.agentSecrets && conn) await this.agentSecrets.resupply(this.id, conn.client);
    this.keysPushedTo = pid;
  }

  blocked(sessionId: string): Promise<BlockedList> {
    return this.supervisor.blocked(sessionId);
  }

  buildLog(harness: string): Promise<string | undefined> {
    return this.supervisor.buildLog(harness);
  }

  /** Forgets the cached runtime status (Refresh, Retry). */
  invalidate(): void {
    this.lastStatus = undefined;
  }

  async ready(signal?: AbortSignal): Promise<void> {
    try {
      // Always verified (one request): a bridge that died is started again here.
      const conn = await this.supervisor.ensure(signal);
      if (this.keysPushedTo !== conn.pid) await this.pushProviderKeys(conn.pid);
      const cached = this.lastStatus;
      if (cached && cached.status.pid === conn.pid && cached.status.available && Date.now() - cached.at < STATUS_TTL_MS) return;
      const status = await this.supervisor.status();
      this.lastStatus = { at: Date.now(), status };
      this.render(status);
      if (!status.available) throw new RuntimeProblemError(status);
    } catch (err) {
      if (!(err instanceof RuntimeProblemError)) this.render(undefined, (err as Error).message);
      throw this.explain(err);
    }
  }

  /** Turns a runtime problem into one message with the ways out. */
  private explain(err: unknown): unknown {
    if (!(err instanceof RuntimeProblemError)) return err;
    const actions: MessageAction[] = [
      { title: 'Retry', run: () => vscode.commands.executeCommand('sandboxAgents.refresh') },
    ];
    if (err.status.runtime === 'docker') {
      actions.push(
        { title: 'Use Host Runtime (Unsandboxed)', run: () => updateSetting('local.runtime', 'host') },
        { title: 'Sign In to a Platform', run: () => vscode.commands.executeCommand('sandboxAgents.signIn') },
        { title: 'Install Docker', run: () => vscode.env.openExternal(vscode.Uri.parse(INSTALL_DOCKER_URL)) },
      );
    }
    return new ActionableError(err.message, actions);
  }

  private render(status: BridgeStatus | undefined, problem?: string): void {
    if (!status) {
      this.item.text = problem ? '$(warning) Local' : '$(vm-outline) Local';
      this.item.tooltip = problem ? `Local bridge: ${problem}` : `Local bridge: starts on first use (${setting('local.runtime')} runtime)`;
      this.item.backgroundColor = problem ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
      return;
    }
    const runtime = status.runtime === 'docker' ? 'Docker' : 'host processes';
    if (!status.available) {
      this.item.text = `$(warning) Local: ${runtime} unavailable`;
      this.item.tooltip = `Local bridge (pid ${status.pid}) is running, but ${status.problem}`;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    } else {
      this.item.text = status.sandboxed ? '$(vm) Local: Docker' : '$(warning) Local: unsandboxed';
      this.item.tooltip = status.sandboxed
        ? `Local bridge (pid ${status.pid}) runs sessions in Docker at ${status.docker_host}`
        : `Local bridge (pid ${status.pid}) runs sessions as host processes: NOT sandboxed — they can read your files and reach the network directly (model keys and agent secrets still reach them only as stubs)`;
      this.item.backgroundColor = status.sandboxed ? undefined : new vscode.ThemeColor('statusBarItem.warningBackground');
    }
  }

  /** The status bar item's menu. */
  async actions(): Promise<void> {
    const runtime = setting('local.runtime');
    const picks: (vscode.QuickPickItem & { run: () => unknown })[] = [
      { label: '$(refresh) Check Again', run: () => vscode.commands.executeCommand('sandboxAgents.refresh') },
      runtime === 'host'
        ? { label: '$(vm) Use Docker Runtime', description: 'sessions in containers (sandboxed)', run: () => updateSetting('local.runtime', 'docker') }
        : { label: '$(warning) Use Host Runtime', description: 'sessions as host processes (NOT sandboxed)', run: () => updateSetting('local.runtime', 'host') },
      { label: '$(debug-stop) Stop the Local Bridge', description: 'sessions keep running; it starts again on next use', run: () => this.supervisor.stop() },
      { label: '$(output) Show Log', run: () => vscode.commands.executeCommand('sandboxAgents.showLog') },
    ];
    const picked = await vscode.window.showQuickPick(picks, { title: 'Sandbox Agents: Local' });
    await picked?.run();
  }
}
