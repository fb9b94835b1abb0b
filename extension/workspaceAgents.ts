/**
 * The agents pinned in each workspace folder's `.vscode/sandbox-agents.json` (multi-root: one file per
 * folder), loaded when a folder opens and reloaded when its file changes; plus the diagnostics pass
 * (extension/pinnedDiagnostics.ts) on every open copy of such a file.
 */
import * as vscode from 'vscode';
import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { PINNED_FILE, PinnedAgent, PinnedFile } from '../protocol/pinned';
import { SECTION } from './config';
import { Disposable } from './disposable';
import type { Logger } from './logger';
import { pinnedDiagnostics, positionAt } from './pinnedDiagnostics';

export interface PinnedEntry {
  folder: vscode.WorkspaceFolder;
  agent: PinnedAgent;
}

/** One folder's file: its agents, or why it could not be read (shown in the tree, never thrown). */
export interface PinnedFolder {
  folder: vscode.WorkspaceFolder;
  uri: vscode.Uri;
  agents: PinnedAgent[];
  problem?: string;
}

/** Names configured in the setting `sandboxAgents.platforms` (name → URL). */
export function configuredPlatforms(): string[] {
  const value = vscode.workspace.getConfiguration(SECTION).get<Record<string, unknown>>('platforms', {});
  return value && typeof value === 'object' ? Object.keys(value) : [];
}

export function pinnedFileUri(folder: vscode.WorkspaceFolder): vscode.Uri {
  return vscode.Uri.joinPath(folder.uri, PINNED_FILE);
}

export class WorkspaceAgents extends Disposable {
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;
  private readonly folders = new Map<string, PinnedFolder>();
  private readonly watchers = new Map<string, vscode.Disposable>();
  private readonly diagnostics = this.register(vscode.languages.createDiagnosticCollection('sandboxAgents.pinned'));
  private loading: Promise<void> = Promise.resolve();

  constructor(private readonly log: Logger) {
    super();
    this.register(vscode.workspace.onDidChangeWorkspaceFolders(() => this.reloadAll()));
    this.register(vscode.workspace.onDidOpenTextDocument((d) => this.check(d)));
    this.register(vscode.workspace.onDidChangeTextDocument((e) => this.check(e.document)));
    this.register(vscode.workspace.onDidCloseTextDocument((d) => this.diagnostics.delete(d.uri)));
    this.register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(`${SECTION}.platforms`)) for (const d of vscode.workspace.textDocuments) this.check(d);
      }),
    );
    this.register({ dispose: () => this.watchers.forEach((w) => w.dispose()) });
    for (const d of vscode.workspace.textDocuments) this.check(d);
    this.reloadAll();
  }

  /** Resolves once every folder's file has been read (after the latest change). */
  ready(): Promise<void> {
    return this.loading;
  }

  /** Folders with a pinned file, in workspace order. */
  all(): PinnedFolder[] {
    const order = vscode.workspace.workspaceFolders ?? [];
    return order.map((f) => this.folders.get(f.uri.toString())).filter((f): f is PinnedFolder => !!f);
  }

  entries(): PinnedEntry[] {
    return this.all().flatMap((f) => f.agents.map((agent) => ({ folder: f.folder, agent })));
  }

  private reloadAll(): void {
    const folders = vscode.workspace.workspaceFolders ?? [];
    const keep = new Set(folders.map((f) => f.uri.toString()));
    for (const [key, watcher] of this.watchers) {
      if (!keep.has(key)) {
        watcher.dispose();
        this.watchers.delete(key);
        this.folders.delete(key);
      }
    }
    for (const folder of folders) {
      const key = folder.uri.toString();
      if (!this.watchers.has(key)) {
        const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, PINNED_FILE));
        const reload = () => this.queue(() => this.load(folder));
        watcher.onDidCreate(reload);
        watcher.onDidChange(reload);
        watcher.onDidDelete(reload);
        this.watchers.set(key, watcher);
      }
    }
    this.queue(async () => {
      await Promise.all(folders.map((f) => this.load(f)));
    });
  }

  /** Loads run one after another, so a slow read never overwrites a newer one. */
  private queue(fn: () => Promise<void>): void {
    this.loading = this.loading.then(fn).then(
      () => this.changed.fire(),
      (err) => this.log.error(`pinned agents: ${String(err)}`),
    );
  }

  private async load(folder: vscode.WorkspaceFolder): Promise<void> {
    const key = folder.uri.toString();
    const uri = pinnedFileUri(folder);
    let text: string;
    try {
      text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    } catch (err) {
      if (err instanceof vscode.FileSystemError && err.code === 'FileNotFound') this.folders.delete(key);
      else this.folders.set(key, { folder, uri, agents: [], problem: `Could not read ${PINNED_FILE}: ${(err as Error).message}` });
      return;
    }
    this.folders.set(key, { folder, uri, ...parsePinned(text) });
    this.log.info(`${folder.name}: ${this.folders.get(key)!.agents.length} pinned agent(s)${this.folders.get(key)!.problem ? ` (${this.folders.get(key)!.problem})` : ''}`);
  }

  private check(doc: vscode.TextDocument): void {
    const folder = vscode.workspace.getWorkspaceFolder(doc.uri);
    if (!folder || doc.uri.toString() !== pinnedFileUri(folder).toString()) return;
    const text = doc.getText();
    const at = (offset: number) => {
      const p = positionAt(text, offset);
      return new vscode.Position(p.line, p.character);
    };
    this.diagnostics.set(
      doc.uri,
      pinnedDiagnostics(text, configuredPlatforms()).map((d) => {
        const diag = new vscode.Diagnostic(new vscode.Range(at(d.start), at(d.end)), d.message, d.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning);
        diag.source = 'Sandbox Agents';
        if (d.related) diag.relatedInformation = [new vscode.DiagnosticRelatedInformation(new vscode.Location(doc.uri, new vscode.Range(at(d.related.start), at(d.related.end))), d.related.message)];
        return diag;
      }),
    );
  }
}

/**
 * The agents of a file's text. A file that does not parse or match the schema yields the agents that do
 * (so one typo hides one agent, not the team's list) and a problem naming the first error.
 */
export function parsePinned(text: string): { agents: PinnedAgent[]; problem?: string } {
  const errors: ParseError[] = [];
  const value = parse(text, errors, { allowTrailingComma: true });
  if (errors.length > 0) {
    const p = positionAt(text, errors[0].offset);
    return { agents: [], problem: `${PINNED_FILE} line ${p.line + 1}: ${printParseErrorCode(errors[0].error)}. Open the file to fix it.` };
  }
  const whole = PinnedFile.safeParse(value);
  if (whole.success) return { agents: whole.data.agents };
  const list: unknown[] = value && typeof value === 'object' && Array.isArray((value as { agents?: unknown }).agents) ? (value as { agents: unknown[] }).agents : [];
  const agents = list.map((a) => PinnedAgent.safeParse(a)).filter((r) => r.success).map((r) => r.data!);
  const issue = whole.error.issues[0];
  return { agents, problem: `${PINNED_FILE}: ${issue.path.join('.') || '(top level)'}: ${issue.message}. Open the file to see every error.` };
}
