/**
 * Structured logs: one JSON object per line on stderr (or a sink a test supplies).
 * Fields are flat key/values; `child()` adds context such as the peer or path.
 * Per-packet code logs at most at `debug`, and only behind `enabled('debug')`.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, string | number | boolean | null | undefined>;
export type LogSink = (line: string) => void;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
  child(fields: LogFields): Logger;
}

function levelFromEnv(): LogLevel {
  const value = process.env.BRAID_LOG;
  return value !== undefined && value in RANK ? (value as LogLevel) : 'warn';
}

export function createLogger(
  options: { level?: LogLevel; sink?: LogSink; fields?: LogFields } = {},
): Logger {
  const level = options.level ?? levelFromEnv();
  const sink = options.sink ?? ((line: string) => process.stderr.write(line + '\n'));
  const base = options.fields ?? {};
  const write = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[lvl] < RANK[level]) return;
    sink(JSON.stringify({ t: new Date().toISOString(), level: lvl, msg, ...base, ...fields }));
  };
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    enabled: (lvl) => RANK[lvl] >= RANK[level],
    child: (fields) => createLogger({ level, sink, fields: { ...base, ...fields } }),
  };
}

/** Logger that records lines, for tests that assert what was logged. */
export function createMemoryLogger(level: LogLevel = 'debug'): {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
} {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level,
    sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { logger, lines };
}

export function errorFields(err: unknown): LogFields {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { error: err.message, code: typeof code === 'string' ? code : undefined };
  }
  return { error: String(err) };
}
