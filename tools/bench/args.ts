// Flag values shared by `bench` and `compare`: durations, targets, counts. Each parser throws a
// UsageError naming the flag, so both CLIs answer a typo the same way (exit code 2).
import { ENDPOINT_KEYS, type EndpointKey } from './bench.ts';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/** "15m", "90s", "1h30m", "250ms", or a bare number of seconds. */
export function parseDuration(flag: string, raw: string): number {
  const text = raw.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|min|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new UsageError(`${flag} expects a duration like 15m, 90s, 1h30m or 500ms, got "${raw}"`);
  }
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0));
}

export function parseCount(flag: string, raw: string | undefined, fallback: number, min = 1, max = 10_000_000): number {
  if (raw === undefined) return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} expects a whole number from ${min} to ${max}, got "${raw}"`);
  return n;
}

export interface TargetArg {
  name: string;
  url: string;
}

/** `name=URL` pairs; a bare URL is named after its position (target1, target2…). */
export function parseTargets(raw: string[] | undefined): TargetArg[] {
  const list = raw ?? [];
  if (list.length === 0) throw new UsageError('at least one --target NAME=URL is needed, e.g. --target server=http://127.0.0.1:5001');
  const targets = list.map((item, i) => {
    const eq = item.indexOf('=');
    const hasName = eq > 0 && !/^[a-z]+:\/\//i.test(item.slice(0, eq + 3));
    const name = hasName ? item.slice(0, eq) : `target${i + 1}`;
    const url = (hasName ? item.slice(eq + 1) : item).replace(/\/+$/, '');
    if (!/^[\w.-]{1,40}$/.test(name)) throw new UsageError(`--target: name "${name}" must be 1-40 letters, digits, '.', '_' or '-'`);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--target ${name}: "${url}" is not a URL (expected e.g. http://127.0.0.1:5001)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`--target ${name}: only http:// and https:// URLs`);
    if (parsed.search || parsed.hash) throw new UsageError(`--target ${name}: give the service's base URL, without ?query or #fragment`);
    return { name, url };
  });
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t.name)) throw new UsageError(`--target: the name "${t.name}" is used twice`);
    seen.add(t.name);
  }
  return targets;
}

export function parseEndpoints(raw: string | undefined): EndpointKey[] {
  if (raw === undefined) return [...ENDPOINT_KEYS];
  const list = raw
    .split(',')
    .map((s) => s.trim().replace(/^\//, ''))
    .filter(Boolean);
  if (list.length === 0) throw new UsageError('--endpoints needs at least one of health, track, metrics');
  for (const e of list) {
    if (!(ENDPOINT_KEYS as readonly string[]).includes(e)) throw new UsageError(`--endpoints: unknown endpoint "${e}" (known: ${ENDPOINT_KEYS.join(', ')})`);
  }
  return [...new Set(list)] as EndpointKey[];
}

/** The load and target flags `npm run bench` and `npm run compare` share (node:util parseArgs). */
export const LOAD_OPTIONS = {
  target: { type: 'string', multiple: true },
  'i-own-this-target': { type: 'boolean' },
  requests: { type: 'string' },
  concurrency: { type: 'string' },
  warmup: { type: 'string' },
  'cold-samples': { type: 'string' },
  'cold-wait': { type: 'string' },
  timeout: { type: 'string' },
  'api-key': { type: 'string' },
  'metrics-token': { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
