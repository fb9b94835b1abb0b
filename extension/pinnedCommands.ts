/**
 * Commands on pinned agents: "Start" makes sure the agent exists on its backend as pinned (extension/
 * pinnedEnsure.ts), then starts a session through the usual start flow (its progress and cancel).
 */
import * as vscode from 'vscode';
import type { Agent, Session } from '../protocol/platform';
import type { PinnedAgent } from '../protocol/pinned';
import type { AgentCommands } from './agentCommands';
import { RESTRICTED_MODE_NOTE, type AgentNode, type PinnedNode } from './agentsTree';
import { pinEdit, pinnedFromAgent } from './pinnedEdit';
import { pinnedFileUri } from './workspaceAgents';
import type { Backend, BackendRegistry } from './backends';
import { CancelledError, InvalidInputError } from './errors';
import type { Logger } from './logger';
import { desiredBody, ensureAgent, type EnsureQuestions, type EnsureResult, type FieldChange } from './pinnedEnsure';
import type { Secrets } from './secrets';
import type { WorkspaceAgents } from './workspaceAgents';

/** A pinned agent, from the tree or by folder and name (automation, tests). */
export type PinnedArg = PinnedNode | { folder?: string; name: string; confirmed?: boolean } | undefined;

export class PinnedCommands {
  constructor(
    private readonly pinned: WorkspaceAgents,
    private readonly backends: BackendRegistry,
    private readonly secrets: Secrets,
    private readonly agents: AgentCommands,
    private readonly log: Logger,
  ) {}

  /** Ensure, then start a session. */
  async start(arg: PinnedArg): Promise<Session | undefined> {
    const ensured = await this.sync(arg);
    if (!ensured) return undefined;
    return this.agents.startSession({ backendId: ensured.backend.id, agentId: ensured.agent.id });
  }

  /** Ensure only: the agent on its backend matches the file. */
  async sync(arg: PinnedArg): Promise<{ backend: Backend; agent: Agent } | undefined> {
    if (!vscode.workspace.isTrusted) throw new InvalidInputError(RESTRICTED_MODE_NOTE);
    const { folder, agent: pinned } = await this.resolve(arg);
    const backend = await this.backendFor(pinned);
    const prompt = await this.prompt(folder, pinned);
    const secretValues = await this.secretValues(pinned);
    const body = desiredBody(pinned, { prompt, secretValues, workspacePath: folder.uri.scheme === 'file' ? folder.uri.fsPath : undefined }, backend.kind);
    const confirmed = !!arg && !('kind' in arg) && !!arg.confirmed;
    const questions: EnsureQuestions = {
      confirmRecreate: async (plan) =>
        confirmed ||
        (await ask(
          `${pinned.name}: ${plan.immutable.map((c) => c.field).join(' and ')} cannot change in place. Delete the agent on ${backend.label} and create it again?`,
          plan.changes,
          'Recreate Agent',
        )),
      confirmChange: async (plan) => confirmed || (await ask(`${pinned.name} on ${backend.label} is shared: change it to match ${folder.name}/.vscode/sandbox-agents.json?`, plan.changes, 'Update Agent')),
    };
    const result: EnsureResult = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Syncing ${pinned.name} with ${backend.label}`, cancellable: true },
      async (_progress, token) => {
        const abort = new AbortController();
        const sub = token.onCancellationRequested(() => abort.abort());
        try {
          await backend.ready(abort.signal);
          return await ensureAgent(backend.client, body, questions, backend.kind === 'platform', abort.signal);
        } finally {
          sub.dispose();
        }
      },
    );
    if (result.outcome === 'declined') return undefined;
    this.log.info(`${pinned.name}: ${result.outcome} on ${backend.label} (${result.agent.id})`);
    return { backend, agent: result.agent };
  }

  /** Pin Agent to Workspace: writes (or replaces) the agent's entry in a folder's file, comments kept. */
  async pin(arg: AgentNode | { backendId: string; agentId: string; folder?: string } | undefined): Promise<vscode.Uri | undefined> {
    let backend: Backend | undefined;
    let agent: Agent;
    if (arg && 'kind' in arg) ({ backend, agent } = arg);
    else {
      await this.backends.ready();
      if (arg) {
        backend = this.backends.get(arg.backendId);
        if (!backend) throw new InvalidInputError(`No backend ${arg.backendId}.`);
        agent = await backend.client.getAgent(arg.agentId);
      } else {
        const items: (vscode.QuickPickItem & { backend: Backend; agent: Agent })[] = [];
        for (const b of this.backends.all()) {
          try {
            await b.ready();
            for (const a of await b.client.listAllAgents()) items.push({ label: a.name || a.id, description: `${a.harness_id} · ${b.label}`, backend: b, agent: a });
          } catch (err) {
            this.log.warn(`${b.label}: ${(err as Error).message}`);
          }
        }
        if (items.length === 0) throw new InvalidInputError('No agents to pin: create one first (Sandbox Agents: Create Agent).');
        const pick = await vscode.window.showQuickPick(items, { title: 'Pin Agent to Workspace' });
        if (!pick) return undefined;
        ({ backend, agent } = pick);
      }
    }
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (folders.length === 0) throw new InvalidInputError('Open a folder first: pinned agents live in its .vscode/sandbox-agents.json.');
    const named = arg && !('kind' in arg) && arg.folder ? folders.find((f) => f.name === arg.folder) : undefined;
    const folder = named ?? (folders.length === 1 ? folders[0] : (await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Pin the agent in which folder?' })));
    if (!folder) return undefined;
    const entry = pinnedFromAgent(agent, backend!.kind === 'local' ? 'local' : 'platform');
    const uri = pinnedFileUri(folder);
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    if (open?.isDirty) {
      // Unsaved edits in an editor: edit that buffer (undoable), and leave saving to the person.
      const text = open.getText();
      const edit = new vscode.WorkspaceEdit();
      edit.replace(uri, new vscode.Range(open.positionAt(0), open.positionAt(text.length)), pinEdit(text, entry));
      if (!(await vscode.workspace.applyEdit(edit))) throw new Error(`Could not edit ${uri.fsPath}: save or revert it, then pin again.`);
    } else {
      let text = '';
      try {
        text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
      } catch (err) {
        if (!(err instanceof vscode.FileSystemError && err.code === 'FileNotFound')) throw err;
      }
      await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(pinEdit(text, entry)));
    }
    const secretNames = Object.keys(entry.secrets ?? {});
    const note = secretNames.length > 0 ? ` Its secrets (${secretNames.join(', ')}) are listed by name only; each is asked for on first start.` : '';
    void vscode.window.showInformationMessage(`Pinned ${entry.name} in ${folder.name}/.vscode/sandbox-agents.json.${note}`);
    return uri;
  }

  private async resolve(arg: PinnedArg): Promise<{ folder: vscode.WorkspaceFolder; agent: PinnedAgent }> {
    await this.pinned.ready();
    if (arg && 'kind' in arg) return { folder: arg.folder, agent: arg.agent };
    const entries = this.pinned.entries();
    if (arg) {
      const hit = entries.find((e) => e.agent.name === arg.name && (!arg.folder || e.folder.name === arg.folder));
      if (!hit) throw new InvalidInputError(`No pinned agent named "${arg.name}" in .vscode/sandbox-agents.json.`);
      return hit;
    }
    if (entries.length === 0) throw new InvalidInputError('No agents are pinned in this workspace: add one to .vscode/sandbox-agents.json or use "Pin Agent to Workspace".');
    const pick = await vscode.window.showQuickPick(
      entries.map((e) => ({ label: e.agent.name, description: `${e.agent.harness} · ${e.agent.backend ?? 'local'}`, detail: (vscode.workspace.workspaceFolders?.length ?? 0) > 1 ? e.folder.name : undefined, entry: e })),
      { title: 'Start Pinned Agent' },
    );
    if (!pick) throw new CancelledError();
    return pick.entry;
  }

  private async backendFor(pinned: PinnedAgent): Promise<Backend> {
    await this.backends.ready();
    const kind = pinned.backend ?? 'local';
    if (kind === 'local') {
      const local = this.backends.all().find((b) => b.kind === 'local');
      if (!local) throw new InvalidInputError(`${pinned.name} runs locally, but local sandboxes are turned off: enable the setting sandboxAgents.local.enabled.`);
      return local;
    }
    const platform = this.backends.all().find((b) => b.kind === 'platform');
    if (kind === 'platform') {
      if (!platform) throw new InvalidInputError(`${pinned.name} runs on the agent platform: sign in first (Sandbox Agents: Sign In to Agent Platform).`);
      return platform;
    }
    const url = vscode.workspace.getConfiguration('sandboxAgents').get<Record<string, string>>('platforms', {})[kind];
    if (!url) throw new InvalidInputError(`${pinned.name} runs on "${kind}", which is not in the setting sandboxAgents.platforms: add it (name → URL).`);
    if (platform && platform.client.baseUrl === url.replace(/\/+$/, '')) return platform;
    throw new InvalidInputError(`${pinned.name} runs on "${kind}" (${url}): sign in to that platform first (Sandbox Agents: Sign In to Agent Platform).`);
  }

  private async prompt(folder: vscode.WorkspaceFolder, pinned: PinnedAgent): Promise<string | undefined> {
    if (pinned.prompt === undefined || typeof pinned.prompt === 'string') return pinned.prompt;
    const uri = vscode.Uri.joinPath(folder.uri, pinned.prompt.file);
    try {
      return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    } catch (err) {
      throw new InvalidInputError(`${pinned.name}: the prompt file ${pinned.prompt.file} could not be read (${(err as Error).message}). Fix the path in .vscode/sandbox-agents.json.`);
    }
  }

  /** Values from SecretStorage; a missing one is asked for once and kept there. */
  private async secretValues(pinned: PinnedAgent): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [name, hosts] of Object.entries(pinned.secrets ?? {})) {
      let value = await this.secrets.getPinnedSecret(name);
      if (value === undefined) {
        value = await vscode.window.showInputBox({
          title: `Secret ${name} for ${pinned.name}`,
          prompt: `Sent only to ${hosts.join(', ') || '(no host)'}; kept in VS Code's secret storage, never in the file.`,
          password: true,
          ignoreFocusOut: true,
          validateInput: (v) => (v.trim() === '' ? 'Enter a value' : undefined),
        });
        if (value === undefined) throw new CancelledError();
        await this.secrets.setPinnedSecret(name, value);
      }
      out[name] = value;
    }
    return out;
  }
}

async function ask(question: string, changes: FieldChange[], action: string): Promise<boolean> {
  const detail = changes.map((c) => `${c.field}: ${c.from} → ${c.to}`).join('\n');
  return (await vscode.window.showWarningMessage(question, { modal: true, detail }, action)) === action;
}
