/** Pure helpers about sessions: poll pacing, phases, times. No `vscode`: unit-tested in plain Node. */
import type { Session } from '../protocol/platform';

/** Poll delays: fast at first, then backing off to 2 s. */
export function* pollDelays(first = 250, max = 2000, factor = 1.5): Generator<number> {
  for (let d = first; ; d = Math.min(max, d * factor)) yield d;
}

export function humanPhase(session: Pick<Session, 'phase' | 'phase_detail' | 'status'>): string {
  const phase = session.phase ? session.phase.replace(/_/g, ' ').replace(/^\w/, (c) => c.toUpperCase()) : session.status;
  return session.phase_detail ? `${phase}: ${session.phase_detail}` : phase;
}

export function sessionDetails(backendLabel: string, s: Session): string {
  const lines = [
    `Session: ${s.id}`,
    `Backend: ${backendLabel}`,
    `Agent: ${s.agent_id ?? '?'}`,
    `Status: ${s.status}`,
    s.phase ? `Phase: ${s.phase}${s.phase_detail ? ` (${s.phase_detail})` : ''}` : undefined,
    s.failure_reason ? `Reason: ${s.failure_reason}` : undefined,
    s.created_at ? `Created: ${formatTime(s.created_at)}` : undefined,
    s.last_seen_at ? `Last seen: ${formatTime(s.last_seen_at)}` : undefined,
  ];
  return lines.filter(Boolean).join('\n');
}

/** Platform times are ISO strings or epoch numbers (seconds or milliseconds). */
export function parseTime(t: string | number | null | undefined): number | undefined {
  if (t === null || t === undefined || t === '') return undefined;
  if (typeof t === 'number') return t < 1e12 ? t * 1000 : t;
  if (/^\d+(\.\d+)?$/.test(t)) return parseTime(Number(t));
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

function formatTime(t: string | number): string {
  const ms = parseTime(t);
  return ms === undefined ? String(t) : new Date(ms).toLocaleString();
}

export function relativeAge(ms: number | undefined, now = Date.now()): string {
  if (!ms) return '';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

