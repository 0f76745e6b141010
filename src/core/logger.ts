/**
 * Structured logs: one JSON object per line on stdout (CloudWatch and journald both keep lines).
 * Hand-written because the needs are one line per event and a child with bound fields, and a
 * logging library would be the largest thing loaded at a Lambda cold start.
 */
import type { LogLevel } from './config.ts';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  readonly level: LogLevel;
}

export type LogSink = (line: string) => void;

const defaultSink: LogSink = (line) => process.stdout.write(`${line}\n`);

export function createLogger(level: LogLevel, bound: LogFields = {}, sink: LogSink = defaultSink): Logger {
  const threshold = ORDER[level];
  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields) => {
    if (ORDER[lvl] < threshold) return;
    const entry: LogFields = { time: new Date().toISOString(), level: lvl, msg, ...bound, ...fields };
    const err = entry.err;
    if (err instanceof Error) {
      // Stack traces go to logs only, never to clients.
      entry.err = { name: err.name, message: err.message, code: (err as { code?: unknown }).code, stack: err.stack };
    }
    sink(JSON.stringify(entry));
  };
  return {
    level,
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger(level, { ...bound, ...fields }, sink),
  };
}
