/**
 * Create Agent (multi-step quick input), Delete Agent, Start/Stop Session, Copy Session ID.
 *
 * Every command takes what the tree passes (a node), a programmatic reference
 * (`{backendId, agentId | agentName, sessionId}`), or nothing, in which case it asks.
 */
import * as vscode from 'vscode';
import { HARNESSES, harnessInfo, type HarnessInfo } from '../protocol/harnesses';
import { TERMINAL_STATUSES, TUI_HARNESSES, type Agent, type CreateAgentBody, type Session } from '../protocol/platform';
import type { AgentsTreeProvider, TreeNode } from './agentsTree';
import type { Backend, BackendRegistry } from './backends';
import { ActionableError, type Notifier } from './commands';
import { CancelledError, InvalidInputError, PlatformError } from './errors';
import type { Logger } from './logger';
import { MultiStepInput } from './multiStepInput';
import type { SessionManager } from './sessionManager';

export interface AgentRef {
  backendId?: string;
  agentId?: string;
  agentName?: string;
  sessionId?: string;
  /** Skip the confirmation (automation). */
  confirmed?: boolean;
}

export interface CreateAgentArgs {
  backendId?: string;
  name?: string;
  harness?: string;
  model?: string;
  prompt?: string;
  repoUrl?: string;
  branch?: string;
  /** Local agents: an absolute host folder mounted at /work/repo in the sandbox. */
  workspacePath?: string;
  /** Local agents: `mount` (default) the folder itself, or a git `worktree` of it on a branch per session. */
  workspaceMode?: 'mount' | 'worktree';
}

type Arg = TreeNode | AgentRef | undefined;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$/;

export class AgentCommands {
  constructor(
    private readonly backends: BackendRegistry,
    private readonly sessions: SessionManager,
    private readonly tree: AgentsTreeProvider,
    private readonly notifier: Notifier,
    private readonly log: Logger,
  ) {}

  // ------------------------------------------------------------------------------------------
  // Resolving arguments

  async backend(arg?: Arg | CreateAgentArgs): Promise<Backend> {
    const b = await this.pickBackend(arg);
    await b.ready();
    return b;
  }

  private async pickBackend(arg?: Arg | CreateAgentArgs): Promise<Backend> {
    await this.backends.ready();
    if (arg && 'kind' in arg && arg.kind !== 'message' && 'backend' in arg) return arg.backend;
    const id = arg && 'backendId' in arg ? arg.backendId : undefined;
    if (id) {
      const b = this.backends.get(id);
      if (!b) throw new InvalidInputError(`No backend "${id}" is available. Sign in to an agent platform first.`);
      return b;
    }
    const all = this.backends.all();
    if (all.length === 0) {
      throw new ActionableError('Sign in to an agent platform first.', [
        { title: 'Sign In', run: () => vscode.commands.executeCommand('sandboxAgents.signIn') },
      ], 'warning');
    }
    if (all.length === 1) return all[0];
    const picked = await vscode.window.showQuickPick(
      all.map((b) => ({ label: b.label, description: b.kind === 'local' ? 'on this machine' : b.client.baseUrl, backend: b })),
      { title: 'Where does it run?', ignoreFocusOut: true },
    );
    if (!picked) throw new CancelledError();
    return picked.backend;
  }

  async agent(arg?: Arg): Promise<{ backend: Backend; agent: Agent }> {
    if (arg && 'kind' in arg && (arg.kind === 'agent' || arg.kind === 'session')) return { backend: arg.backend, agent: arg.agent };
    const backend = await this.backend(arg);
    const ref = arg && !('kind' in arg) ? arg : undefined;
    if (ref?.agentId) return { backend, agent: await backend.client.getAgent(ref.agentId) };
    if (ref?.agentName) {
      const agent = await backend.client.findAgentByName(ref.agentName);
      if (!agent) throw new InvalidInputError(`No agent named "${ref.agentName}" on ${backend.label}.`);
      return { backend, agent };
    }
    const agents = backend.client.listAllAgents();
    const picked = await vscode.window.showQuickPick<vscode.QuickPickItem & { agent: Agent }>(
      agents.then((list) =>
        list.map((agent) => ({ label: agent.name || agent.id, description: `${agent.harness_id} · ${agent.model ?? '?'}`, agent })),
      ),
      { title: `Agents on ${backend.label}`, placeHolder: 'Choose an agent', ignoreFocusOut: true },
    );
    if (!picked) throw new CancelledError();
    return { backend, agent: picked.agent };
  }

  async session(arg?: Arg): Promise<{ backend: Backend; session: Session; agent?: Agent }> {
    if (arg && 'kind' in arg && arg.kind === 'session') return { backend: arg.backend, session: arg.session, agent: arg.agent };
    const backend = await this.backend(arg);
    const ref = arg && !('kind' in arg) ? arg : undefined;
    if (ref?.sessionId) return { backend, session: await backend.client.getSession(ref.sessionId) };
    const agentId = arg && 'kind' in arg && arg.kind === 'agent' ? arg.agent.id : ref?.agentId;
    const sessions = backend.client.listSessions({ agentId, limit: 50 }).then((list) => list.filter((s) => !TERMINAL_STATUSES.has(s.status)));
    const picked = await vscode.window.showQuickPick<vscode.QuickPickItem & { session: Session }>(
      sessions.then((list) => list.map((session) => ({ label: session.id, description: `${session.status}${session.title ? ` · ${session.title}` : ''}`, session }))),
      { title: `Sessions on ${backend.label}`, placeHolder: 'Choose a session', ignoreFocusOut: true },
    );
    if (!picked) throw new CancelledError();
    return { backend, session: picked.session };
  }

  // ------------------------------------------------------------------------------------------
  // Commands

  async createAgent(arg?: CreateAgentArgs | TreeNode): Promise<Agent | undefined> {
    const given: CreateAgentArgs = arg && !('kind' in arg) ? arg : {};
    const backend = await this.backend(arg);
    const interactive = !(given.name && given.harness && given.model);
    const state = {
      name: given.name ?? '',
      harness: given.harness ? harnessInfo(given.harness) : undefined,
      model: given.model ?? '',
      prompt: given.prompt ?? '',
      repoUrl: given.repoUrl ?? '',
      branch: given.branch ?? '',
      workspacePath: given.workspacePath ?? '',
      workspaceMode: given.workspaceMode ?? ('mount' as 'mount' | 'worktree'),
    };
    if (given.harness && !backend.harnesses.some((h) => h.id === given.harness)) {
      throw new InvalidInputError(`${backend.label} does not run the "${given.harness}" harness. Choose one of: ${backend.harnesses.map((h) => h.id).join(', ')}.`);
    }
    if (interactive) await this.askAgent(backend, state);
    const validName = checkName(state.name);
    if (validName) throw new InvalidInputError(validName);
    const body: CreateAgentBody = {
      name: state.name.trim(),
      model: state.model.trim(),
      harness_id: state.harness?.id ?? given.harness ?? 'opencode',
    };
    if (state.prompt.trim()) body.prompt = state.prompt.trim();
    if (state.repoUrl.trim()) {
      body.repo_url = state.repoUrl.trim();
      body.branch = state.branch.trim() || 'main';
    }
    if (state.workspacePath) {
      if (backend.kind !== 'local') throw new InvalidInputError('Only local agents can mount a folder of this machine.');
      body.workspace_path = state.workspacePath;
      body.workspace_mode = state.workspaceMode;
    }
    const agent = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Creating agent ${body.name} on ${backend.label}…` },
      async () => {
        if (await backend.client.findAgentByName(body.name!)) throw new InvalidInputError(`An agent named "${body.name}" already exists on ${backend.label}.`);
        try {
          return await backend.client.createAgent(body);
        } catch (err) {
          if (err instanceof PlatformError && err.status === 400) throw new InvalidInputError(`${backend.label} rejected the agent: ${err.detail ?? 'bad request'}`);
          throw err;
        }
      },
    );
    this.log.info(`created agent ${agent.id} (${agent.name}) on ${backend.label}`);
    this.tree.refresh();
    this.notifier.show('info', `Agent "${agent.name}" created on ${backend.label}.`, [
      { title: 'Start Session', run: () => vscode.commands.executeCommand('sandboxAgents.startSession', { backendId: backend.id, agentId: agent.id }) },
    ]);
    return agent;
  }

  private async askAgent(
    backend: Backend,
    s: { name: string; harness?: HarnessInfo; model: string; prompt: string; repoUrl: string; branch: string; workspacePath: string; workspaceMode: 'mount' | 'worktree' },
  ): Promise<void> {
    const local = backend.kind === 'local';
    const total = local ? 7 : 6;
    const folders = vscode.workspace.workspaceFolders?.filter((f) => f.uri.scheme === 'file') ?? [];
    const title = `Create Agent on ${backend.label}`;
    const models = backend.client.models().catch((err: unknown) => {
      this.log.info(`model list unavailable on ${backend.label}: ${err instanceof Error ? err.message : err}`);
      return [] as string[];
    });
    await MultiStepInput.run<typeof s>(async function name(input, st) {
      st.name = await input.input({
        title, step: 1, totalSteps: total, value: st.name, prompt: 'A name for the agent (unique on this backend)', placeholder: 'e.g. refactor-bot',
        validate: checkName,
        validateOnAccept: async (v) => ((await backend.client.findAgentByName(v.trim())) ? `An agent named "${v.trim()}" already exists on ${backend.label}` : undefined),
      });
      return async function harness(input2, st2) {
        const items = HARNESSES.filter((h) => backend.harnesses.some((b) => b.id === h.id)).map((h) => ({ label: h.label, description: h.id, detail: h.description, harness: h }));
        const picked = await input2.pick({ title, step: 2, totalSteps: total, items, placeholder: 'Which agent runs in the sandbox?', activeItem: items.find((i) => i.harness.id === st2.harness?.id) });
        if (st2.harness?.id !== picked.harness.id) st2.model = '';
        st2.harness = picked.harness;
        return async function model(input3, st3) {
          const fallback = st3.harness!.defaultModel;
          const items = models.then((ids) => {
            const list = ids.length ? ids : [fallback];
            const sorted = [...new Set([st3.model || fallback, ...list])].filter(Boolean);
            return sorted.map((id) => ({ label: id, description: id === fallback ? 'default' : undefined }));
          });
          const picked3 = await input3.pick({
            title, step: 3, totalSteps: total, items, placeholder: 'Choose a model, or type any model name and press Enter',
            allowCustom: (v) => (v ? { label: v } : undefined),
          });
          st3.model = picked3.label;
          return async function prompt(input4, st4) {
            st4.prompt = await input4.input({ title, step: 4, totalSteps: total, value: st4.prompt, prompt: 'System prompt (optional)', placeholder: 'Leave empty for the harness default' });
            const repo = async function repo(input5: MultiStepInput, st5: typeof s) {
              st5.repoUrl = await input5.input({
                title, step: local ? 6 : 5, totalSteps: total, value: st5.repoUrl, prompt: 'Git repository to clone into the sandbox (optional)', placeholder: 'https://github.com/owner/repo',
                validate: (v) => (!v.trim() || /^(https?:\/\/|git@|ssh:\/\/)\S+$/.test(v.trim()) ? undefined : 'Enter an https://, ssh:// or git@ URL, or leave empty'),
              });
              if (!st5.repoUrl.trim()) return undefined;
              return async function branch(input6: MultiStepInput, st6: typeof s) {
                st6.branch = await input6.input({ title, step: total, totalSteps: total, value: st6.branch || 'main', prompt: 'Branch', validate: (v) => (/^[^\s~^:?*[\\]+$/.test(v.trim()) ? undefined : 'Enter a valid branch name') });
                return undefined;
              };
            };
            if (!local) return repo;
            return async function workspace(input7: MultiStepInput, st7: typeof s) {
              const items = [
                ...folders.flatMap((f) => [
                  { label: `Mount ${f.name}`, description: f.uri.fsPath, detail: 'The agent works in this folder (read-write, at /work/repo)', path: f.uri.fsPath, mode: 'mount' as const },
                  { label: `Worktree of ${f.name}`, description: f.uri.fsPath, detail: 'A git worktree on a branch of its own per session: your checkout stays untouched', path: f.uri.fsPath, mode: 'worktree' as const },
                ]),
                { label: 'No folder', description: '', detail: 'An empty sandbox (clone a repository in the next step if you like)', path: '', mode: 'mount' as const },
              ];
              const picked = await input7.pick({ title, step: 5, totalSteps: total, items, placeholder: 'Which folder does the agent work in?', activeItem: items.find((i) => i.path === st7.workspacePath && i.mode === st7.workspaceMode) });
              st7.workspacePath = picked.path;
              st7.workspaceMode = picked.mode;
              return repo;
            };
          };
        };
      };
    }, s);
  }

  async deleteAgent(arg?: Arg): Promise<boolean> {
    const { backend, agent } = await this.agent(arg);
    const ref = arg && !('kind' in arg) ? arg : undefined;
    if (!ref?.confirmed) {
      const choice = await vscode.window.showWarningMessage(
        `Delete agent "${agent.name || agent.id}" on ${backend.label}?`,
        { modal: true, detail: 'The agent definition is deleted for everyone using this backend. This cannot be undone.' },
        'Delete',
      );
      if (choice !== 'Delete') return false;
    }
    await backend.client.deleteAgent(agent.id);
    this.log.info(`deleted agent ${agent.id} on ${backend.label}`);
    this.tree.refresh();
    return true;
  }

  async startSession(arg?: Arg): Promise<Session> {
    const { backend, agent } = await this.agent(arg);
    const session = await this.sessions.start(backend, agent);
    this.notifier.show('info', `${agent.name || agent.id} is ready (session ${session.id}).`);
    return session;
  }

  async stopSession(arg?: Arg): Promise<boolean> {
    const { backend, session } = await this.session(arg);
    const ref = arg && !('kind' in arg) ? arg : undefined;
    if (!ref?.confirmed && session.status === 'ready') {
      const choice = await vscode.window.showWarningMessage(
        `Stop session ${session.id}?`,
        { modal: true, detail: 'The sandbox is deleted, with anything in it that was not pushed or saved elsewhere.' },
        'Stop Session',
      );
      if (choice !== 'Stop Session') return false;
    }
    await this.sessions.stop(backend, session);
    return true;
  }

  /** Open Terminal: on a session, attach; on an agent, its latest ready session, else a new one. */
  async openTerminal(arg: Arg, open: (backend: Backend, session: Session, agent: Agent) => Promise<void>): Promise<Session> {
    let backend: Backend;
    let agent: Agent;
    let session: Session | undefined;
    if (arg && 'kind' in arg && arg.kind === 'session') {
      ({ backend, agent, session } = arg);
    } else if (arg && !('kind' in arg) && arg.sessionId) {
      backend = await this.backend(arg);
      session = await backend.client.getSession(arg.sessionId);
      agent = await backend.client.getAgent(session.agent_id ?? '');
    } else {
      ({ backend, agent } = await this.agent(arg));
      const sessions = await backend.client.listSessions({ agentId: agent.id, limit: 20 });
      session = sessions.find((s) => s.status === 'ready');
    }
    if (!TUI_HARNESSES.has(agent.harness_id)) throw new InvalidInputError(`${agent.name || agent.id} runs ${agent.harness_id}, a chat harness: it has no terminal.`);
    if (!session || session.status !== 'ready') session = await this.sessions.start(backend, agent);
    await open(backend, session, agent);
    return session;
  }

  async copySessionId(arg?: Arg): Promise<string> {
    const { session } = await this.session(arg);
    await vscode.env.clipboard.writeText(session.id);
    vscode.window.setStatusBarMessage(`Copied session id ${session.id}`, 3000);
    return session.id;
  }
}

function checkName(v: string): string | undefined {
  const name = v.trim();
  if (!name) return 'Enter a name';
  if (!NAME_RE.test(name)) return 'Use letters, digits, spaces, dots, dashes or underscores (up to 63 characters), starting with a letter or digit';
  return undefined;
}
