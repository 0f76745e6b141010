/**
 * `npm run bench:perf`: the performance targets of the project, each measured with its baseline
 * side by side in the same run (ratios and medians decide; the machines are shared and noisy).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { coldStart, printColdStart } from './cold-start.ts';
import { machine, ROOT } from './lib.ts';
import { packageSize, printPackage } from './package-size.ts';
import { printScale, scale, type ScaleRow } from './scale.ts';
import { printThroughput, throughput } from './throughput.ts';
import { printWarm, warmHandler } from './warm-handler.ts';

const ALL = ['package', 'cold-start', 'warm', 'throughput', 'scale'] as const;
type Name = (typeof ALL)[number];

const HELP = `Usage: npm run bench:perf -- [${ALL.join('|')} ...] [options]

Runs the named benchmarks (default: all) after building the packages (npm run package).
Needs the local PostgreSQL (127.0.0.1:5432, or BENCH_DATABASE_URL) and wrk (apt-get install wrk).

  --quick             small sizes, for a smoke run (a minute or two)
  --runs N            cold starts per variant (default 15)
  --iterations N      warm invocations per event (default 50000)
  --seconds N         wrk duration per throughput run (default 15)
  --small N           events for the small scale point (default 10000)
  --large N           events for the large scale point (default 1000000)
  --tail N            events stored unfolded on top of the large point (default 50000)
  --backends LIST     scale backends: postgres,pglite (default both)
  --json FILE         also write the results as JSON (default reports/perf-<time>.json)
  --strict            exit 1 when a target is missed
  --help              this text`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    iterations: { type: 'string' },
    seconds: { type: 'string' },
    small: { type: 'string' },
    large: { type: 'string' },
    tail: { type: 'string' },
    backends: { type: 'string', default: 'postgres,pglite' },
    json: { type: 'string' },
    strict: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const unknown = positionals.filter((p) => !ALL.includes(p as Name));
if (unknown.length) {
  console.error(`Unknown benchmark: ${unknown.join(', ')}. Choose from ${ALL.join(', ')}.`);
  process.exit(2);
}
const selected = (positionals.length ? positionals : ALL) as Name[];
const num = (v: string | undefined, quick: number, full: number, name: string) => {
  const n = v === undefined ? (values.quick ? quick : full) : Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} must be a positive number`);
    process.exit(2);
  }
  return n;
};
const runs = num(values.runs, 5, 15, 'runs');
const iterations = num(values.iterations, 5000, 50000, 'iterations');
const seconds = num(values.seconds, 4, 15, 'seconds');
const small = num(values.small, 2000, 10_000, 'small');
const large = num(values.large, 20_000, 1_000_000, 'large');
const tail = num(values.tail, 5_000, 50_000, 'tail');
const backends = values.backends!.split(',').map((b) => b.trim()) as ('postgres' | 'pglite')[];

console.log(`mlops-service performance benchmarks — ${machine()}`);
console.log('Building the packages (npm run package)…');
execFileSync(process.execPath, ['--import', 'tsx', 'scripts/package-lambda.ts', '--quiet'], { cwd: ROOT, stdio: 'inherit' });

const results: Record<string, unknown> = { machine: machine(), date: new Date().toISOString() };
const met: Record<string, boolean> = {};
for (const name of selected) {
  if (name === 'package') {
    const r = packageSize();
    results.package = r;
    met.package = printPackage(r);
  } else if (name === 'cold-start') {
    const r = await coldStart(runs, { withDatabase: true });
    results.coldStart = r;
    met['cold-start'] = printColdStart(r);
  } else if (name === 'warm') {
    const r = await warmHandler(iterations, { withDatabase: true });
    results.warm = r;
    met.warm = printWarm(r);
  } else if (name === 'throughput') {
    const r = await throughput(seconds, 32, { pglite: backends.includes('pglite') });
    results.throughput = r;
    met.throughput = printThroughput(r);
  } else if (name === 'scale') {
    const rows: ScaleRow[] = [];
    for (const backend of backends) rows.push(await scale(backend, small, large, values.quick ? 20 : 100, tail));
    results.scale = rows;
    met.scale = printScale(rows);
  }
}

const file = values.json ?? join(ROOT, 'reports', `perf-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(join(file, '..'), { recursive: true });
writeFileSync(file, `${JSON.stringify({ ...results, targetsMet: met }, null, 2)}\n`);
const missed = Object.entries(met).filter(([, ok]) => !ok).map(([n]) => n);
console.log(`\n${missed.length ? `Targets missed: ${missed.join(', ')}` : 'Every target met.'} Results: ${file}`);
if (values.strict && missed.length) process.exit(1);
