/**
 * `npm run bench:fanout`: does the write path scale out the way Lambda runs it — many execution
 * environments, one request at a time each, one database connection each?
 *
 * For every N (worker processes = environments) and commit latency (local commits, or a Neon-like
 * 2 ms commit_delay), the packaged handler (dist/lambda/index.mjs) runs a closed loop of API
 * Gateway v2 POST /track events, side by side with the lightest honest peer (one INSERT of the
 * same columns through the same driver) in the same harness. Every run counts the rows stored
 * against the events acknowledged, and fails loudly when they differ.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { machine, packageLambda, printVerdicts, ROOT, table, type Verdict } from '../perf/lib.ts';
import { cleanups, label, runOnce, type RunResult, type RunSpec, type Subject } from './run.ts';

const HELP = `Usage: npm run bench:fanout -- [options]

Fan-out of the write path as Lambda runs it: N worker processes (one per execution environment,
DB_POOL_MAX=1) each load the packaged handler (dist/lambda/index.mjs) once and run a closed loop
of API Gateway v2 POST /track events against a throwaway database on the local PostgreSQL
(127.0.0.1:5432, or BENCH_DATABASE_URL), next to a one-INSERT peer handler in the same harness.
Each configuration runs with local commits and with a Neon-like 2 ms commit (commit_delay=2000,
commit_siblings=0 on the throwaway database only). Rows stored are checked against the events
acknowledged after every run: a difference fails the run (exit 1) whatever the other options.

  --n LIST          worker counts (default 1,4,16,48; --quick: 1,4)
  --seconds S       measured seconds per run (default 10; --quick: 3)
  --warmup S        warm-up seconds before measuring, all workers together (default 1; --quick: 0.5)
  --delay MODE      both | on (2 ms commits) | off (default both)
  --businesses K    business ids the events are spread over (default 8)
  --pooler          pooled mode: every configuration goes through PgBouncer (transaction mode,
                    tools/shared/pgbouncer.ts), workers get DB_POOLED=true; fails without pgbouncer
  --pooler-n N      worker count of the default PgBouncer section (default 12); that section runs
                    in full runs when pgbouncer is installed
  --no-pooler       skip the default PgBouncer section
  --pool-size N     PgBouncer default_pool_size (default: the helper's own)
  --out-dir DIR     build the Lambda package into DIR (default dist/); DIR/lambda/index.mjs is run
  --no-build        run the package already in --out-dir as it is
  --quick           a smoke run (N=1,4, 3 s, no PgBouncer section unless --pooler)
  --json FILE       raw results (default reports/fanout-<time>.json)
  --strict          exit 1 when a target is missed
  --help            this text

Targets (2 ms commits, N=16): service ≥ 0.6× the peer's events/s; service ≥ 4× its own N=1;
service p99 ≤ 2× the peer's p99. PgBouncer: 0 errors and acknowledged = stored.`;

let values: ReturnType<typeof parse>['values'];
function parse() {
  return parseArgs({
    options: {
      n: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      delay: { type: 'string', default: 'both' },
      businesses: { type: 'string', default: '8' },
      pooler: { type: 'boolean', default: false },
      'pooler-n': { type: 'string', default: '12' },
      'no-pooler': { type: 'boolean', default: false },
      'pool-size': { type: 'string' },
      'out-dir': { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      strict: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
}
try {
  ({ values } = parse());
} catch (error) {
  console.error(`${(error as Error).message}\n\n${HELP}`);
  process.exit(2);
}
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const usage = (message: string): never => {
  console.error(message);
  process.exit(2);
};
const positive = (raw: string | undefined, fallback: number, name: string, integer = false): number => {
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) usage(`--${name} must be a positive ${integer ? 'whole ' : ''}number, got "${raw}"`);
  return n;
};
const quick = values.quick;
const ns = (values.n ?? (quick ? '1,4' : '1,4,16,48')).split(',').map((s) => positive(s.trim(), 0, 'n', true));
const seconds = positive(values.seconds, quick ? 3 : 10, 'seconds');
const warmup = values.warmup === '0' ? 0 : positive(values.warmup, quick ? 0.5 : 1, 'warmup');
const businesses = positive(values.businesses, 8, 'businesses', true);
const poolerN = positive(values['pooler-n'], 12, 'pooler-n', true);
const poolSize = values['pool-size'] === undefined ? undefined : positive(values['pool-size'], 0, 'pool-size', true);
if (!['both', 'on', 'off'].includes(values.delay!)) usage(`--delay must be both, on or off, got "${values.delay}"`);
const delays = values.delay === 'both' ? [0, 2] : values.delay === 'on' ? [2] : [0];
if (values.pooler && values['no-pooler']) usage('--pooler and --no-pooler contradict each other');
const outDir = values['out-dir'] ? resolve(values['out-dir']) : join(ROOT, 'dist');
const packageModule = join(outDir, 'lambda/index.mjs');

// ---------------------------------------------------------------------------------------------
// Interrupted: kill the workers, drop the databases, stop PgBouncer, then leave.

let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  process.stderr.write('\nInterrupted: stopping workers, dropping the throwaway databases…\n');
  const all = [...cleanups].map((c) => Promise.resolve().then(c).catch(() => {}));
  void Promise.race([Promise.all(all), new Promise((r) => setTimeout(r, 10_000))]).then(() => process.exit(130));
});

const progress = (line: string) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// The package and, when wanted, PgBouncer.

function gitState(): { head: string | null; uncommittedSrc: number | null } {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { head, uncommittedSrc: dirty.split('\n').filter(Boolean).length };
  } catch {
    return { head: null, uncommittedSrc: null };
  }
}

console.log(`mlops-service fan-out benchmark — ${machine()}`);
const git = gitState();
if (!values['no-build']) {
  progress(`Building the Lambda package into ${outDir} (npm run package -- --lambda-only)…`);
  try {
    packageLambda(outDir === join(ROOT, 'dist') ? undefined : outDir);
  } catch {
    console.error('FAIL: the Lambda package did not build (see above).');
    process.exit(1);
  }
}
if (!existsSync(packageModule)) usage(`${packageModule} does not exist: build it (npm run package) or drop --no-build`);
const builtAt = statSync(packageModule).mtime.toISOString();
console.log(
  `Package: ${packageModule} (built ${builtAt}${values['no-build'] ? ', not by this run' : `, from ${git.head ?? '?'}${git.uncommittedSrc ? ` + ${git.uncommittedSrc} uncommitted file(s) in src/` : ''}`})`,
);

interface PgBouncerModule {
  startPgBouncer(options?: { poolMode?: 'transaction' | 'session'; defaultPoolSize?: number; maxClientConn?: number }): Promise<{
    port: number;
    urlFor(databaseUrl: string): string;
    stop(): Promise<void>;
  }>;
  pgbouncerBinary(): string | undefined;
}

/** tools/shared/pgbouncer.ts, when it exists and finds a pgbouncer binary; else why not. */
async function loadPgBouncer(): Promise<PgBouncerModule | string> {
  const path = join(ROOT, 'tools/shared/pgbouncer.ts');
  if (!existsSync(path)) return 'tools/shared/pgbouncer.ts does not exist (yet)';
  const specifier = '../../tools/shared/pgbouncer.ts';
  const mod = (await import(specifier)) as PgBouncerModule;
  if (!mod.pgbouncerBinary()) return 'pgbouncer is not installed (apt-get install pgbouncer)';
  return mod;
}

type Section = { n: number; pooled: boolean };
const sections: Section[] = ns.map((n) => ({ n, pooled: values.pooler }));
let poolerNote: string | undefined;
let pooler: Awaited<ReturnType<PgBouncerModule['startPgBouncer']>> | undefined;
const stopPooler = async () => {
  const p = pooler;
  pooler = undefined;
  await p?.stop();
};
const wantDefaultPooler = !values.pooler && !values['no-pooler'] && !quick;
if (values.pooler || wantDefaultPooler) {
  const loaded = await loadPgBouncer();
  if (typeof loaded === 'string') {
    if (values.pooler) usage(`--pooler: ${loaded}`);
    poolerNote = `PgBouncer section skipped: ${loaded}.`;
  } else {
    pooler = await loaded.startPgBouncer({
      poolMode: 'transaction',
      maxClientConn: Math.max(100, 2 * Math.max(poolerN, ...ns)),
      ...(poolSize ? { defaultPoolSize: poolSize } : {}),
    });
    cleanups.add(stopPooler);
    if (wantDefaultPooler) sections.push({ n: poolerN, pooled: true });
  }
} else if (quick && !values['no-pooler']) {
  poolerNote = 'PgBouncer section skipped (--quick; add --pooler to run every N through it).';
}

const cpuCount = cpus().length;
console.log(
  `Closed loop, one request at a time per worker, ${businesses} businesses, ${warmup} s warm-up then ${seconds} s measured per run; ` +
    `service and peer alternate per configuration.`,
);
if (Math.max(...sections.map((s) => s.n)) > cpuCount) {
  console.log(`Note: ${cpuCount} CPUs here: above ${cpuCount} workers the environments share CPUs (Lambda gives each its own); the peer shares them alike.`);
}
if (poolerNote) console.log(poolerNote);

// ---------------------------------------------------------------------------------------------
// The runs.

interface FailedRun extends RunSpec {
  failed: string;
}
const runs: (RunResult | FailedRun)[] = [];
const failures: string[] = [];
const ms = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(2)) : '—');

for (const delayMs of delays) {
  for (const section of sections) {
    for (const subject of ['service', 'peer'] as Subject[]) {
      if (interrupted) break;
      const spec: RunSpec = { subject, n: section.n, delayMs, pooled: section.pooled, warmupMs: warmup * 1000, measureMs: seconds * 1000, businesses };
      progress(`${label(spec)}: starting ${spec.n} worker${spec.n > 1 ? 's' : ''}…`);
      try {
        const r = await runOnce(spec, { packageModule, poolerUrlFor: pooler?.urlFor.bind(pooler), progress });
        runs.push(r);
        const match = r.acknowledged === r.stored;
        progress(
          `  → ${r.eventsPerSec.toFixed(0)} events/s, p50 ${ms(r.latencyMs.p50)} ms, p99 ${ms(r.latencyMs.p99)} ms, ${r.errors} errors, ` +
            `acknowledged ${r.acknowledged} ${match ? '=' : '≠'} stored ${r.stored}${r.unfoldedTailMax !== null ? `, unfolded tail max ${r.unfoldedTailMax}` : ''}`,
        );
        if (!match) {
          const diff = r.stored - r.acknowledged;
          const why =
            diff < 0
              ? `${-diff} ACKNOWLEDGED EVENT(S) LOST`
              : diff <= r.errors
                ? `${diff} event(s) answered with an error were committed anyway (a retry with the same event_id would be a duplicate)`
                : `${diff} more row(s) than events acknowledged`;
          failures.push(`${label(spec)}: ${r.acknowledged} acknowledged but ${r.stored} stored: ${why}`);
        }
        if (r.hungWorkers) failures.push(`${label(spec)}: ${r.hungWorkers} worker(s) stuck in a request past the deadline`);
      } catch (error) {
        if (interrupted) break;
        const message = (error as Error).message;
        progress(`  → FAILED: ${message}`);
        runs.push({ ...spec, failed: message });
        failures.push(`${label(spec)}: run failed: ${message.split('\n')[0]}`);
      }
    }
  }
}
if (interrupted) await new Promise(() => {}); // the SIGINT handler exits
cleanups.delete(stopPooler);
await stopPooler();

// ---------------------------------------------------------------------------------------------
// Tables and verdicts.

const ok = (r: RunResult | FailedRun | undefined): r is RunResult => !!r && !('failed' in r);
const find = (subject: Subject, n: number, delayMs: number, pooled: boolean) =>
  runs.find((r) => r.subject === subject && r.n === n && r.delayMs === delayMs && r.pooled === pooled);

for (const delayMs of delays) {
  console.log(
    `\n${delayMs ? `Neon-like commits: commit_delay = ${delayMs} ms, commit_siblings = 0` : 'Local commits (commit_delay = 0)'} — ` +
      `events acknowledged per second, latency per request in ms\n`,
  );
  const rows: string[][] = [];
  const acks: string[][] = [];
  for (const s of sections) {
    const svc = find('service', s.n, delayMs, s.pooled);
    const peer = find('peer', s.n, delayMs, s.pooled);
    const base = find('service', 1, delayMs, false) ?? find('service', 1, delayMs, s.pooled);
    const cell = (r: RunResult | FailedRun | undefined, f: (r: RunResult) => string) => (ok(r) ? f(r) : r ? 'FAILED' : '—');
    rows.push([
      `${s.n}${s.pooled ? ' (pgbouncer)' : ''}`,
      cell(svc, (r) => r.eventsPerSec.toFixed(0)),
      cell(svc, (r) => ms(r.latencyMs.p50)),
      cell(svc, (r) => ms(r.latencyMs.p99)),
      cell(svc, (r) => ms(r.latencyMs.max)),
      cell(peer, (r) => r.eventsPerSec.toFixed(0)),
      cell(peer, (r) => ms(r.latencyMs.p50)),
      cell(peer, (r) => ms(r.latencyMs.p99)),
      cell(peer, (r) => ms(r.latencyMs.max)),
      ok(svc) && ok(peer) && peer.eventsPerSec > 0 ? `${(svc.eventsPerSec / peer.eventsPerSec).toFixed(2)}×` : '—',
      ok(svc) && ok(base) && base.eventsPerSec > 0 ? `${(svc.eventsPerSec / base.eventsPerSec).toFixed(2)}×` : '—',
      ok(svc) ? (svc.unfoldedTailMax === null ? 'n/a' : String(svc.unfoldedTailMax)) : '—',
      `${cell(svc, (r) => String(r.errors))}/${cell(peer, (r) => String(r.errors))}`,
      [svc, peer].every((r) => ok(r) && r.acknowledged === r.stored) ? 'yes' : 'NO',
    ]);
    for (const r of [svc, peer]) {
      if (!r) continue;
      const codes = ok(r) ? Object.entries(r.statuses).map(([k, v]) => `${k}×${v}`).join(' ') : '';
      acks.push([
        label(r),
        ok(r) ? String(r.acknowledged) : '—',
        ok(r) ? String(r.stored) : '—',
        ok(r) ? (r.acknowledged === r.stored ? 'yes' : `NO (${r.stored - r.acknowledged >= 0 ? '+' : ''}${r.stored - r.acknowledged})`) : 'run FAILED',
        ok(r) && r.machineCpuBusy !== null ? `${(r.machineCpuBusy * 100).toFixed(0)} %` : '—',
        codes,
      ]);
    }
  }
  console.log(
    table(
      ['N', 'svc ev/s', 'svc p50', 'svc p99', 'svc max', 'peer ev/s', 'peer p50', 'peer p99', 'peer max', 'svc/peer', 'svc scale-up', 'unfolded tail max', 'errors svc/peer', 'acked=stored'],
      rows,
    ),
  );
  console.log('');
  console.log(table(['run', 'acknowledged', 'stored', 'equal', 'machine CPU busy', 'statuses (whole run)'], acks));
  const samples = runs.filter((r) => r.delayMs === delayMs && ok(r) && r.errorSamples.length) as RunResult[];
  for (const r of samples) console.log(`  ${label(r)} errors, e.g.: ${r.errorSamples[0]!.slice(0, 240)}`);
}

// Targets: measured with 2 ms commits at N=16 (pooled rows in --pooler mode), and the PgBouncer runs.
const verdicts: Verdict[] = [];
const notMeasured: string[] = [];
const targetPooled = values.pooler;
const svc16 = find('service', 16, 2, targetPooled);
const peer16 = find('peer', 16, 2, targetPooled);
const svc1 = find('service', 1, 2, targetPooled);
const where = `2 ms commits, N=16${targetPooled ? ', pgbouncer' : ''}`;
if (ok(svc16) && ok(peer16)) {
  const ratio = svc16.eventsPerSec / peer16.eventsPerSec;
  verdicts.push({ name: `${where}: service vs peer events/s`, measured: `${ratio.toFixed(2)}× peer`, target: '≥ 0.60×', met: ratio >= 0.6 });
  const p99 = svc16.latencyMs.p99 / peer16.latencyMs.p99;
  verdicts.push({
    name: `${where}: service p99 vs peer p99`,
    measured: `${ms(svc16.latencyMs.p99)} vs ${ms(peer16.latencyMs.p99)} ms (${p99.toFixed(2)}×)`,
    target: '≤ 2.00× peer',
    met: p99 <= 2,
  });
} else notMeasured.push(`${where}: service vs peer (run with --delay both|on and 16 in --n)`);
if (ok(svc16) && ok(svc1)) {
  const up = svc16.eventsPerSec / svc1.eventsPerSec;
  verdicts.push({ name: `${where}: service scale-up vs its N=1`, measured: `${up.toFixed(2)}×`, target: '≥ 4.00×', met: up >= 4 });
} else notMeasured.push(`${where}: service scale-up (needs N=1 and N=16 with 2 ms commits)`);
const pooledRuns = runs.filter((r) => r.pooled && r.subject === 'service');
if (pooledRuns.length) {
  const good = pooledRuns.filter(ok);
  const errors = good.reduce((a, r) => a + r.errors, 0);
  const acked = good.reduce((a, r) => a + r.acknowledged, 0);
  const stored = good.reduce((a, r) => a + r.stored, 0);
  const allEqual = good.length === pooledRuns.length && good.every((r) => r.acknowledged === r.stored);
  verdicts.push({
    name: `pgbouncer (N=${[...new Set(pooledRuns.map((r) => r.n))].join(',')}): service errors, acked = stored`,
    measured: `${errors} errors, ${acked} acked / ${stored} stored${good.length < pooledRuns.length ? ', a run FAILED' : ''}`,
    target: '0 errors, equal',
    met: errors === 0 && allEqual,
  });
} else notMeasured.push(`pgbouncer: 0 errors, acked = stored (${poolerNote ?? 'no pooled run'})`);

console.log('');
if (verdicts.length) printVerdicts(verdicts);
for (const m of notMeasured) console.log(`not measured: ${m}`);

const file = values.json ? (isAbsolute(values.json) ? values.json : resolve(values.json)) : join(ROOT, 'reports', `fanout-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(join(file, '..'), { recursive: true });
writeFileSync(
  file,
  `${JSON.stringify(
    {
      benchmark: 'fanout',
      machine: machine(),
      cpus: cpuCount,
      date: new Date().toISOString(),
      git,
      package: { module: packageModule, builtAt, builtByThisRun: !values['no-build'] },
      options: { n: ns, seconds, warmupSeconds: warmup, delaysMs: delays, businesses, pooler: values.pooler, poolerSections: sections.filter((s) => s.pooled).map((s) => s.n), poolSize: poolSize ?? null },
      poolerNote: poolerNote ?? null,
      runs,
      verdicts,
      notMeasured,
      failures,
      targetsMet: verdicts.every((v) => v.met),
    },
    null,
    2,
  )}\n`,
);

const missed = verdicts.filter((v) => !v.met).map((v) => v.name);
if (failures.length) {
  const bar = '!'.repeat(78);
  const text = `\n${bar}\n!! FAIL: ${failures.length} run(s) broke the write path's promise (every acknowledged event stored):\n${failures.map((f) => `!!   ${f}`).join('\n')}\n${bar}`;
  console.log(text);
  console.error(text);
}
console.log(`\n${missed.length ? `Targets missed: ${missed.length} of ${verdicts.length}.` : verdicts.length ? 'Every target measured was met.' : 'No target measured.'} Results: ${file}`);
process.exit(failures.length || (values.strict && missed.length) ? 1 : 0);
