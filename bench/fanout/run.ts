/**
 * One run of the fan-out benchmark: a throwaway database migrated with the service's migrations,
 * N worker processes (bench/fanout/worker.mjs, one per Lambda execution environment, one database
 * connection each) loading a handler once, a common start, a closed loop of POST /track events,
 * then the rows stored counted against the events acknowledged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { sampleEvents, type TrackBody } from '../../tools/shared/sample-events.ts';
import { createBenchDatabase, ROOT } from '../perf/lib.ts';

export type Subject = 'service' | 'peer';

export interface RunSpec {
  subject: Subject;
  n: number;
  /** commit_delay of the throwaway database, in ms (0 or 2). */
  delayMs: number;
  pooled: boolean;
  warmupMs: number;
  measureMs: number;
  businesses: number;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface WorkerResult {
  id: number;
  hung: boolean;
  warmupRequests: number;
  requests: number;
  ackedInWindow: number;
  elapsedMs: number;
  acknowledged: number;
  duplicates: number;
  errors: number;
  statuses: Record<string, number>;
  errorSamples: string[];
}

export interface RunResult extends RunSpec {
  database: string;
  /** commit_delay and commit_siblings as a new connection to the throwaway database sees them. */
  settings: { commitDelay: string; commitSiblings: string };
  /** Acknowledged events per second in the measured window, summed over the workers. */
  eventsPerSec: number;
  /** Requests timed in the measured window (every status). */
  requests: number;
  latencyMs: LatencySummary;
  /** Non-200 answers and thrown invocations, over the whole run (first request and warm-up included). */
  errors: number;
  statuses: Record<string, number>;
  errorSamples: string[];
  /** 200 answers with duplicate: false, over the whole run. */
  acknowledged: number;
  stored: number;
  /** Largest count(*) of mlops.fold_queue sampled each second while the service ran; null: no such table. */
  unfoldedTailMax: number | null;
  unfoldedTailEnd: number | null;
  /** Workers that did not report within their deadline (their requests are not counted). */
  hungWorkers: number;
  /** Share of this machine's CPU time busy (all processes) from the start to the last report; null off Linux. */
  machineCpuBusy: number | null;
  spawnToReadyMs: number;
  workers: WorkerResult[];
}

/**
 * The peer's table: the columns, defaults and indexes of mlops.ai_metrics (unique business_id +
 * event_id for idempotency), taken from the migrated schema so the two cannot drift apart.
 */
export const PEER_TABLE = 'CREATE TABLE public.peer_events (LIKE mlops.ai_metrics INCLUDING DEFAULTS INCLUDING INDEXES)';

const WORKER = join(ROOT, 'bench/fanout/worker.mjs');
const PEER = join(ROOT, 'bench/fanout/peer-handler.mjs');
const MIGRATE = join(ROOT, 'bench/fanout/migrate.mjs');
/** The recorded-shape API Gateway HTTP API v2 POST /track event the Lambda tests start from. */
const EVENT_FIXTURE = join(ROOT, 'test/fixtures/lambda-events/synthetic-v2-named-stage-post-track-json.json');

/** Things to undo if the run is interrupted (SIGINT): live workers, samplers, databases. */
export const cleanups = new Set<() => Promise<void> | void>();

export function trackEventTemplate(): Record<string, unknown> {
  const e = JSON.parse(readFileSync(EVENT_FIXTURE, 'utf8')) as Record<string, any>;
  e.headers = { ...e.headers, 'user-agent': 'fanout-bench', 'x-forwarded-for': '127.0.0.1' };
  e.requestContext.http = { ...e.requestContext.http, sourceIp: '127.0.0.1', userAgent: 'fanout-bench' };
  e.isBase64Encoded = false;
  delete e.body;
  return e;
}

function lambdaEnv(worker: number, extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x',
    AWS_LAMBDA_FUNCTION_NAME: 'mlops-service-lambda',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_STREAM_NAME: `2026/01/01/[$LATEST]fanout${String(worker).padStart(4, '0')}`,
    ...extra,
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs the package's migrations against `url` in a child process (the package's own code and schema). */
export function migrateWithPackage(packageModule: string, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MIGRATE, packageModule], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const keep = (d: Buffer) => (out = (out + d.toString('utf8')).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && /MIGRATED /.test(out)) resolve();
      else reject(new Error(`migrations failed (exit ${code ?? signal}):\n${out}`));
    });
  });
}

async function prepareDatabase(spec: RunSpec, packageModule: string) {
  const db = await createBenchDatabase(`fanout_${spec.subject}`);
  cleanups.add(db.drop);
  try {
    await migrateWithPackage(packageModule, db.url);
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(PEER_TABLE);
      if (spec.delayMs > 0) {
        // Neon-like commits: every WAL flush waits this long (commit_siblings = 0: even a lone commit).
        // On the throwaway database only; connections opened from now on pick it up.
        await sql.unsafe(`ALTER DATABASE "${db.name}" SET commit_delay = ${Math.round(spec.delayMs * 1000)}`);
        await sql.unsafe(`ALTER DATABASE "${db.name}" SET commit_siblings = 0`);
      }
    } finally {
      await sql.end();
    }
    const check = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const [d] = await check`SELECT current_setting('commit_delay') AS delay, current_setting('commit_siblings') AS siblings`;
      if (spec.delayMs > 0 && Number(d!.delay) !== Math.round(spec.delayMs * 1000)) {
        throw new Error(`commit_delay is ${d!.delay} µs on a new connection, not ${spec.delayMs * 1000}: the delay did not take`);
      }
      // Whatever the previous run left in the WAL is flushed before this one starts, not during it.
      await check`CHECKPOINT`.catch(() => {});
      return { db, settings: { commitDelay: String(d!.delay), commitSiblings: String(d!.siblings) } };
    } finally {
      await check.end();
    }
  } catch (error) {
    cleanups.delete(db.drop);
    await db.drop();
    throw error;
  }
}

/** Samples count(*) of mlops.fold_queue once a second, when that table exists. */
async function foldQueueSampler(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {}, idle_timeout: 0 });
  const [row] = await sql`SELECT to_regclass('mlops.fold_queue') IS NOT NULL AS present`;
  if (!row!.present) {
    await sql.end();
    return { stop: async () => ({ max: null, end: null }), abort: async () => {} };
  }
  let max = 0;
  let busy = false;
  const sample = async () => {
    if (busy) return;
    busy = true;
    try {
      const [r] = await sql`SELECT count(*)::int AS n FROM mlops.fold_queue`;
      max = Math.max(max, r!.n as number);
      return r!.n as number;
    } catch {
      return null;
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(sample, 1000);
  const abort = async () => {
    cleanups.delete(abort);
    clearInterval(timer);
    await sql.end({ timeout: 1 });
  };
  cleanups.add(abort);
  const stop = async () => {
    cleanups.delete(abort);
    clearInterval(timer);
    const end = await sample();
    await sql.end({ timeout: 5 });
    return { max: Math.max(max, end ?? 0), end: end ?? null };
  };
  return { stop, abort };
}

/** Busy and total CPU time of the whole machine so far (/proc/stat), or null. */
function cpuTimes(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = fields[3]! + fields[4]!; // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

interface LiveWorker {
  child: ChildProcess;
  stderr: string;
  messages: Map<string, (message: any) => void>;
  exited: Promise<void>;
}

function startWorker(id: number, handlerModule: string, env: Record<string, string>): LiveWorker {
  // stdout (the service's EMF metric lines and logs, as on Lambda) goes to /dev/null, not to this
  // process: reading it would take CPU from the environments being measured.
  const child = spawn(process.execPath, [WORKER, handlerModule, String(id)], {
    env,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
  const w: LiveWorker = { child, stderr: '', messages: new Map(), exited: new Promise((r) => child.once('exit', () => r())) };
  child.stderr!.on('data', (d: Buffer) => (w.stderr = (w.stderr + d.toString('utf8')).slice(-4000)));
  child.on('message', (m: { type: string }) => w.messages.get(m.type)?.(m));
  return w;
}

function nextMessage(w: LiveWorker, type: string, fatal: Promise<never>): Promise<any> {
  return Promise.race([new Promise((resolve) => w.messages.set(type, resolve)), fatal]);
}

export function summarize(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  // Linear interpolation between closest ranks, as quantile() in bench/perf/lib.ts.
  const q = (p: number) => {
    const pos = (n - 1) * p;
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
  };
  let total = 0;
  for (const x of sorted) total += x;
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted[n - 1]!, mean: total / n };
}

export interface RunContext {
  /** dist/lambda/index.mjs of the build measured. */
  packageModule: string;
  /** For pooled runs: the PgBouncer in front of the local server. */
  poolerUrlFor?: (databaseUrl: string) => string;
  progress: (line: string) => void;
}

export async function runOnce(spec: RunSpec, ctx: RunContext): Promise<RunResult> {
  const handlerModule = spec.subject === 'service' ? ctx.packageModule : PEER;
  const { db, settings } = await prepareDatabase(spec, ctx.packageModule);
  const workers: LiveWorker[] = [];
  const killAll = () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  };
  cleanups.add(killAll);
  let sampler: Awaited<ReturnType<typeof foldQueueSampler>> | undefined;
  try {
    const url = spec.pooled ? ctx.poolerUrlFor!(db.url) : db.url;
    const started = performance.now();
    let failWith: (e: Error) => void = () => {};
    const fatal = new Promise<never>((_, reject) => (failWith = reject));
    fatal.catch(() => {});
    for (let i = 0; i < spec.n; i++) {
      const w = startWorker(
        i,
        handlerModule,
        lambdaEnv(i, {
          DATABASE_URL: url,
          DB_POOL_MAX: '1',
          DB_MIGRATE_ON_START: 'false',
          LOG_LEVEL: 'warn',
          ...(spec.pooled ? { DB_POOLED: 'true' } : {}),
        }),
      );
      w.messages.set('fatal', (m) => failWith(new Error(`worker ${i}: ${m.message}`)));
      w.child.once('exit', (code, signal) => {
        if (code !== 0) failWith(new Error(`worker ${i} exited ${code ?? signal}:\n${w.stderr.slice(-2000)}`));
      });
      workers.push(w);
    }
    const template = trackEventTemplate();
    const businesses = Array.from({ length: spec.businesses }, (_, i) => `fanout-biz-${i}`);
    const tag = `${spec.subject[0]}${spec.n}d${spec.delayMs}${spec.pooled ? 'p' : ''}`;
    const readyTimeout = 60_000 + spec.n * 2000;
    // A first request that fails is counted with the run's errors (a pooler refusing the service is a result).
    const firstErrors: string[] = [];
    // Every worker loads its handler, then opens its connection with a first request.
    await withTimeout(
      Promise.all(
        workers.map(async (w, i) => {
          await nextMessage(w, 'loaded', fatal);
          const next = sampleEvents(1000 + i, { businesses, conversations: 200, idPrefix: `w${i}-` });
          const bodies: TrackBody[] = Array.from({ length: 256 }, next);
          const ready = nextMessage(w, 'ready', fatal);
          w.child.send({ type: 'init', template, bodies, tag });
          const r = await ready;
          if (r.first !== 200) firstErrors.push(`worker ${i}: ${r.firstError ?? r.first}`);
        }),
      ),
      readyTimeout,
      `${spec.n} workers starting`,
    );
    const spawnToReadyMs = performance.now() - started;
    if (firstErrors.length) ctx.progress(`${label(spec)}: ${firstErrors.length} first request(s) failed, e.g. ${firstErrors[0]!.slice(0, 300)}`);
    sampler = spec.subject === 'service' ? await foldQueueSampler(db.url) : undefined;
    const startAt = Date.now() + 200;
    ctx.progress(`${label(spec)} … ${Math.round(spec.measureMs / 1000)} s (after ${spec.warmupMs / 1000} s warm-up)`);
    const results = Promise.all(workers.map((w) => nextMessage(w, 'result', fatal) as Promise<WorkerResult & { type: 'result'; latencies: Float64Array }>));
    for (const w of workers) w.child.send({ type: 'go', startAt, warmupMs: spec.warmupMs, measureMs: spec.measureMs });
    const cpuBefore = cpuTimes();
    const reported = await withTimeout(results, spec.warmupMs + spec.measureMs + 45_000, `${label(spec)} results`);
    const cpuAfter = cpuTimes();
    await withTimeout(Promise.all(workers.map((w) => w.exited)), 15_000, 'workers exiting');
    const tail = await sampler?.stop();

    const counter = postgres(db.url, { max: 1, onnotice: () => {} });
    let stored: number;
    try {
      const [row] = await counter.unsafe(`SELECT count(*)::int AS n FROM ${spec.subject === 'service' ? 'mlops.ai_metrics' : 'public.peer_events'}`);
      stored = row!.n as number;
    } finally {
      await counter.end();
    }

    const statuses: Record<string, number> = {};
    const errorSamples: string[] = [];
    let total = 0;
    for (const r of reported) {
      total += r.latencies.length;
      for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
      for (const s of r.errorSamples) if (errorSamples.length < 8 && !errorSamples.includes(s)) errorSamples.push(s);
    }
    const all = new Float64Array(total);
    let at = 0;
    for (const r of reported) {
      all.set(r.latencies, at);
      at += r.latencies.length;
    }
    const sum = (f: (r: WorkerResult) => number) => reported.reduce((a, r) => a + f(r), 0);
    return {
      ...spec,
      database: db.name,
      settings,
      eventsPerSec: sum((r) => (r.hung || !(r.elapsedMs > 0) ? 0 : (r.ackedInWindow / r.elapsedMs) * 1000)),
      requests: total,
      latencyMs: summarize(all),
      errors: sum((r) => r.errors),
      statuses,
      errorSamples,
      acknowledged: sum((r) => r.acknowledged),
      stored,
      unfoldedTailMax: tail?.max ?? null,
      unfoldedTailEnd: tail?.end ?? null,
      hungWorkers: reported.filter((r) => r.hung).length,
      machineCpuBusy: cpuBefore && cpuAfter && cpuAfter.total > cpuBefore.total ? (cpuAfter.busy - cpuBefore.busy) / (cpuAfter.total - cpuBefore.total) : null,
      spawnToReadyMs,
      workers: reported.map(({ latencies, type: _type, ...r }) => ({ ...r, latencyMs: summarize(latencies) })),
    };
  } finally {
    killAll();
    cleanups.delete(killAll);
    await sampler?.abort().catch(() => {});
    await Promise.race([Promise.all(workers.map((w) => w.exited)), new Promise((r) => setTimeout(r, 5000))]);
    cleanups.delete(db.drop);
    await db.drop();
  }
}

export function label(spec: Pick<RunSpec, 'n' | 'subject' | 'delayMs' | 'pooled'>): string {
  return `N=${spec.n} ${spec.subject} delay=${spec.delayMs}ms${spec.pooled ? ' pgbouncer' : ''}`;
}
