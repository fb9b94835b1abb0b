/** The logging interface every component takes; the extension backs it with one LogOutputChannel. */
export interface Logger {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string | Error): void;
}

export const nullLogger: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** A logger whose lines are tagged with a component name, e.g. `[client] GET /agents → 200`. */
export function tagged(base: Logger, tag: string): Logger {
  const t = (m: string) => `[${tag}] ${m}`;
  return {
    trace: (m) => base.trace(t(m)),
    debug: (m) => base.debug(t(m)),
    info: (m) => base.info(t(m)),
    warn: (m) => base.warn(t(m)),
    error: (m) => base.error(typeof m === 'string' ? t(m) : t(m.stack ?? m.message)),
  };
}
