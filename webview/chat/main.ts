/**
 * The Chat view's page: draws the transcript the extension host keeps (`extension/chat.ts`) and sends
 * what the user does. Markdown from replies is rendered with marked and sanitised with DOMPurify
 * before it touches the DOM (no script, event handler or `javascript:` URL from a reply runs; the CSP
 * allows only this file's script anyway). Only messages whose content changed are drawn again, so a
 * streaming reply re-renders itself, not the thread. View state (draft, scroll, selection) goes
 * through `setState`, so hiding the view loses nothing.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import DOMPurify from 'dompurify';
import { marked } from 'marked';
import { attachmentProblem, type ChatSessionItem, type ToChatWebview, type Transcript, type TranscriptMessage } from '../../protocol/chat';
import type { FromChatWebview } from '../../protocol/chat';
import './chat.css';

interface VsCodeApi {
  postMessage(message: FromChatWebview): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

interface ViewState {
  draft: string;
  selected?: string;
  scrollTop?: number;
  lastSent?: string;
}

const api = acquireVsCodeApi();
const state: ViewState = { draft: '', ...((api.getState() as ViewState | undefined) ?? {}) };
const save = () => api.setState(state);

const app =
  document.getElementById('app') ??
  document.body.appendChild(Object.assign(document.createElement('div'), { id: 'app' }));
app.innerHTML = `
  <div class="picker"><vscode-single-select id="sessions" aria-label="Session"></vscode-single-select></div>
  <div id="thread" class="thread" role="log" aria-live="polite" aria-label="Conversation"></div>
  <div id="status" class="status" role="status"></div>
  <div id="attachments" class="attachments" aria-label="Attached images"></div>
  <div class="composer">
    <vscode-textarea id="input" rows="3" resize="vertical" placeholder="Message the agent (Enter sends, Shift+Enter for a new line)" aria-label="Message"></vscode-textarea>
    <div class="actions">
      <vscode-button id="send" aria-label="Send">Send</vscode-button>
      <vscode-button id="stop" secondary aria-label="Stop the reply" hidden>Stop</vscode-button>
    </div>
  </div>`;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const thread = $<HTMLDivElement>('thread');
const statusLine = $<HTMLDivElement>('status');
const input = $<HTMLElement & { value: string }>('input');
const picker = $<HTMLElement & { value: string }>('sessions');
const sendButton = $<HTMLElement>('send');
const stopButton = $<HTMLElement>('stop');
const attachmentList = $<HTMLDivElement>('attachments');

let transcript: Transcript | undefined;
let currentKey: string | undefined;
let sessions: ChatSessionItem[] = [];
let startedAt: number | undefined;
let pending: { name: string; mime_type: string; base64: string }[] = [];
/** message id → the JSON drawn last, so unchanged messages are not drawn again. */
const drawn = new Map<string, string>();

input.value = state.draft;
input.addEventListener('input', () => {
  state.draft = input.value;
  save();
});
thread.addEventListener('scroll', () => {
  state.scrollTop = thread.scrollTop;
  save();
});

function send(): void {
  const text = input.value;
  if (!text.trim() && pending.length === 0) return;
  if (transcript?.busy) return;
  api.postMessage({ type: 'send', text, attachments: pending });
  state.lastSent = text;
  state.draft = '';
  input.value = '';
  pending = [];
  drawAttachments();
  save();
}

input.addEventListener('keydown', (e: KeyboardEvent) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  } else if (e.key === 'ArrowUp' && !input.value && state.lastSent) {
    e.preventDefault();
    input.value = state.lastSent;
  }
});
sendButton.addEventListener('click', send);
stopButton.addEventListener('click', () => api.postMessage({ type: 'abort' }));
picker.addEventListener('change', () => {
  state.selected = picker.value;
  save();
  api.postMessage({ type: 'select', key: picker.value });
});

// Images pasted or dropped go along as attachments (checked before they are read).
async function addFiles(files: File[]): Promise<void> {
  const problem = attachmentProblem(files.map((f) => ({ name: f.name, mimeType: f.type, bytes: f.size })), pending.length);
  if (problem) {
    showStatus(problem, true);
    return;
  }
  for (const f of files) {
    const bytes = new Uint8Array(await f.arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    pending.push({ name: f.name || 'pasted image', mime_type: f.type, base64: btoa(bin) });
  }
  drawAttachments();
}
document.addEventListener('paste', (e: ClipboardEvent) => {
  const files = [...(e.clipboardData?.files ?? [])];
  if (files.length) {
    e.preventDefault();
    void addFiles(files);
  }
});
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e: DragEvent) => {
  e.preventDefault();
  void addFiles([...(e.dataTransfer?.files ?? [])]);
});

function drawAttachments(): void {
  attachmentList.replaceChildren(
    ...pending.map((a, i) => {
      const chip = document.createElement('span');
      chip.className = 'chip';
      chip.textContent = a.name;
      const remove = document.createElement('button');
      remove.textContent = '×';
      remove.setAttribute('aria-label', `Remove ${a.name}`);
      remove.addEventListener('click', () => {
        pending.splice(i, 1);
        drawAttachments();
      });
      chip.append(remove);
      return chip;
    }),
  );
}

function showStatus(text: string, error = false): void {
  statusLine.textContent = text;
  statusLine.classList.toggle('error', error);
}

/** Markdown → sanitised HTML; code blocks get Copy and Insert buttons. */
function markdown(text: string): DocumentFragment {
  const html = DOMPurify.sanitize(marked.parse(text, { async: false, gfm: true, breaks: false }), { USE_PROFILES: { html: true } });
  const tpl = document.createElement('template');
  tpl.innerHTML = html;
  for (const pre of tpl.content.querySelectorAll('pre')) {
    const code = pre.textContent ?? '';
    const bar = document.createElement('div');
    bar.className = 'code-actions';
    for (const [label, type] of [
      ['Copy', 'copy'],
      ['Insert', 'insert'],
    ] as const) {
      const b = document.createElement('button');
      b.textContent = label;
      b.setAttribute('aria-label', `${label} code`);
      b.addEventListener('click', () => api.postMessage({ type, text: code }));
      bar.append(b);
    }
    pre.before(bar);
  }
  return tpl.content;
}

function part(p: Record<string, unknown>): HTMLElement {
  const el = document.createElement('div');
  el.className = `part part-${String(p.type)}`;
  if (p.type === 'text') el.append(markdown(String(p.text ?? '')));
  else if (p.type === 'reasoning') {
    const details = document.createElement('details');
    const summary = document.createElement('summary');
    summary.textContent = 'Reasoning';
    const body = document.createElement('div');
    body.textContent = String(p.text ?? '');
    details.append(summary, body);
    el.append(details);
  } else if (p.type === 'tool') {
    const st = (p.state ?? {}) as { status?: string; input?: unknown; output?: unknown; error?: unknown; title?: string };
    const details = document.createElement('details');
    const summary = document.createElement('summary');
    summary.textContent = `${String(p.tool ?? 'tool')}${st.title ? ` — ${st.title}` : ''} · ${st.status ?? 'running'}`;
    summary.className = `tool-${st.status ?? 'running'}`;
    const io = document.createElement('pre');
    io.textContent = [`input: ${JSON.stringify(st.input ?? {}, null, 2)}`, st.output !== undefined ? `output: ${typeof st.output === 'string' ? st.output : JSON.stringify(st.output, null, 2)}` : '', st.error !== undefined ? `error: ${String(st.error)}` : ''].filter(Boolean).join('\n');
    details.append(summary, io);
    el.append(details);
  } else return el; // step markers and other parts have nothing to show
  return el;
}

function messageElement(m: TranscriptMessage): HTMLElement {
  const el = document.createElement('article');
  el.className = `message ${m.info.role}`;
  el.dataset.id = m.info.id;
  el.setAttribute('aria-label', m.info.role === 'user' ? 'You' : 'Agent');
  for (const p of m.parts) {
    const child = part(p as Record<string, unknown>);
    if (child.childNodes.length) el.append(child);
  }
  const t = m.info.tokens;
  if (m.info.role === 'assistant' && (t || m.info.cost)) {
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = [t ? `${t.input ?? 0} in · ${t.output ?? 0} out tokens` : '', typeof m.info.cost === 'number' ? `$${m.info.cost.toFixed(4)}` : ''].filter(Boolean).join(' · ');
    el.append(meta);
  }
  return el;
}

/** How many of the latest messages are drawn; scrolling to the top draws more (a long thread opens fast). */
const PAGE = 150;
let shown = PAGE;
const elements = new Map<string, HTMLElement>();
const earlier = document.createElement('button');
earlier.className = 'earlier';
earlier.textContent = 'Show earlier messages';
earlier.addEventListener('click', () => showEarlier());

function showEarlier(): void {
  if (!transcript || !currentKey || shown >= transcript.messages.length) return;
  const fromBottom = thread.scrollHeight - thread.scrollTop;
  shown += PAGE;
  drawTranscript(transcript, currentKey);
  thread.scrollTop = thread.scrollHeight - fromBottom;
}
thread.addEventListener('scroll', () => {
  if (thread.scrollTop < 40) showEarlier();
});

function drawTranscript(t: Transcript, key: string): void {
  const atBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
  if (key !== currentKey) {
    thread.replaceChildren();
    drawn.clear();
    elements.clear();
    shown = PAGE;
    currentKey = key;
  }
  const visible = t.messages.slice(Math.max(0, t.messages.length - shown));
  const ids = new Set(visible.map((m) => m.info.id));
  for (const [id, el] of elements) {
    if (!ids.has(id)) {
      el.remove();
      elements.delete(id);
      drawn.delete(id);
    }
  }
  let previous: Element | null = null;
  if (visible.length < t.messages.length) {
    if (earlier.parentElement !== thread || thread.firstElementChild !== earlier) thread.prepend(earlier);
    previous = earlier;
  } else earlier.remove();
  for (const m of visible) {
    // Only a message whose content changed is drawn again (a streaming reply redraws itself alone).
    const json = JSON.stringify(m);
    let el = elements.get(m.info.id);
    if (!el || drawn.get(m.info.id) !== json) {
      const fresh = messageElement(m);
      if (el) el.replaceWith(fresh);
      el = fresh;
      elements.set(m.info.id, el);
      drawn.set(m.info.id, json);
    }
    if (el.previousElementSibling !== previous || !el.isConnected) {
      if (previous) previous.after(el);
      else thread.prepend(el);
    }
    previous = el;
  }
  transcript = t;
  sendButton.toggleAttribute('disabled', t.busy);
  stopButton.hidden = !t.busy;
  const item = sessions.find((s) => s.key === key);
  if (t.error) showStatus(`Error: ${t.error}`, true);
  else if (t.busy) showStatus(startedAt ? `Working… ${Math.round((Date.now() - startedAt) / 1000)} s` : 'Working…');
  else if (t.aborted) showStatus('Stopped.');
  else if (item && !item.ready) showStatus('This session is not running.');
  else showStatus('');
  drawActions(t, item);
  if (atBottom) thread.scrollTop = thread.scrollHeight;
}

function drawActions(t: Transcript, item: ChatSessionItem | undefined): void {
  for (const old of statusLine.querySelectorAll('button')) old.remove();
  const add = (label: string, msg: FromChatWebview) => {
    const b = document.createElement('button');
    b.textContent = label;
    b.addEventListener('click', () => api.postMessage(msg));
    statusLine.append(' ', b);
  };
  if (t.error) add('Retry', { type: 'retry' });
  if (item && !item.ready) add('Start Session', { type: 'startSession' });
}

function drawSessions(items: ChatSessionItem[], selected: string | undefined): void {
  sessions = items;
  picker.replaceChildren(
    ...items.map((s) => {
      const o = document.createElement('vscode-option') as HTMLElement & { value: string; selected: boolean; description: string };
      o.value = s.key;
      o.textContent = s.label;
      o.description = s.description;
      if (s.key === selected) o.selected = true;
      return o;
    }),
  );
  if (selected) picker.value = selected;
  // After a reload the host has no selection yet: the view's own state says which session it showed.
  if (!currentKey && selected && items.some((i) => i.key === selected)) api.postMessage({ type: 'select', key: selected });
  if (items.length === 0) showStatus('No chat sessions yet: start an opencode or Claude Agent SDK agent, then Open Chat.');
}

// The elapsed time of a blocking reply ticks while it runs.
setInterval(() => {
  if (transcript?.busy && startedAt && currentKey) showStatus(`Working… ${Math.round((Date.now() - startedAt) / 1000)} s`);
}, 1000);

window.addEventListener('message', (event: MessageEvent<ToChatWebview>) => {
  const msg = event.data;
  if (!msg || typeof msg !== 'object') return;
  if (msg.type === 'sessions') drawSessions(msg.items, msg.selected ?? state.selected);
  else if (msg.type === 'transcript') {
    startedAt = msg.startedAt;
    state.selected = msg.key;
    save();
    drawTranscript(msg.transcript, msg.key);
  } else if (msg.type === 'notice') showStatus(msg.message, true);
});

if (state.scrollTop) thread.scrollTop = state.scrollTop;
api.postMessage({ type: 'ready' });
