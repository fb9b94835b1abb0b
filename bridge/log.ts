/**
 * The bridge's log: stderr (stdout carries only the one "listening" line) and a size-capped file in
 * the state dir (rotated once to `.1`). Lines never carry secrets: callers pass ids, not tokens.
 */
import { appendFileSync, renameSync, statSync } from 'node:fs';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface BridgeLog {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string | Error): void;
}

export function createLog(opts: { file?: string; maxBytes?: number; verbose?: boolean; secrets?: () => string[] }): BridgeLog {
  const maxBytes = opts.maxBytes ?? 5 * 1024 * 1024;
  let written = 0;
  if (opts.file) {
    try {
      written = statSync(opts.file).size;
    } catch {
      written = 0;
    }
  }
  const write = (level: Level, msg: string) => {
    if (level === 'debug' && !opts.verbose) return;
    let text = msg;
    for (const s of opts.secrets?.() ?? []) if (s && s.length >= 8) text = text.split(s).join('***');
    const line = `${new Date().toISOString()} ${level.padEnd(5)} ${text}\n`;
    process.stderr.write(line);
    if (!opts.file) return;
    try {
      if (written + line.length > maxBytes) {
        renameSync(opts.file, `${opts.file}.1`);
        written = 0;
      }
      appendFileSync(opts.file, line, { mode: 0o600 });
      written += line.length;
    } catch {
      // The log file is best effort; stderr has the line.
    }
  };
  return {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', typeof m === 'string' ? m : (m.stack ?? m.message)),
  };
}
