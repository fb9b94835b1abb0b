/**
 * The Agents view: one group per backend, its agents, their sessions.
 *
 * Lists are fetched when a node is expanded or refreshed, never on a timer; only sessions in
 * `creating` are polled (by SessionManager.watch), one GET each. Nodes are cached by id so a change
 * to one session refreshes only that row.
 */
import * as vscode from 'vscode';
import { TERMINAL_STATUSES, type Agent, type Session } from '../protocol/platform';
import { harnessInfo } from '../protocol/harnesses';
import type { Backend, BackendRegistry } from './backends';
import { setting, affects } from './config';
import { Disposable } from './disposable';
import { toUserMessage } from './errors';
import type { Logger } from './logger';
import type { Notifier } from './commands';
import { ActionableError } from './commands';
import type { SessionManager } from './sessionManager';
import { humanPhase, parseTime, relativeAge } from './sessionInfo';
import type { PinnedAgent } from '../protocol/pinned';
import type { WorkspaceAgents } from './workspaceAgents';

export type TreeNode = BackendNode | AgentNode | SessionNode | MessageNode | PinnedGroupNode | PinnedNode;

/** The agents pinned in one workspace folder's .vscode/sandbox-agents.json (shown first). */
export interface PinnedGroupNode {
  kind: 'pinnedGroup';
  id: string;
  folder: vscode.WorkspaceFolder;
  label: string;
}
export interface PinnedNode {
  kind: 'pinned';
  id: string;
  folder: vscode.WorkspaceFolder;
  agent: PinnedAgent;
}

/** The standard explanation for what Restricted Mode holds back. */
export const RESTRICTED_MODE_NOTE = 'This workspace is in Restricted Mode: pinned agents are listed but not started or synced until you trust it (Manage Workspace Trust).';

export interface BackendNode {
  kind: 'backend';
  id: string;
  backend: Backend;
}
export interface AgentNode {
  kind: 'agent';
  id: string;
  backend: Backend;
  agent: Agent;
}
export interface SessionNode {
  kind: 'session';
  id: string;
  backend: Backend;
  agent: Agent;
  session: Session;
}
export interface MessageNode {
  kind: 'message';
  id: string;
  label: string;
  icon: string;
  tooltip?: string;
  command?: vscode.Command;
}

export class AgentsTreeProvider extends Disposable implements vscode.TreeDataProvider<TreeNode> {
  private readonly changed = this.register(new vscode.EventEmitter<TreeNode | undefined>());
  readonly onDidChangeTreeData = this.changed.event;
  private readonly nodes = new Map<string, TreeNode>();
  private readonly parents = new Map<string, TreeNode | undefined>();

  constructor(
    private readonly backends: BackendRegistry,
    private readonly sessions: SessionManager,
    private readonly notifier: Notifier,
    private readonly log: Logger,
    private readonly pinned?: WorkspaceAgents,
  ) {
    super();
    if (pinned) this.register(pinned.onDidChange(() => this.refresh()));
    this.register(vscode.workspace.onDidGrantWorkspaceTrust(() => this.refresh()));
    this.register(backends.onDidChange(() => this.refresh()));
    this.register(sessions.onDidChangeSession(({ backend, session }) => this.onSessionChanged(backend, session)));
    this.register(vscode.workspace.onDidChangeConfiguration((e) => affects(e, 'agents.showEndedSessions') && this.refresh()));
  }

  refresh(node?: TreeNode): void {
    if (!node) {
      this.nodes.clear();
      this.parents.clear();
    }
    this.changed.fire(node);
  }

  /** The node of a backend, agent or session already shown, for commands given an id. */
  find(id: string): TreeNode | undefined {
    return this.nodes.get(id);
  }

  getParent(node: TreeNode): TreeNode | undefined {
    return this.parents.get(node.id);
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    if (!node) {
      await this.backends.ready();
      const roots: TreeNode[] = [...(await this.pinnedGroups()), ...this.backends.all().map((backend): TreeNode => ({ kind: 'backend', id: backend.id, backend }))];
      if (roots.length > 0 && !roots.some((n) => n.kind === 'backend' && n.backend.kind === 'platform')) {
        roots.push({ kind: 'message', id: 'sign-in', label: 'Sign In to Agent Platform…', icon: 'sign-in', tooltip: 'Use agents on a LiteLLM Agent Platform too', command: { command: 'sandboxAgents.signIn', title: 'Sign In' } });
      }
      return this.adopt(undefined, roots);
    }
    if (node.kind === 'backend') return this.adopt(node, await this.agentsOf(node));
    if (node.kind === 'agent') return this.adopt(node, await this.sessionsOf(node));
    if (node.kind === 'pinnedGroup') return this.adopt(node, this.pinnedOf(node));
    return [];
  }

  private async pinnedGroups(): Promise<PinnedGroupNode[]> {
    if (!this.pinned) return [];
    await this.pinned.ready();
    const files = this.pinned.all();
    return files.map((f) => ({
      kind: 'pinnedGroup',
      id: `pinned:${f.folder.uri.toString()}`,
      folder: f.folder,
      label: files.length > 1 || (vscode.workspace.workspaceFolders?.length ?? 0) > 1 ? `Pinned in ${f.folder.name}` : 'Pinned in Workspace',
    }));
  }

  private pinnedOf(node: PinnedGroupNode): TreeNode[] {
    const file = this.pinned?.all().find((f) => f.folder.uri.toString() === node.folder.uri.toString());
    if (!file) return [];
    const out: TreeNode[] = file.agents.map((agent) => ({ kind: 'pinned', id: `${node.id}/${agent.name}`, folder: file.folder, agent }));
    if (file.problem) {
      out.push({ kind: 'message', id: `${node.id}/problem`, label: file.problem, icon: 'warning', command: { command: 'vscode.open', title: 'Open', arguments: [file.uri] } });
    }
    if (out.length === 0) out.push({ kind: 'message', id: `${node.id}/empty`, label: 'No agents pinned yet', icon: 'pin', command: { command: 'vscode.open', title: 'Open', arguments: [file.uri] } });
    return out;
  }

  private async agentsOf(node: BackendNode): Promise<TreeNode[]> {
    try {
      await node.backend.ready();
      const agents = await node.backend.client.listAllAgents();
      if (agents.length === 0) {
        return [{ kind: 'message', id: `${node.id}/empty`, label: 'No agents yet: Create Agent…', icon: 'add', command: { command: 'sandboxAgents.createAgent', title: 'Create Agent', arguments: [{ backendId: node.backend.id }] } }];
      }
      return agents
        .sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id))
        .map((agent) => ({ kind: 'agent', id: `${node.id}/${agent.id}`, backend: node.backend, agent }));
    } catch (err) {
      return [this.errorNode(node, err)];
    }
  }

  private async sessionsOf(node: AgentNode): Promise<TreeNode[]> {
    try {
      await node.backend.ready();
      const showEnded = setting('agents.showEndedSessions');
      const sessions = (await node.backend.client.listSessions({ agentId: node.agent.id, limit: 20 })).filter(
        (s) => showEnded || !TERMINAL_STATUSES.has(s.status) || s.status === 'failed',
      );
      for (const s of sessions) this.sessions.watch(node.backend, s);
      return sessions.map((session) => ({ kind: 'session', id: `${node.id}/${session.id}`, backend: node.backend, agent: node.agent, session }));
    } catch (err) {
      return [this.errorNode(node, err)];
    }
  }

  private errorNode(parent: TreeNode, err: unknown): MessageNode {
    // Problems with ways out (Docker unreachable…) also get their message with the actions.
    if (err instanceof ActionableError) this.notifier.showError(err);
    const text = toUserMessage(err, this.backends.allSecrets());
    this.log.warn(`${parent.id}: ${text}`);
    return { kind: 'message', id: `${parent.id}/error`, label: text, icon: 'error', tooltip: `${text}\nClick to retry.`, command: { command: 'sandboxAgents.refresh', title: 'Retry' } };
  }

  private adopt(parent: TreeNode | undefined, children: TreeNode[]): TreeNode[] {
    return children.map((child) => {
      const known = this.nodes.get(child.id);
      const node = known && known.kind === child.kind ? Object.assign(known, child) : child;
      this.nodes.set(node.id, node);
      this.parents.set(node.id, parent);
      return node;
    });
  }

  private onSessionChanged(backend: Backend, session: Session): void {
    const agentNode = [...this.nodes.values()].find((n): n is AgentNode => n.kind === 'agent' && n.backend.id === backend.id && n.agent.id === session.agent_id);
    if (!agentNode) {
      // Not shown yet (e.g. agent collapsed or list not loaded): refresh the backend group lazily.
      const group = this.nodes.get(backend.id);
      if (group) this.changed.fire(group);
      return;
    }
    const existing = this.nodes.get(`${agentNode.id}/${session.id}`);
    const visible = setting('agents.showEndedSessions') || !TERMINAL_STATUSES.has(session.status) || session.status === 'failed';
    if (existing && existing.kind === 'session' && visible) {
      existing.session = { ...existing.session, ...session };
      this.changed.fire(existing);
    } else {
      this.changed.fire(agentNode);
    }
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    switch (node.kind) {
      case 'backend': {
        // Local starts collapsed: expanding it is the first local use, which starts the bridge.
        const item = new vscode.TreeItem(node.backend.label, node.backend.kind === 'local' ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.Expanded);
        item.id = node.id;
        item.contextValue = `backend.${node.backend.kind}`;
        item.iconPath = new vscode.ThemeIcon(node.backend.kind === 'platform' ? 'cloud' : 'vm');
        item.tooltip = node.backend.kind === 'local' ? `${node.backend.label}: agents on this machine, served by the local bridge` : `${node.backend.label}\n${node.backend.client.baseUrl}`;
        return item;
      }
      case 'agent': {
        const { agent } = node;
        const harness = harnessInfo(agent.harness_id);
        const item = new vscode.TreeItem(agent.name || agent.id, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = node.id;
        item.description = `${agent.harness_id} · ${agent.model ?? '?'}`;
        item.iconPath = new vscode.ThemeIcon(harness?.icon ?? 'robot');
        item.contextValue = `agent.${harness?.kind ?? 'chat'}`;
        const md = new vscode.MarkdownString(undefined, true);
        md.appendMarkdown(`**${escapeMd(agent.name || agent.id)}**\n\n`);
        md.appendMarkdown(`- Id: \`${agent.id}\`\n- Harness: ${escapeMd(agent.harness_id)} (${harness?.kind ?? 'unknown'})\n- Model: ${escapeMd(agent.model ?? '?')}\n`);
        if (agent.repo_url) md.appendMarkdown(`- Repo: ${escapeMd(agent.repo_url)}${agent.branch ? ` @ ${escapeMd(agent.branch)}` : ''}\n`);
        // Names and hosts only: `env_vars` holds real values and is never shown.
        for (const [name, hosts] of Object.entries(agent.env_var_hosts ?? {})) md.appendMarkdown(`- Secret ${escapeMd(name)} → ${escapeMd(hosts.join(', ') || 'no host')}\n`);
        if (agent.allow_out?.length) md.appendMarkdown(`- Egress allowed to: ${escapeMd(agent.allow_out.join(', '))}\n`);
        item.tooltip = md;
        return item;
      }
      case 'session': {
        const { session } = node;
        const age = relativeAge(parseTime(session.created_at));
        const item = new vscode.TreeItem(session.title && session.title !== 'vscode' ? session.title : shortId(session.id), vscode.TreeItemCollapsibleState.None);
        item.id = node.id;
        item.description = [session.status === 'creating' ? humanPhase(session) : session.status, age, session.unsandboxed ? '⚠ unsandboxed' : ''].filter(Boolean).join(' · ');
        item.iconPath = statusIcon(session.status);
        // `.local`: the bridge's extras (blocked secret use) apply.
        item.contextValue = `session.${session.status}.${harnessInfo(node.agent.harness_id)?.kind ?? 'terminal'}${node.backend.kind === 'local' ? '.local' : ''}`;
        item.tooltip = sessionTooltip(session);
        return item;
      }
      case 'pinnedGroup': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Expanded);
        item.id = node.id;
        item.iconPath = new vscode.ThemeIcon('pinned');
        item.contextValue = 'pinnedGroup';
        item.tooltip = `Agents pinned in ${node.folder.name}/.vscode/sandbox-agents.json`;
        if (!vscode.workspace.isTrusted) item.description = 'Restricted Mode';
        return item;
      }
      case 'pinned': {
        const { agent } = node;
        const harness = harnessInfo(agent.harness);
        const trusted = vscode.workspace.isTrusted;
        const item = new vscode.TreeItem(agent.name, vscode.TreeItemCollapsibleState.None);
        item.id = node.id;
        item.description = [agent.harness, agent.backend ?? 'local', trusted ? '' : 'Restricted Mode'].filter(Boolean).join(' · ');
        item.iconPath = new vscode.ThemeIcon(harness?.icon ?? 'robot');
        item.contextValue = trusted ? 'pinned' : 'pinned.restricted';
        const md = new vscode.MarkdownString(undefined, true);
        md.appendMarkdown(`**${escapeMd(agent.name)}** (pinned)\n\n- Harness: ${escapeMd(agent.harness)}\n- Backend: ${escapeMd(agent.backend ?? 'local')}\n`);
        if (agent.model) md.appendMarkdown(`- Model: ${escapeMd(agent.model)}\n`);
        if (!trusted) md.appendMarkdown(`\n${escapeMd(RESTRICTED_MODE_NOTE)}\n`);
        item.tooltip = md;
        return item;
      }
      case 'message': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.id = node.id;
        item.iconPath = new vscode.ThemeIcon(node.icon);
        item.tooltip = node.tooltip ?? node.label;
        item.command = node.command;
        item.contextValue = 'message';
        return item;
      }
    }
  }
}

function statusIcon(status: string): vscode.ThemeIcon {
  switch (status) {
    case 'ready':
      return new vscode.ThemeIcon('circle-filled', new vscode.ThemeColor('testing.iconPassed'));
    case 'creating':
      return new vscode.ThemeIcon('loading~spin');
    case 'failed':
      return new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed'));
    default:
      return new vscode.ThemeIcon('circle-outline', new vscode.ThemeColor('disabledForeground'));
  }
}

export function sessionTooltip(s: Session): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**Session** \`${s.id}\`\n\n- Status: ${escapeMd(s.status)}\n`);
  if (s.phase) md.appendMarkdown(`- Phase: ${escapeMd(s.phase)}${s.phase_detail ? ` (${escapeMd(s.phase_detail)})` : ''}\n`);
  if (s.failure_reason) md.appendMarkdown(`- Reason: ${escapeMd(s.failure_reason)}\n`);
  const created = parseTime(s.created_at);
  if (created) md.appendMarkdown(`- Started: ${new Date(created).toLocaleString()}\n`);
  const lastSeen = parseTime(s.last_seen_at);
  if (lastSeen && s.idle_timeout_ms && s.status === 'ready') {
    md.appendMarkdown(`- Reaped if idle at: ${new Date(lastSeen + s.idle_timeout_ms).toLocaleTimeString()} (${Math.round(s.idle_timeout_ms / 60000)} min without messages)\n`);
  }
  if (s.unsandboxed) md.appendMarkdown(`- ⚠️ Runs as a host process, **not sandboxed**: it can read your files and reach the network directly (its model and secret stubs still go through the bridge)\n`);
  return md;
}

function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 14)}…` : id;
}

function escapeMd(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
