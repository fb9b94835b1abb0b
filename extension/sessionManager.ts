/**
 * Starting and stopping sessions, and watching the ones that are still coming up.
 *
 * Start = create, then poll `GET /sessions/{id}` (≈250 ms at first, backing off to 2 s) in a
 * cancellable progress notification showing the phase, until `ready`, `failed`/`dead`, or the
 * deadline. Cancelling deletes the session. The watcher polls only sessions in `creating` and
 * stops when none are: no tight polling of lists.
 */
import * as vscode from 'vscode';
import type { Agent, Session } from '../protocol/platform';
import type { Backend } from './backends';
import { ActionableError } from './commands';
import { setting } from './config';
import { Disposable } from './disposable';
import { CancelledError } from './errors';
import { sleep } from './async';
import { humanPhase, pollDelays, sessionDetails } from './sessionInfo';
import type { Logger } from './logger';

export interface SessionChange {
  backend: Backend;
  session: Session;
}

export class SessionManager extends Disposable {
  private readonly changed = this.register(new vscode.EventEmitter<SessionChange>());
  /** A session's state changed (from a start, a stop or the watcher). */
  readonly onDidChangeSession = this.changed.event;
  private readonly watched = new Map<string, { backend: Backend; session: Session }>();
  private readonly starting = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
  ) {
    super();
    this.register({ dispose: () => clearTimeout(this.timer) });
  }

  /** Creates a session and waits for it to be ready, with a cancellable progress notification. */
  async start(backend: Backend, agent: Agent, opts: { title?: string } = {}): Promise<Session> {
    const name = agent.name || agent.id;
    const timeoutMs = Math.max(1, setting('sessions.startTimeoutMinutes')) * 60_000;
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Starting ${name}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        const sub = token.onCancellationRequested(() => abort.abort());
        let session: Session | undefined;
        try {
          progress.report({ message: 'creating session…' });
          session = await backend.client.createSession(agent.id, { title: opts.title ?? 'vscode' }, { signal: abort.signal });
          this.log.info(`session ${session.id} of ${name} created on ${backend.label}`);
          this.starting.add(session.id);
          this.emit(backend, session);
          const deadline = Date.now() + timeoutMs;
          const delays = pollDelays();
          let lastPhase = '';
          while (session.status === 'creating') {
            const phase = humanPhase(session);
            if (phase !== lastPhase) {
              progress.report({ message: phase });
              lastPhase = phase;
            }
            if (Date.now() > deadline) {
              throw new ActionableError(
                `${name} did not become ready within ${Math.round(timeoutMs / 60_000)} min (last phase: ${phase}). It is still starting on ${backend.label}.`,
                [this.stopAction(backend, session), this.detailsAction(backend, session)],
              );
            }
            await sleep(delays.next().value!, abort.signal);
            const next = await backend.client.getSession(session.id, { signal: abort.signal });
            if (next.status !== session.status || next.phase !== session.phase || next.phase_detail !== session.phase_detail) this.emit(backend, next);
            session = next;
          }
          if (session.status !== 'ready') {
            const failed = session;
            const reason = failed.failure_reason || `the session ended as ${failed.status}`;
            const buildFailed = backend.kind === 'local' && /image/i.test(reason) && failed.phase === 'creating_sandbox';
            throw new ActionableError(`${name} failed to start: ${reason}`, [
              ...(buildFailed && backend.buildLog ? [{ title: 'Show Build Log', run: () => this.showBuildLog(backend, agent.harness_id) }] : []),
              this.detailsAction(backend, failed),
              { title: 'Retry', run: () => vscode.commands.executeCommand('sandboxAgents.startSession', { backendId: backend.id, agentId: agent.id }) },
            ]);
          }
          this.log.info(`session ${session.id} of ${name} is ready`);
          return session;
        } catch (err) {
          if (abort.signal.aborted && session) {
            // Cancelled by the user: do not leave a half-started sandbox behind.
            const id = session.id;
            this.log.info(`start of ${id} cancelled; deleting it`);
            await backend.client.deleteSession(id).then(
              (r) => this.emit(backend, { ...session!, status: r.status === 'deleted' ? 'dead' : r.status }),
              (e) => this.log.warn(`could not delete cancelled session ${id}: ${e instanceof Error ? e.message : e}`),
            );
            throw new CancelledError();
          }
          throw err;
        } finally {
          sub.dispose();
          if (session) this.starting.delete(session.id);
        }
      },
    );
  }

  private async showBuildLog(backend: Backend, harness: string): Promise<void> {
    const log = await backend.buildLog?.(harness);
    if (log === undefined) {
      void vscode.window.showInformationMessage(`${backend.label} has no build log for ${harness} (the bridge restarted since the build).`);
      return;
    }
    const doc = await vscode.workspace.openTextDocument({ content: log, language: 'log' });
    await vscode.window.showTextDocument(doc, { preview: true });
  }

  async stop(backend: Backend, session: Pick<Session, 'id'> & Partial<Session>): Promise<void> {
    const reply = await backend.client.deleteSession(session.id);
    this.log.info(`session ${session.id} stopped (${reply.status})`);
    this.watched.delete(session.id);
    this.emit(backend, { ...session, id: session.id, status: reply.status === 'deleted' ? 'dead' : reply.status } as Session);
  }

  /** Keeps an eye on a session the tree shows while it is `creating` (one GET per session per tick). */
  watch(backend: Backend, session: Session): void {
    if (session.status !== 'creating' || this.starting.has(session.id)) return;
    this.watched.set(session.id, { backend, session });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.isDisposed || this.watched.size === 0) return;
    this.timer = setTimeout(() => void this.tick(), 1500);
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    await Promise.all(
      [...this.watched.values()].map(async ({ backend, session }) => {
        if (this.starting.has(session.id)) return void this.watched.delete(session.id);
        try {
          const next = await backend.client.getSession(session.id);
          if (next.status !== 'creating') this.watched.delete(session.id);
          else this.watched.set(session.id, { backend, session: next });
          if (next.status !== session.status || next.phase !== session.phase) this.emit(backend, next);
        } catch (err) {
          this.watched.delete(session.id);
          this.log.warn(`stopped watching ${session.id}: ${err instanceof Error ? err.message : err}`);
        }
      }),
    );
    this.schedule();
  }

  private emit(backend: Backend, session: Session): void {
    this.changed.fire({ backend, session });
  }

  private detailsAction(backend: Backend, s: Session) {
    return {
      title: 'Show Details',
      run: () => vscode.window.showInformationMessage(`Session ${s.id}`, { modal: true, detail: sessionDetails(backend.label, s) }),
    };
  }

  private stopAction(backend: Backend, s: Session) {
    return { title: 'Stop Session', run: () => this.stop(backend, s) };
  }

}

