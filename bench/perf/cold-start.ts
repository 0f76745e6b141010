/**
 * Cold start: a fresh Node process loads the packaged handler and answers its first request
 * (`GET /health`, a first `POST /track` that connects to the local PostgreSQL and commits, a first
 * `GET /metrics`), against a fresh process running a one-line hello-world handler on the same Node.
 * Every round runs each variant once on each Node, in turn (interleaved, so a change in the
 * machine's load hits every side alike); the figures are medians with their spread.
 *
 *   npm run bench:perf -- cold-start [--runs 20] [--node 22,20]
 *
 * The Node that Lambda runs (`nodejs22.x`) is installed from the npm registry on demand (see
 * tools/shared/node-runtime.ts); the host's Node is measured beside it for reference.
 * Children get the environment a Lambda function gets and nothing else from this machine: in
 * particular never NODE_EXTRA_CA_CERTS (Lambda's Node 20+ runtimes do not set it, and it nearly
 * doubles Node's start-up, which would inflate the hello-world denominator) nor NODE_OPTIONS.
 *
 * Targets (issue 14), on Lambda's Node: GET /health ≤ 1.5× hello world; a first POST /track,
 * connect included, ≤ 2.3×.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgresStore } from '../../src/storage/postgres.ts';
import type { NodeRuntime } from '../../tools/shared/node-runtime.ts';
import { createBenchDatabase, median, printVerdicts, quantile, ROOT, table } from './lib.ts';

export interface Sample {
  wallMs: number;
  processStartMs: number;
  loadMs: number;
  firstRequestMs: number;
  /** The child's own CPU time (user + system) up to its answer. */
  cpuMs: number;
  status: number | null;
}

export const VARIANTS = ['hello', 'health', 'track', 'metrics'] as const;
export type Variant = (typeof VARIANTS)[number];

const HARNESS = join(ROOT, 'bench/perf/harness/invoke-once.mjs');
const HELLO = join(ROOT, 'bench/perf/harness/hello.mjs');

/**
 * The environment Lambda gives a function (names and values from a real nodejs22.x function),
 * plus `extra` (the function's own configuration). Built from scratch: nothing of this machine's
 * environment reaches the child but PATH.
 */
export function lambdaEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: 'mlops-service-lambda',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]0123456789abcdef',
    ...extra,
  };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_OPTIONS;
  return env;
}

function runOnce(node: string, module: string, eventFile: string, env: Record<string, string>): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(node, [HARNESS, module, 'handler', eventFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const line = /\nHARNESS (.*)\n/.exec(out);
      if (line) {
        const wallMs = performance.now() - started;
        resolve({ wallMs, ...(JSON.parse(line[1]!) as Omit<Sample, 'wallMs'>) });
      }
    });
    child.on('exit', (code) => {
      if (!/\nHARNESS /.test(out)) reject(new Error(`harness exited ${code} without a result:\n${out.slice(-2000)}${err.slice(-2000)}`));
    });
  });
}

/** The console-shaped HTTP API v2 event the benchmarks invoke the handler with. */
export function coldStartEvent(method: string, path: string, body?: unknown) {
  const rawPath = `/default/mlops-service-lambda${path}`;
  return {
    version: '2.0',
    routeKey: 'ANY /mlops-service-lambda/{proxy+}',
    rawPath,
    rawQueryString: '',
    headers: { accept: '*/*', host: 'abc123.execute-api.us-east-1.amazonaws.com', 'content-type': 'application/json', 'user-agent': 'bench' },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
      requestId: 'bench',
      routeKey: 'ANY /mlops-service-lambda/{proxy+}',
      stage: 'default',
      time: '01/Jan/2026:00:00:00 +0000',
      timeEpoch: 1767225600000,
    },
    pathParameters: { proxy: path.slice(1) },
    isBase64Encoded: false,
    ...(body ? { body: JSON.stringify(body) } : {}),
  };
}

/** Median and spread (quartiles, extremes) of one measure. */
export interface Spread {
  median: number;
  p25: number;
  p75: number;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  return {
    median: median(values),
    p25: quantile(values, 0.25),
    p75: quantile(values, 0.75),
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

export interface VariantSummary {
  wallMs: Spread;
  processStartMs: Spread;
  loadMs: Spread;
  firstRequestMs: Spread;
  cpuMs: Spread;
}

export interface RatioSummary {
  /** median(variant wall) ÷ median(hello wall): the headline figure. */
  ofMedians: number;
  /** variant ÷ hello within each round (the two ran seconds apart): median and quartiles. */
  paired: Spread;
  /** median(variant CPU time) ÷ median(hello CPU time): the same comparison, robust to load. */
  cpuOfMedians: number;
}

export interface ColdStartRuntime {
  node: NodeRuntime;
  samples: Partial<Record<Variant, Sample[]>>;
  summary: Partial<Record<Variant, VariantSummary>>;
  ratios: Partial<Record<Exclude<Variant, 'hello'>, RatioSummary>>;
}

export interface ColdStartResult {
  runs: number;
  /** How the children's environment was built (for the record: never NODE_EXTRA_CA_CERTS). */
  childEnvironment: string;
  variants: Variant[];
  /** The first is Lambda's Node (the targets apply to it), the others are for reference. */
  runtimes: ColdStartRuntime[];
}

function summarise(samples: Sample[]): VariantSummary {
  return {
    wallMs: spread(samples.map((s) => s.wallMs)),
    processStartMs: spread(samples.map((s) => s.processStartMs)),
    loadMs: spread(samples.map((s) => s.loadMs)),
    firstRequestMs: spread(samples.map((s) => s.firstRequestMs)),
    cpuMs: spread(samples.map((s) => s.cpuMs)),
  };
}

export interface ColdStartOptions {
  withDatabase: boolean;
  nodes: NodeRuntime[];
  /** The packaged handler module (default dist/lambda/index.mjs). */
  module?: string;
  /** Which variants to run (default: all four with a database, hello and health without). */
  variants?: Variant[];
  progress?: boolean;
}

export async function coldStart(runs: number, options: ColdStartOptions): Promise<ColdStartResult> {
  if (options.nodes.length === 0) throw new Error('coldStart needs at least one Node runtime');
  const dir = mkdtempSync(join(tmpdir(), 'mlops-cold-'));
  const events: Record<Exclude<Variant, 'hello'>, string> = {
    health: join(dir, 'health.json'),
    track: join(dir, 'track.json'),
    metrics: join(dir, 'metrics.json'),
  };
  writeFileSync(events.health, JSON.stringify(coldStartEvent('GET', '/health')));
  writeFileSync(events.track, JSON.stringify(coldStartEvent('POST', '/track', { business_id: 'bench', response_time_ms: 420, tokens_used: 300 })));
  writeFileSync(events.metrics, JSON.stringify(coldStartEvent('GET', '/metrics')));
  const packaged = options.module ?? join(ROOT, 'dist/lambda/index.mjs');
  const variants: Variant[] = options.variants ?? (options.withDatabase ? [...VARIANTS] : ['hello', 'health']);
  if (variants[0] !== 'hello') throw new Error('the hello-world variant comes first: every ratio is against it');

  const db = options.withDatabase ? await createBenchDatabase('cold') : undefined;
  if (db) {
    const store = openPostgresStore({ url: db.url, poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
    await store.migrate();
    await store.close();
  }
  const env = lambdaEnv(db ? { DATABASE_URL: db.url } : {});
  const run = (node: NodeRuntime, variant: Variant) =>
    variant === 'hello' ? runOnce(node.path, HELLO, events.health, env) : runOnce(node.path, packaged, events[variant], env);
  const samples = options.nodes.map(() => Object.fromEntries(variants.map((v) => [v, [] as Sample[]])) as Record<Variant, Sample[]>);
  const showProgress = options.progress ?? process.stderr.isTTY;
  try {
    // One untimed round first: the file cache, not the code, would otherwise decide the first run.
    for (const node of options.nodes) for (const v of variants) await run(node, v);
    for (let i = 0; i < runs; i++) {
      // Rotate the order within a round so no variant always runs right after the same one.
      const order = variants.map((_, k) => variants[(k + i) % variants.length]!);
      for (const [n, node] of options.nodes.entries()) {
        for (const v of order) samples[n]![v].push(await run(node, v));
      }
      if (showProgress) process.stderr.write(`\r  cold starts: round ${i + 1}/${runs}`);
    }
    if (showProgress) process.stderr.write('\n');
  } finally {
    await db?.drop();
  }
  const bad = samples.flatMap((s) => variants.flatMap((v) => s[v])).find((s) => s.status !== 200);
  if (bad) throw new Error(`a cold request answered ${bad.status}`);

  const runtimes = options.nodes.map((node, n): ColdStartRuntime => {
    const s = samples[n]!;
    const hello = s.hello.map((x) => x.wallMs);
    const ratios: ColdStartRuntime['ratios'] = {};
    for (const v of variants) {
      if (v === 'hello') continue;
      const walls = s[v].map((x) => x.wallMs);
      ratios[v] = {
        ofMedians: median(walls) / median(hello),
        paired: spread(walls.map((w, i) => w / hello[i]!)),
        cpuOfMedians: median(s[v].map((x) => x.cpuMs)) / median(s.hello.map((x) => x.cpuMs)),
      };
    }
    return { node, samples: s, summary: Object.fromEntries(variants.map((v) => [v, summarise(s[v])])), ratios };
  });
  return { runs, childEnvironment: 'Lambda variables only (PATH, LANG, TZ, AWS_*); NODE_EXTRA_CA_CERTS and NODE_OPTIONS never set', variants, runtimes };
}

const LABELS: Record<Variant, string> = {
  hello: 'hello-world handler',
  health: 'packaged: GET /health',
  track: 'packaged: first POST /track (connect + insert)',
  metrics: 'packaged: first GET /metrics (connect + query)',
};

export const COLD_TARGETS = { health: 1.5, track: 2.3 } as const;

const fmt = (s: Spread, digits = 1) => `${s.median.toFixed(digits)} (${s.p25.toFixed(digits)}–${s.p75.toFixed(digits)})`;

export function printColdStart(r: ColdStartResult): boolean {
  console.log(`\nCold start: fresh processes, ${r.runs} interleaved rounds; medians (interquartile range) in ms`);
  console.log('× hello: median wall ÷ median hello wall (the target figure); paired: round by round; CPU: the child\'s own CPU time');
  console.log(`Children: ${r.childEnvironment}\n`);
  for (const [i, rt] of r.runtimes.entries()) {
    console.log(`Node ${rt.node.version}${i === 0 ? ' (what nodejs22.x runs: the targets apply here)' : ' (reference)'} — ${rt.node.path}`);
    const rows = r.variants.map((v) => {
      const s = rt.summary[v]!;
      const p = v === 'hello' ? undefined : rt.ratios[v]?.paired;
      const ratio = v === 'hello' ? '1.00' : rt.ratios[v]!.ofMedians.toFixed(2);
      const paired = p ? `${p.median.toFixed(2)} (${p.p25.toFixed(2)}–${p.p75.toFixed(2)})` : '';
      const cpu = v === 'hello' ? '1.00' : rt.ratios[v]!.cpuOfMedians.toFixed(2);
      return [LABELS[v], fmt(s.wallMs), s.processStartMs.median.toFixed(1), s.loadMs.median.toFixed(1), s.firstRequestMs.median.toFixed(1), ratio, paired, s.cpuMs.median.toFixed(1), cpu];
    });
    console.log(table(['process', 'wall ms', 'node start', 'module load', 'first request', '× hello', 'paired × (IQR)', 'CPU ms', 'CPU × hello'], rows));
    console.log('');
  }
  const lambda = r.runtimes[0]!;
  const verdicts = [];
  if (lambda.ratios.health) {
    const x = lambda.ratios.health.ofMedians;
    verdicts.push({ name: `cold GET /health, Node ${lambda.node.major}`, measured: `${x.toFixed(2)}× hello`, target: `≤ ${COLD_TARGETS.health.toFixed(2)}×`, met: x <= COLD_TARGETS.health });
  }
  if (lambda.ratios.track) {
    const x = lambda.ratios.track.ofMedians;
    verdicts.push({ name: `cold POST /track (+connect), Node ${lambda.node.major}`, measured: `${x.toFixed(2)}× hello`, target: `≤ ${COLD_TARGETS.track.toFixed(2)}×`, met: x <= COLD_TARGETS.track });
  }
  if (lambda.ratios.metrics) {
    verdicts.push({ name: `cold GET /metrics (+connect), Node ${lambda.node.major}`, measured: `${lambda.ratios.metrics.ofMedians.toFixed(2)}× hello`, target: 'reported', met: true });
  }
  printVerdicts(verdicts);
  return verdicts.every((v) => v.met);
}
