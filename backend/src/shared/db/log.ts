// A tiny structured logger: JSON lines on the console at or above a level, or any logger with info/warn/error
// methods (Powertools Logger fits). Callers pass fields, never credentials or parameter values.

/** Levels in increasing severity; 'silent' logs nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** What the module needs from a logger; `debug` is optional. */
export interface DbLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The logger the module uses internally: every level present, filtering already applied. */
export type Logger = Required<DbLogger>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** True when a line at `lineLevel` passes the configured `level`; lets callers skip building fields. */
export function isLevelEnabled(level: LogLevel, lineLevel: Exclude<LogLevel, 'silent'>): boolean {
  return RANK[lineLevel] >= RANK[level];
}

/** Wraps `logger` (or the console) so that lines below `level` are dropped before any work is done. */
export function createLogger(level: LogLevel, logger?: DbLogger): Logger {
  const emit = (lineLevel: Exclude<LogLevel, 'silent'>) => (message: string, fields?: Record<string, unknown>) => {
    if (!isLevelEnabled(level, lineLevel)) return;
    if (logger) {
      // A logger that throws must not turn a committed write into a failure the caller might retry.
      try {
        (logger[lineLevel] ?? logger.info).call(logger, message, fields);
      } catch {
        // Nothing sensible is left to log it with.
      }
      return;
    }
    // The line's own keys come first and win over a field of the same name.
    const own = { level: lineLevel.toUpperCase(), source: 'lambda-pg', message };
    const line = JSON.stringify({ ...own, ...fields, ...own });
    (lineLevel === 'error' ? console.error : lineLevel === 'warn' ? console.warn : console.log)(line);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}
