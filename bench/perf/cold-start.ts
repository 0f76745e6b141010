/**
 * Cold start: a fresh Node process that loads the packaged handler and answers its first request,
 * against a fresh process running a one-line hello-world handler, alternated, median of N runs.
 *
 *   npm run bench:perf -- cold-start [--runs 15]
 *
 * Children get the environment Lambda gives a function (and NODE_EXTRA_CA_CERTS when this machine
 * sets it, as it does here: it alone nearly doubles Node's start-up). Targets (issue 8):
 * GET /health ≤ 2.0× hello world; a first POST /track against the local PostgreSQL, connect
 * included, ≤ 2.6×.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgresStore } from '../../src/storage/postgres.ts';
import { createBenchDatabase, machine, median, printVerdicts, ROOT, table } from './lib.ts';

interface Sample {
  wallMs: number;
  processStartMs: number;
  loadMs: number;
  firstRequestMs: number;
  status: number | null;
}

const HARNESS = join(ROOT, 'bench/perf/harness/invoke-once.mjs');
const HELLO = join(ROOT, 'bench/perf/harness/hello.mjs');

function lambdaEnv(extra: Record<string, string>): Record<string, string> {
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
  if (process.env.NODE_EXTRA_CA_CERTS) env.NODE_EXTRA_CA_CERTS = process.env.NODE_EXTRA_CA_CERTS;
  return env;
}

function runOnce(module: string, exportName: string, eventFile: string, env: Record<string, string>): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [HARNESS, module, exportName, eventFile], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const line = /\nHARNESS (.*)\n/.exec(out);
      if (line) {
        const wallMs = performance.now() - started;
        resolve({ wallMs, ...(JSON.parse(line[1]!) as Omit<Sample, 'wallMs'>) });
      }
    });
    child.on('exit', (code) => {
      if (!/\nHARNESS /.test(out)) reject(new Error(`harness exited ${code} without a result:\n${out.slice(-2000)}`));
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

export interface ColdStartResult {
  runs: number;
  hello: Sample[];
  health: Sample[];
  track: Sample[] | null;
  ratios: { health: number; track: number | null };
}

export async function coldStart(runs: number, options: { withDatabase: boolean }): Promise<ColdStartResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mlops-cold-'));
  const healthEvent = join(dir, 'health.json');
  const trackEvent = join(dir, 'track.json');
  writeFileSync(healthEvent, JSON.stringify(coldStartEvent('GET', '/health')));
  writeFileSync(trackEvent, JSON.stringify(coldStartEvent('POST', '/track', { business_id: 'bench', response_time_ms: 420, tokens_used: 300 })));
  const packaged = join(ROOT, 'dist/lambda/index.mjs');

  const db = options.withDatabase ? await createBenchDatabase('cold') : undefined;
  if (db) {
    const store = openPostgresStore({ url: db.url, poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
    await store.migrate();
    await store.close();
  }
  const hello: Sample[] = [];
  const health: Sample[] = [];
  const track: Sample[] = [];
  try {
    // One untimed round first: the file cache, not the code, would otherwise decide the first run.
    await runOnce(HELLO, 'handler', healthEvent, lambdaEnv({}));
    await runOnce(packaged, 'handler', healthEvent, lambdaEnv({}));
    for (let i = 0; i < runs; i++) {
      hello.push(await runOnce(HELLO, 'handler', healthEvent, lambdaEnv({})));
      health.push(await runOnce(packaged, 'handler', healthEvent, lambdaEnv(db ? { DATABASE_URL: db.url } : {})));
      if (db) track.push(await runOnce(packaged, 'handler', trackEvent, lambdaEnv({ DATABASE_URL: db.url })));
      if (process.stderr.isTTY) process.stderr.write(`\r  cold starts: ${i + 1}/${runs}`);
    }
    if (process.stderr.isTTY) process.stderr.write('\n');
  } finally {
    await db?.drop();
  }
  const base = median(hello.map((s) => s.wallMs));
  const bad = [...health, ...track].find((s) => s.status !== 200);
  if (bad) throw new Error(`a cold request answered ${bad.status}`);
  return {
    runs,
    hello,
    health,
    track: db ? track : null,
    ratios: { health: median(health.map((s) => s.wallMs)) / base, track: db ? median(track.map((s) => s.wallMs)) / base : null },
  };
}

export function printColdStart(r: ColdStartResult): boolean {
  const row = (name: string, s: Sample[]) => [
    name,
    median(s.map((x) => x.wallMs)).toFixed(1),
    median(s.map((x) => x.processStartMs)).toFixed(1),
    median(s.map((x) => x.loadMs)).toFixed(1),
    median(s.map((x) => x.firstRequestMs)).toFixed(1),
    (median(s.map((x) => x.wallMs)) / median(r.hello.map((x) => x.wallMs))).toFixed(2),
  ];
  console.log(`\nCold start, median of ${r.runs} fresh processes each, alternated (${machine()})`);
  console.log(`NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set' : 'unset'} in the children, as in this environment\n`);
  const rows = [row('hello-world handler', r.hello), row('packaged: GET /health', r.health)];
  if (r.track) rows.push(row('packaged: first POST /track', r.track));
  console.log(table(['process', 'wall ms', 'node start', 'module load', 'first request', '× hello'], rows));
  if (r.track) {
    const db = median(r.track.map((x) => x.firstRequestMs)) - median(r.health.map((x) => x.firstRequestMs));
    console.log(`\nDatabase share of the first /track (driver load + connect + commit): ≈ ${db.toFixed(1)} ms`);
  }
  console.log('');
  const verdicts = [
    { name: 'cold GET /health', measured: `${r.ratios.health.toFixed(2)}× hello`, target: '≤ 2.00×', met: r.ratios.health <= 2.0 },
  ];
  if (r.ratios.track !== null) {
    verdicts.push({ name: 'cold POST /track (+connect)', measured: `${r.ratios.track.toFixed(2)}× hello`, target: '≤ 2.60×', met: r.ratios.track <= 2.6 });
  }
  printVerdicts(verdicts);
  return verdicts.every((v) => v.met);
}
