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

/** One synchronous write per line: what a Lambda function needs (nothing may wait past its answer). */
export const syncSink: LogSink = (line) => process.stdout.write(`${line}\n`);

/**
 * For a long-running server: lines written in one turn of the event loop leave in one write.
 * stdout to a pipe (journald, docker, a log shipper) is a blocking syscall per write on Linux,
 * which under load cost more than the rest of a request's logging. Lines still pending at exit
 * are written synchronously.
 */
export function batchedSink(): LogSink {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const chunk = `${pending.join('\n')}\n`;
    pending = [];
    process.stdout.write(chunk);
  };
  process.on('exit', flush);
  return (line) => {
    if (pending.push(line) === 1) setImmediate(flush);
  };
}


/** The time of a line; lines logged within the same millisecond share one string. */
let lastMs = -1;
let lastIso = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** Keys every line starts with; a field of the same name takes the slow path (it replaces them in place). */
const LEADING_KEYS = new Set(['time', 'level', 'msg']);

/** `{"a":1,"b":2}` → `,"a":1,"b":2` (empty for `{}`), to splice into a line. */
const members = (json: string) => (json.length > 2 ? `,${json.slice(1, -1)}` : '');

/**
 * A class, so that a per-request child costs one small object, not a set of closures. A line is
 * `{time, level, msg, ...bound, ...fields}` as JSON: the bound fields are serialised once, and the
 * per-call fields spliced in after them, unless a field repeats a key (then the object is built
 * and serialised whole, which keeps the key at its first position, as the spread does).
 */
class JsonLogger implements Logger {
  readonly level: LogLevel;
  readonly #threshold: number;
  readonly #bound: LogFields;
  readonly #boundKeys: ReadonlySet<string>;
  /** The bound fields as JSON members; undefined when one is an Error or a leading key (slow path). */
  readonly #boundJson: string | undefined;
  readonly #sink: LogSink;

  constructor(level: LogLevel, bound: LogFields, sink: LogSink) {
    this.level = level;
    this.#threshold = ORDER[level];
    this.#bound = bound;
    this.#boundKeys = new Set(Object.keys(bound));
    const plain = !(bound.err instanceof Error) && !Object.keys(bound).some((k) => LEADING_KEYS.has(k));
    this.#boundJson = plain ? members(JSON.stringify(bound)) : undefined;
    this.#sink = sink;
  }

  #write(lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void {
    if (ORDER[lvl] < this.#threshold) return;
    const time = isoNow();
    if (this.#boundJson !== undefined && !(fields?.err instanceof Error) && !(fields && this.#overlaps(fields))) {
      const head = `{"time":"${time}","level":"${lvl}","msg":${JSON.stringify(msg)}`;
      this.#sink(`${head}${this.#boundJson}${fields ? members(JSON.stringify(fields)) : ''}}`);
      return;
    }
    const entry: LogFields = { time, level: lvl, msg, ...this.#bound, ...fields };
    const err = entry.err;
    if (err instanceof Error) {
      // Stack traces go to logs only, never to clients.
      entry.err = { name: err.name, message: err.message, code: (err as { code?: unknown }).code, stack: err.stack };
    }
    this.#sink(JSON.stringify(entry));
  }

  #overlaps(fields: LogFields): boolean {
    for (const key in fields) if (this.#boundKeys.has(key) || LEADING_KEYS.has(key)) return true;
    return false;
  }

  debug(msg: string, fields?: LogFields): void {
    this.#write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#write('error', msg, fields);
  }
  child(fields: LogFields): Logger {
    return new JsonLogger(this.level, { ...this.#bound, ...fields }, this.#sink);
  }
}

export function createLogger(level: LogLevel, bound: LogFields = {}, sink: LogSink = syncSink): Logger {
  return new JsonLogger(level, bound, sink);
}
