// `npm run bench -- --target server=URL --target lambda=URL …` (and the `mlops-bench` bin):
// parses flags, runs tools/bench/bench.ts, prints tables or JSON. Logic lives in bench.ts.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BenchUsageError, formatDuration, isLoopbackUrl, runBench, type BenchResult } from './bench.ts';
import { formatBench } from './format.ts';
import { LOAD_OPTIONS, parseCount, parseDuration, parseEndpoints, parseTargets, UsageError } from './args.ts';
import { createProgress } from './progress.ts';
import { defaultIo, type CliIo } from '../shared/cli-io.ts';


export const DEFAULTS = { requests: 500, concurrency: 8, coldSamples: 3, timeoutMs: 30_000 };

export const HELP = `Usage: npm run bench -- --target NAME=URL [--target NAME=URL …] [options]
       mlops-bench --target NAME=URL … [options]

Measures the latency of running copies of the service, each given by its base URL (the Node
server, e.g. http://127.0.0.1:5001, or the Lambda function behind API Gateway or the local
emulator, e.g. http://127.0.0.1:3001/default/mlops-service-lambda). For each target and endpoint
(GET /health, POST /track with realistic events, GET /metrics):

  warm   WARMUP unmeasured requests, then REQUESTS measured ones at CONCURRENCY, over keep-alive
         connections: p50/p90/p99/max/mean, throughput, errors by status, and the service's own
         time (Server-Timing: app;dur) so network and gateway time can be told apart.
  cold   COLD-SAMPLES requests that should each meet a cold start, on a new connection. A URL
         cannot be made cold from here: pass --cold-wait to wait out the idle time before each
         one (Lambda keeps idle environments for minutes; AWS does not publish how long), or the
         cold samples are skipped with a note. \`npm run compare:local\` forces them instead.

Every answer is classified by its X-Cold-Start header: cold answers during the load phase are
left out of the warm figures, warm answers to a cold sample are left out of the cold ones (both
are counted). Percentiles are nearest-rank. Only 2xx answers enter the latency figures.

Targets
  --target NAME=URL       a service base URL (repeatable; a bare URL is named target1, …)
  --i-own-this-target     allow URLs that are not this machine (localhost, 127.x, ::1). A
                          benchmark is a load test and a real deployment bills per request:
                          only point it at deployments you own.

Load
  --endpoints LIST        comma list of health, track, metrics      default all three
  --requests N            measured requests per target and endpoint default ${DEFAULTS.requests}
  --concurrency N         requests in flight at once                 default ${DEFAULTS.concurrency}
  --warmup N              unmeasured requests before each load phase default 5 × concurrency
  --cold-samples N        cold samples per target and endpoint      default ${DEFAULTS.coldSamples}
  --cold-wait DURATION    idle time before each cold sample, e.g. 15m (rounds are shared by
                          all targets; total wait = endpoints × cold samples × DURATION)
  --timeout DURATION      per-request timeout                        default 30s
  --seed N                seed of the generated /track events        default 1

Authentication
  --api-key KEY           sent as X-API-Key on POST /track (when the service has MLOPS_API_KEY(S))
  --metrics-token TOKEN   sent as a bearer token on GET /metrics (default: the --api-key)

Output
  --json                  print the full result as JSON on stdout (schema "mlops-bench/1",
                          documented at the top of tools/bench/bench.ts; includes every raw
                          sample) instead of the tables
  --out FILE              also write that JSON to FILE
  -h, --help              this text

Progress goes to stderr: a bar on a terminal, one line per stage otherwise.

Examples
  npm run bench -- --target server=http://127.0.0.1:5001 --requests 2000 --concurrency 16
  npm run bench -- --target lambda=https://abc123.execute-api.us-east-1.amazonaws.com/default/mlops-service-lambda \\
      --i-own-this-target --api-key "$MLOPS_API_KEY" --cold-wait 15m --cold-samples 2
`;

const OPTIONS = {
  ...LOAD_OPTIONS,
  endpoints: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Checks every target answers GET /health before any load, so a typo fails in one clear line. */
async function reachable(name: string, url: string, timeoutMs: number): Promise<string | null> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    if (res.status >= 500 || res.status === 404) return `target ${name}: GET ${url}/health answered ${res.status}; is this the service's base URL?`;
    return null;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return `target ${name}: cannot reach ${url}/health (${cause?.code ?? cause?.message ?? (err as Error).message})`;
  }
}

export async function runBenchCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  try {
    let values;
    try {
      ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (values.help) {
      io.stdout(HELP);
      return 0;
    }
    const targets = parseTargets(values.target);
    const remote = targets.filter((t) => !isLoopbackUrl(t.url));
    if (remote.length > 0 && !values['i-own-this-target']) {
      io.stderr(
        `bench: refusing to load ${remote.map((t) => `${t.name} (${new URL(t.url).host})`).join(', ')}: not this machine.\n` +
          'A benchmark sends hundreds of requests: point it only at deployments you own (a real Lambda bills each one).\n' +
          'Pass --i-own-this-target to confirm.\n',
      );
      return 2;
    }
    const concurrency = parseCount('--concurrency', values.concurrency, DEFAULTS.concurrency, 1, 1000);
    const options = {
      targets: targets.map((t) => ({ name: t.name, url: t.url })),
      endpoints: parseEndpoints(values.endpoints),
      requests: parseCount('--requests', values.requests, DEFAULTS.requests),
      concurrency,
      warmup: parseCount('--warmup', values.warmup, concurrency * 5, 0),
      coldSamples: parseCount('--cold-samples', values['cold-samples'], DEFAULTS.coldSamples, 0, 1000),
      ...(values['cold-wait'] !== undefined ? { coldWaitMs: parseDuration('--cold-wait', values['cold-wait']) } : {}),
      timeoutMs: values.timeout !== undefined ? parseDuration('--timeout', values.timeout) : DEFAULTS.timeoutMs,
      seed: parseCount('--seed', values.seed, 1, 0, 2 ** 31),
      ...(values['api-key'] !== undefined ? { apiKey: values['api-key'] } : {}),
      ...(values['metrics-token'] !== undefined ? { metricsToken: values['metrics-token'] } : {}),
      allowRemote: Boolean(values['i-own-this-target']),
    };
    if (options.timeoutMs <= 0) throw new UsageError('--timeout must be more than 0');

    for (const t of targets) {
      const problem = await reachable(t.name, t.url, Math.min(options.timeoutMs, 10_000));
      if (problem) {
        io.stderr(`bench: ${problem}\n`);
        return 1;
      }
    }
    if (options.coldWaitMs !== undefined && options.coldSamples > 0) {
      const total = options.coldWaitMs * options.coldSamples * options.endpoints.length;
      io.stderr(`bench: cold samples by waiting: ${formatDuration(total)} of waiting in total, after the warm measurements.\n`);
    }

    const progress = createProgress(io.progress ?? process.stderr);
    let result: BenchResult;
    try {
      result = await runBench({ ...options, onProgress: (p) => progress.update(p) });
    } finally {
      progress.end();
    }
    const json = JSON.stringify(result);
    if (values.out) writeFileSync(resolve(values.out), `${json}\n`);
    io.stdout(values.json ? `${json}\n` : formatBench(result));
    if (values.out && !values.json) io.stdout(`\nJSON with every sample: ${resolve(values.out)}\n`);
    const dead = result.targets.flatMap((t) => t.endpoints.filter((e) => e.counts.ok === 0).map((e) => `${t.name} ${e.method} ${e.path}`));
    if (dead.length) {
      io.stderr(`bench: no successful answer from ${dead.join(', ')}\n`);
      return 1;
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof BenchUsageError) {
      io.stderr(`bench: ${err.message}\nRun with --help for the list of options.\n`);
      return 2;
    }
    io.stderr(`bench: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

// Run only when executed directly (tsx tools/bench/cli.ts or the bin), not when imported by tests.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runBenchCli(process.argv.slice(2));
}
