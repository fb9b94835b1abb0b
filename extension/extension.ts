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
import { ChatViewProvider } from './chat';
import { harnessInfo } from '../protocol/harnesses';
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
import { AgentSecrets, showBlockedRequests, type SetAgentSecretArgs } from './agentSecrets';
import type { AgentRef } from './agentCommands';
import type { TreeNode } from './agentsTree';
import { InvalidInputError } from './errors';
import { WorkspaceAgents } from './workspaceAgents';
import { PinnedCommands } from './pinnedCommands';

/** What `activate` returns: for integrations and the extension-host tests. */
export interface SandboxAgentsApi {
  readonly backends: BackendRegistry;
  readonly tree: AgentsTreeProvider;
  readonly sessions: SessionManager;
  readonly local: LocalBackend;
  readonly terminals: TerminalManager;
  readonly chat: ChatViewProvider;
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
    const agentSecrets = new AgentSecrets(secrets, tagged(log, 'secrets'));
    const local = this.register(new LocalBackend(context.asAbsolutePath('dist/bridge.js'), tagged(log, 'bridge'), secrets, agentSecrets));
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
    const chat = this.register(
      new ChatViewProvider(context.extensionUri, backends, tagged(log, 'chat'), (backend, agent) => sessions.start(backend, agent)),
    );
    this.register(vscode.window.registerWebviewViewProvider(ChatViewProvider.viewType, chat, { webviewOptions: { retainContextWhenHidden: false } }));
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
    command('setAgentSecret', 'Could not set the secret', async (arg?: TreeNode | (AgentRef & Partial<SetAgentSecretArgs>)) => {
      const { backend, agent } = await agents.agent(arg);
      const done = await agentSecrets.prompt(backend, agent, arg && !('kind' in arg) ? arg : undefined);
      if (!done) return;
      tree.refresh();
      notifier.show('info', done.removed ? `Removed ${done.name} from ${agent.name || agent.id}.` : `${done.name} is set for ${agent.name || agent.id}: its sandboxes see a stub, the value goes only to the hosts you named (new sessions).`);
    });
    command('showBlockedRequests', 'Could not show the blocked requests', async (arg?: TreeNode | AgentRef) => {
      const { backend, session } = await agents.session(arg);
      if (backend.kind !== 'local') throw new InvalidInputError('Blocked secret use is recorded by the local bridge; platform sessions keep it in the platform\'s vault.');
      const list = await local.blocked(session.id);
      showBlockedRequests(list, `session ${session.id.slice(0, 8)}`, (m) => notifier.show('info', m));
      return list;
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
    // Open Chat: on a session, that session; on an agent, its latest ready session, else a new one.
    command('openChat', 'Could not open the chat', async (arg?: TreeNode | AgentRef) => {
      let backend: Backend;
      let agent: Agent;
      let session: Session | undefined;
      if (arg && 'kind' in arg && arg.kind === 'session') ({ backend, agent, session } = arg);
      else if (arg && !('kind' in arg) && arg.sessionId) {
        ({ backend, session } = await agents.session(arg));
        agent = await backend.client.getAgent(session.agent_id ?? '');
      } else {
        ({ backend, agent } = await agents.agent(arg));
        session = (await backend.client.listSessions({ agentId: agent.id, limit: 20 })).find((s) => s.status === 'ready');
      }
      if (harnessInfo(agent.harness_id)?.kind !== 'chat') throw new InvalidInputError(`${agent.name || agent.id} runs ${agent.harness_id}, a terminal harness: use Open Terminal.`);
      if (!session || session.status !== 'ready') session = await sessions.start(backend, agent);
      await chat.open(backend, session, agent);
      return session;
    });
    command('sendSelection', 'Could not send the selection', (ref?: { backendId?: string; sessionId?: string }) => chat.sendSelection(ref && typeof ref === 'object' && 'sessionId' in ref ? ref : undefined));
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
    this.api = { backends, tree, sessions, local, terminals, chat, onDidShowMessage: notifier.onDidShowMessage, pinned };
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
