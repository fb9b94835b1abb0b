/**
 * The Chat view (`sandboxAgents.chat`) for sessions of API harnesses (opencode, claude-agent-sdk),
 * platform or local. The transcript of each session lives here in the extension host (the webview
 * only draws it): loaded from `GET /sessions/{id}/messages`, kept current by the harness's bus events
 * from `message_stream`, reduced by `protocol/chat.ts`. Hiding the view or switching sessions loses
 * nothing; after a reload the history comes back from the backend. Stop aborts the running turn.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { emptyTranscript, FromChatWebview, reduceTranscript, type ChatSessionItem, type ToChatWebview, type Transcript, type TranscriptAction } from '../protocol/chat';
import { harnessInfo } from '../protocol/harnesses';
import { TERMINAL_STATUSES, type Agent, type Attachment, type Session } from '../protocol/platform';
import type { Backend, BackendRegistry } from './backends';
import { Disposable } from './disposable';
import { InvalidInputError, toUserMessage as describeError } from './errors';
import type { Logger } from './logger';

/** One session's conversation, shared by every view of it. */
export class ChatSession {
  transcript: Transcript = emptyTranscript();
  /** When the running turn was sent (the blocking fallback shows elapsed time). */
  startedAt: number | undefined;
  private loaded: Promise<void> | undefined;
  private running: AbortController | undefined;
  private lastSent: { text: string; attachments: Attachment[] } | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  constructor(
    readonly backend: Backend,
    readonly session: Session,
    readonly agent: Agent | undefined,
    private readonly log: Logger,
  ) {}

  get key(): string {
    return `${this.backend.id}/${this.session.id}`;
  }

  private apply(action: TranscriptAction): void {
    const next = reduceTranscript(this.transcript, action);
    if (next === this.transcript) return;
    this.transcript = next;
    this.changed.fire();
  }

  /** The history, once (again after `reload`). */
  load(): Promise<void> {
    this.loaded ??= this.backend.client.messages(this.session.id).then(
      (messages) => this.apply({ type: 'history', messages }),
      (err: unknown) => {
        this.loaded = undefined;
        this.apply({ type: 'failed', message: `Could not load the conversation: ${describeError(err)}` });
      },
    );
    return this.loaded;
  }

  reload(): Promise<void> {
    this.loaded = undefined;
    return this.load();
  }

  /**
   * Sends a message and streams the reply into the transcript. If the stream cannot be opened (a
   * backend without `message_stream`), the blocking `message` call is used and the view shows the
   * elapsed time meanwhile.
   */
  async send(text: string, attachments: Attachment[] = []): Promise<void> {
    if (this.running) throw new Error('A reply is still running: stop it first.');
    if (!text.trim() && attachments.length === 0) return;
    await this.load();
    const abort = new AbortController();
    this.running = abort;
    this.lastSent = { text, attachments };
    this.startedAt = Date.now();
    this.apply({ type: 'sent' });
    const body = { text, ...(attachments.length ? { attachments } : {}) };
    let streamed = false;
    try {
      for await (const frame of this.backend.client.messageStream(this.session.id, body, { signal: abort.signal })) {
        streamed = true;
        if (frame.type === 'harness_event') this.apply({ type: 'event', event: (frame as { event: unknown }).event });
        else if (frame.type === 'error') this.apply({ type: 'failed', message: (frame as { message?: string | null }).message ?? 'the reply stream failed' });
        else if (frame.type === 'done') break;
      }
      if (!abort.signal.aborted) await this.reload();
    } catch (err) {
      if (abort.signal.aborted) return;
      if (!streamed) {
        this.log.info(`message_stream unavailable for ${this.session.id} (${describeError(err)}): waiting for the whole reply`);
        try {
          await this.backend.client.message(this.session.id, body, { signal: abort.signal });
          await this.reload();
        } catch (err2) {
          if (!abort.signal.aborted) this.apply({ type: 'failed', message: describeError(err2) });
        }
      } else this.apply({ type: 'failed', message: describeError(err) });
    } finally {
      if (this.running === abort) this.running = undefined;
      this.startedAt = undefined;
      if (this.transcript.busy && !abort.signal.aborted) this.apply({ type: 'event', event: { type: 'session.idle', properties: {} } });
      this.changed.fire();
    }
  }

  /** Stop: the harness aborts the turn; what arrived stays. */
  async abort(): Promise<void> {
    const running = this.running;
    this.apply({ type: 'aborted' });
    running?.abort();
    this.running = undefined;
    await this.backend.client.abortSession(this.session.id).catch((err: unknown) => this.log.warn(`abort ${this.session.id}: ${describeError(err)}`));
    await this.reload();
  }

  /** Sends the last message again (after an error). */
  retry(): Promise<void> {
    return this.lastSent ? this.send(this.lastSent.text, this.lastSent.attachments) : Promise.resolve();
  }

  dispose(): void {
    this.running?.abort();
    this.changed.dispose();
  }
}

/** The Chat view: a session picker, the transcript, the composer. */
export class ChatViewProvider extends Disposable implements vscode.WebviewViewProvider {
  static readonly viewType = 'sandboxAgents.chat';
  private view: vscode.WebviewView | undefined;
  private readonly chats = new Map<string, ChatSession>();
  private selected: string | undefined;
  private listening: vscode.Disposable | undefined;
  private ready = false;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly backends: BackendRegistry,
    private readonly log: Logger,
    private readonly startSession: (backend: Backend, agent: Agent) => Promise<Session>,
  ) {
    super();
    // Signed in or out, Local on or off: the picker follows.
    this.register(backends.onDidChange(() => void this.postSessions()));
  }

  /** The conversation of a session (made on first use). */
  chat(backend: Backend, session: Session, agent?: Agent): ChatSession {
    const key = `${backend.id}/${session.id}`;
    let chat = this.chats.get(key);
    if (!chat) {
      chat = new ChatSession(backend, session, agent, this.log);
      this.chats.set(key, chat);
      chat.onDidChange(() => {
        if (this.selected === key) this.postSoon(chat!);
      });
    }
    return chat;
  }

  get current(): ChatSession | undefined {
    return this.selected ? this.chats.get(this.selected) : undefined;
  }

  /** Open Chat: shows the view with this session selected. */
  async open(backend: Backend, session: Session, agent?: Agent): Promise<ChatSession> {
    const chat = this.chat(backend, session, agent);
    this.selected = chat.key;
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
    void chat.load();
    await this.postSessions();
    this.postTranscript(chat);
    return chat;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    view.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview')] };
    view.webview.html = this.html(view.webview);
    this.listening?.dispose();
    this.listening = view.webview.onDidReceiveMessage((raw: unknown) => void this.receive(raw));
    view.onDidDispose(() => {
      if (this.view === view) this.view = undefined;
    });
  }

  private async receive(raw: unknown): Promise<void> {
    const parsed = FromChatWebview.safeParse(raw);
    if (!parsed.success) {
      this.log.warn(`chat view: ignored a malformed message (${parsed.error.issues[0]?.message ?? 'invalid'})`);
      return;
    }
    const msg = parsed.data;
    try {
      switch (msg.type) {
        case 'ready':
          this.ready = true;
          await this.postSessions();
          if (this.current) {
            void this.current.load();
            this.postTranscript(this.current);
          }
          break;
        case 'select': {
          this.selected = msg.key;
          const chat = this.current ?? (await this.resolveKey(msg.key));
          if (chat) {
            void chat.load();
            this.postTranscript(chat);
          }
          break;
        }
        case 'send':
          await this.current?.send(msg.text, msg.attachments);
          break;
        case 'abort':
          await this.current?.abort();
          break;
        case 'retry':
          await this.current?.retry();
          break;
        case 'startSession': {
          const chat = this.current;
          if (!chat?.agent) break;
          const session = await this.startSession(chat.backend, chat.agent);
          await this.open(chat.backend, session, chat.agent);
          break;
        }
        case 'copy':
          await vscode.env.clipboard.writeText(msg.text);
          break;
        case 'insert': {
          const editor = vscode.window.activeTextEditor;
          if (!editor) this.post({ type: 'notice', message: 'Open an editor to insert the code at its cursor.' });
          else await editor.edit((e) => e.replace(editor.selection, msg.text));
          break;
        }
      }
    } catch (err) {
      this.post({ type: 'notice', message: describeError(err) });
    }
  }

  /** A session chosen in the picker that has no conversation object yet. */
  private async resolveKey(key: string): Promise<ChatSession | undefined> {
    const slash = key.indexOf('/');
    const backend = this.backends.get(key.slice(0, slash));
    if (!backend) return undefined;
    const session = await backend.client.getSession(key.slice(slash + 1));
    const agent = session.agent_id ? await backend.client.getAgent(session.agent_id).catch(() => undefined) : undefined;
    return this.chat(backend, session, agent);
  }

  /**
   * Send Selection to Agent: the editor's selection with its file, language and lines, to a chat
   * session (the one given, else the one shown, else one picked).
   */
  async sendSelection(ref?: { backendId?: string; sessionId?: string }): Promise<ChatSession | undefined> {
    const editor = vscode.window.activeTextEditor;
    const selection = editor?.selection;
    if (!editor || !selection || selection.isEmpty) throw new InvalidInputError('Select some code in an editor first, then Send Selection to Agent.');
    const code = editor.document.getText(selection);
    const path = vscode.workspace.asRelativePath(editor.document.uri, true);
    const lang = editor.document.languageId;
    const first = selection.start.line + 1;
    const last = selection.end.character === 0 && selection.end.line > selection.start.line ? selection.end.line : selection.end.line + 1;
    const fence = code.includes('```') ? '~~~~' : '```';
    const text = `From \`${path}\` (${lang}), ${first === last ? `line ${first}` : `lines ${first}–${last}`}:\n\n${fence}${lang}\n${code}${code.endsWith('\n') ? '' : '\n'}${fence}\n`;
    let chat: ChatSession | undefined;
    if (ref?.backendId && ref.sessionId) chat = await this.resolveKey(`${ref.backendId}/${ref.sessionId}`);
    else if (this.current && this.current.session.status === 'ready') chat = this.current;
    else {
      const items = (await this.sessionItems()).filter((i) => i.ready);
      if (items.length === 0) throw new InvalidInputError('No chat session is running: start an opencode or Claude Agent SDK agent first (Open Chat).');
      const picked = items.length === 1 ? items[0] : await vscode.window.showQuickPick(items.map((i) => ({ ...i, label: i.label, description: i.description })), { title: 'Send Selection to Agent', placeHolder: 'Which chat session?' });
      if (!picked) return undefined;
      chat = await this.resolveKey(picked.key);
    }
    if (!chat) throw new InvalidInputError('That chat session is gone.');
    await this.open(chat.backend, chat.session, chat.agent);
    await chat.send(text);
    return chat;
  }

  /** Sessions of API harnesses on every backend, live ones first. */
  private async postSessions(): Promise<void> {
    if (!this.view || !this.ready) return;
    this.post({ type: 'sessions', items: await this.sessionItems(), selected: this.selected });
  }

  private async sessionItems(): Promise<ChatSessionItem[]> {
    const items: ChatSessionItem[] = [];
    for (const backend of this.backends.all()) {
      try {
        const agents = new Map((await backend.client.listAllAgents()).map((a) => [a.id, a]));
        for (const s of await backend.client.listSessions({ limit: 50 })) {
          const agent = s.agent_id ? agents.get(s.agent_id) : undefined;
          if (!agent || harnessInfo(agent.harness_id)?.kind !== 'chat') continue;
          items.push({ key: `${backend.id}/${s.id}`, label: `${agent.name || agent.id} · ${s.title || s.id.slice(0, 8)}`, description: `${backend.label} · ${s.status}`, ready: s.status === 'ready' });
        }
      } catch (err) {
        this.log.warn(`chat view: sessions of ${backend.label}: ${describeError(err)}`);
      }
    }
    for (const chat of this.chats.values()) {
      if (!items.some((i) => i.key === chat.key)) items.push({ key: chat.key, label: `${chat.agent?.name ?? chat.session.agent_id ?? '?'} · ${chat.session.title || chat.session.id.slice(0, 8)}`, description: `${chat.backend.label} · ${chat.session.status}`, ready: !TERMINAL_STATUSES.has(chat.session.status) });
    }
    items.sort((a, b) => Number(b.ready) - Number(a.ready));
    return items;
  }

  private postTimer: NodeJS.Timeout | undefined;
  /** Streamed deltas come many a second: the view gets the transcript at most every 30 ms. */
  private postSoon(_chat: ChatSession): void {
    this.postTimer ??= setTimeout(() => {
      this.postTimer = undefined;
      const current = this.current;
      if (current) this.postTranscript(current);
    }, 30);
  }

  private postTranscript(chat: ChatSession): void {
    this.post({ type: 'transcript', key: chat.key, transcript: chat.transcript, startedAt: chat.startedAt });
  }

  private post(msg: ToChatWebview): void {
    if (this.view && this.ready) void this.view.webview.postMessage(msg);
  }

  private html(webview: vscode.Webview): string {
    const nonce = randomBytes(16).toString('base64');
    const asset = (file: string) => webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', file)).toString();
    // No inline script or style from replies: markdown is sanitised and the CSP allows only our files.
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'nonce-${nonce}'; style-src ${webview.cspSource} 'nonce-${nonce}'; font-src ${webview.cspSource}; img-src ${webview.cspSource} data:;">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset('chat.css')}" nonce="${nonce}">
<title>Chat</title>
</head>
<body>
<div id="app" role="application" aria-label="Chat with a sandboxed agent"></div>
<script nonce="${nonce}" src="${asset('chat.js')}"></script>
</body>
</html>`;
  }

  override dispose(): void {
    for (const chat of this.chats.values()) chat.dispose();
    this.listening?.dispose();
    super.dispose();
  }
}
