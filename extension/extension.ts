/**
 * Activation only wires: logger, services, views, commands. No network I/O happens here; lists are
 * fetched when a view asks for them.
 */
import * as vscode from 'vscode';
import { AgentCommands } from './agentCommands';
import { AgentsTreeProvider } from './agentsTree';
import { BackendRegistry } from './backends';
import { Notifier, registerCommand, type ShownMessage } from './commands';
import { Disposable } from './disposable';
import { LocalBackend } from './localBackend';
import { TerminalManager } from './terminalPanel';
import { createSessionPty, openIntegratedTerminal } from './integratedTerminal';
import type { Backend } from './backends';
import type { Agent, Session } from '../protocol/platform';
import { setting } from './config';
import type { Logger } from './logger';
import { tagged } from './logger';
import { Secrets } from './secrets';
import { SessionManager } from './sessionManager';
import { SignInFlow } from './signIn';
import { setModelProviderKey, type SetProviderKeyArgs } from './providerKeys';
import { WorkspaceAgents } from './workspaceAgents';
import { PinnedCommands } from './pinnedCommands';

/** What `activate` returns: for integrations and the extension-host tests. */
export interface SandboxAgentsApi {
  readonly backends: BackendRegistry;
  readonly tree: AgentsTreeProvider;
  readonly sessions: SessionManager;
  readonly local: LocalBackend;
  readonly terminals: TerminalManager;
  readonly onDidShowMessage: vscode.Event<ShownMessage>;
  readonly pinned: WorkspaceAgents;
}

class Extension extends Disposable {
  readonly api: SandboxAgentsApi;

  constructor(context: vscode.ExtensionContext) {
    super();
    const channel = this.register(vscode.window.createOutputChannel('Sandbox Agents', { log: true }));
    const log: Logger = channel;
    const secrets = this.register(new Secrets(context.secrets));
    const local = this.register(new LocalBackend(context.asAbsolutePath('dist/bridge.js'), tagged(log, 'bridge'), secrets));
    const backends = this.register(new BackendRegistry(secrets, tagged(log, 'backends'), local));
    const notifier = this.register(new Notifier(log, () => backends.allSecrets()));
    const sessions = this.register(new SessionManager(tagged(log, 'sessions')));
    const pinned = this.register(new WorkspaceAgents(tagged(log, 'pinned')));
    const tree = this.register(new AgentsTreeProvider(backends, sessions, notifier, tagged(log, 'tree'), pinned));
    this.register(local.onDidChange(() => tree.refresh()));
    this.register(vscode.window.createTreeView('sandboxAgents.agents', { treeDataProvider: tree, showCollapseAll: true }));

    const terminals = this.register(
      new TerminalManager(context.extensionUri, backends, notifier, tagged(log, 'terminal'), async (backend, sessionId) => {
        await backend.client.restartSession(sessionId);
      }),
    );
    const openTerminal = async (backend: Backend, session: Session, agent: Agent) => {
      if (setting('terminal.renderer') === 'integrated') openIntegratedTerminal(backend, session, agent, tagged(log, 'terminal'));
      else await terminals.open(backend, session, agent);
    };
    const signIn = new SignInFlow(secrets, backends, notifier, tagged(log, 'auth'));
    const agents = new AgentCommands(backends, sessions, tree, notifier, tagged(log, 'agents'));
    const command = (id: string, failure: string, fn: (...args: any[]) => unknown) => this.register(registerCommand(notifier, `sandboxAgents.${id}`, failure, fn));
    command('signIn', 'Sign in failed', (args) => signIn.signIn(args));
    command('signOut', 'Sign out failed', () => signIn.signOut());
    command('setModelProviderKey', 'Could not set the key', async (args?: SetProviderKeyArgs) => {
      const provider = await setModelProviderKey(secrets, args);
      if (!provider) return;
      await local.providerKeysChanged();
      notifier.show('info', `The ${provider === 'anthropic' ? 'Anthropic' : 'OpenAI'} key is set for local sandboxes (they see only a stub).`);
    });
    command('createAgent', 'Could not create the agent', (arg) => agents.createAgent(arg));
    command('deleteAgent', 'Could not delete the agent', (arg) => agents.deleteAgent(arg));
    command('startSession', 'Could not start a session', (arg) => agents.startSession(arg));
    command('stopSession', 'Could not stop the session', (arg) => agents.stopSession(arg));
    command('openTerminal', 'Could not open the terminal', (arg) => agents.openTerminal(arg, openTerminal));
    // The terminal "+" menu: "Sandbox Agent…" asks for a TUI agent and attaches to its session.
    this.register(
      vscode.window.registerTerminalProfileProvider('sandboxAgents.agentTerminal', {
        provideTerminalProfile: async () => {
          try {
            let profile: vscode.TerminalProfile | undefined;
            await agents.openTerminal(undefined, async (backend, session, agent) => {
              profile = new vscode.TerminalProfile({ name: agent.name || agent.id, pty: createSessionPty(backend, session.id, tagged(log, 'terminal')) });
            });
            return profile;
          } catch (err) {
            notifier.showError(err, 'Could not open the terminal');
            return undefined;
          }
        },
      }),
    );
    const pinnedCommands = new PinnedCommands(pinned, backends, secrets, agents, tagged(log, 'pinned'));
    command('startPinnedAgent', 'Could not start the pinned agent', (arg) => pinnedCommands.start(arg));
    command('pinAgent', 'Could not pin the agent', (arg) => pinnedCommands.pin(arg));
    command('syncPinnedAgent', 'Could not sync the pinned agent', async (arg) => (await pinnedCommands.sync(arg))?.agent);
    command('copySessionId', 'Could not copy the session id', (arg) => agents.copySessionId(arg));
    command('refresh', 'Refresh failed', async () => {
      local.invalidate();
      await backends.reload();
      tree.refresh();
    });
    command('showLog', 'Could not show the log', () => channel.show());
    command('localActions', 'Local bridge', () => local.actions());

    void backends.ready();
    this.api = { backends, tree, sessions, local, terminals, onDidShowMessage: notifier.onDidShowMessage, pinned };
  }
}

let current: Extension | undefined;

export function activate(context: vscode.ExtensionContext): SandboxAgentsApi {
  current = new Extension(context);
  context.subscriptions.push(current);
  return current.api;
}

export function deactivate(): void {
  current?.dispose();
  current = undefined;
}
