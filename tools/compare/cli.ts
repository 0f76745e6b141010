/**
 * `npm run compare -- --target server=URL --target lambda=URL`: the same report as
 * compare:local, against deployments (the two CDK stacks) instead of local processes. Nothing is
 * started; Lambda cold starts are sampled by waiting out the idle time (--cold-wait) or skipped
 * with a note; the billed duration is not visible from outside, so it comes from --billed-ms
 * (CloudWatch REPORT lines) or, failing that, from the service's Server-Timing as a lower bound.
 */
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BenchUsageError, formatDuration, isLoopbackUrl, runBench, type BenchResult } from '../bench/bench.ts';
import { LOAD_OPTIONS, parseCount, parseDuration, parseTargets, UsageError } from '../bench/args.ts';
import { createProgress } from '../bench/progress.ts';
import { COST_HELP, COST_OPTIONS, defaultIo, loadPrices, parseCostSettings, printSummary, type CliIo } from './common.ts';
import { buildReport, COMPARE_SCHEMA, DAYS_PER_MONTH, type CompareReport, type CostSettings } from './report.ts';
import { loadChartAssets, ROOT, writeReport } from './render.ts';

export const REMOTE_DEFAULTS = { requests: 300, concurrency: 4, coldSamples: 2 };

export const HELP = `Usage: npm run compare -- --target server=URL --target lambda=URL [options]

The comparison report of \`npm run compare:local\`, against the deployed stacks (npm run
deploy:server, npm run deploy:lambda): benches both URLs, prices the Lambda side with the cost
model and writes reports/compare-<timestamp>.{html,md,json}. Nothing is started here.

Every request is a billed request on your AWS account (about $1-4 per million with API
Gateway), so URLs other than this machine need --i-own-this-target.

Targets (both required)
  --target server=URL     base URL of the server stack, e.g. http://203.0.113.10:5001
  --target lambda=URL     base URL of the Lambda stack's HTTP API, e.g.
                          https://abc123.execute-api.us-east-1.amazonaws.com
  --i-own-this-target     confirm the URLs are deployments you own

Load
  --requests N            measured requests per endpoint and side    default ${REMOTE_DEFAULTS.requests}
  --concurrency N         requests in flight at once                 default ${REMOTE_DEFAULTS.concurrency}
  --warmup N              unmeasured requests before each load phase default 5 × concurrency
  --cold-samples N        Lambda cold samples per endpoint (with --cold-wait)
                                                                     default ${REMOTE_DEFAULTS.coldSamples}
  --cold-wait DURATION    idle time before each cold sample, e.g. 15m. AWS keeps idle
                          environments for an unpublished time (often 5-15 min); answers still
                          marked warm are counted as missed. The stack's warmer keeps one
                          environment warm: disable it (lambda.warmer.enabled=false) for this.
                          Without --cold-wait cold starts are skipped, and the report says so.
  --timeout DURATION      per-request timeout                        default 30s
  --api-key KEY           sent as X-API-Key on POST /track
  --metrics-token TOKEN   sent as a bearer token on GET /metrics (default: the --api-key)

Cost
  --billed-ms N           the function's average billed duration, from CloudWatch Logs
                          Insights on its log group:
                            filter @type = "REPORT" | stats avg(@billedDuration)
                          Without it the report uses the mean Server-Timing of warm POST /track
                          (the handler's own time: a lower bound) and says so.
${COST_HELP.split('\n').slice(1).join('\n')}

Output
  --out DIR               where the report goes                      default reports/
  --from FILE             no benchmark: re-price and re-render a saved report
                          (reports/compare-*.json) with today's price table and the cost
                          flags given here (the others keep the report's values)
  -h, --help              this text
`;

const OPTIONS = {
  ...LOAD_OPTIONS,
  'billed-ms': { type: 'string' },
  from: { type: 'string' },
  ...COST_OPTIONS,
} as const;

export async function runCompareCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const t0 = performance.now();
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
    if (values.from !== undefined) return reprice(values.from, values, io, t0);
    const targets = parseTargets(values.target);
    const server = targets.find((t) => t.name === 'server');
    const lambda = targets.find((t) => t.name === 'lambda');
    if (!server || !lambda || targets.length !== 2) throw new UsageError('give exactly --target server=URL and --target lambda=URL');
    const remote = targets.filter((t) => !isLoopbackUrl(t.url));
    if (remote.length && !values['i-own-this-target']) {
      io.stderr(
        `compare: refusing to load ${remote.map((t) => `${t.name} (${new URL(t.url).host})`).join(', ')}: not this machine. ` +
          'Every request is billed to the owner of the deployment; pass --i-own-this-target to confirm it is yours.\n',
      );
      return 2;
    }
    const prices = loadPrices();
    const cost = parseCostSettings(values, prices);
    const concurrency = parseCount('--concurrency', values.concurrency, REMOTE_DEFAULTS.concurrency, 1, 256);
    const coldWaitMs = values['cold-wait'] !== undefined ? parseDuration('--cold-wait', values['cold-wait']) : undefined;
    const coldSamples = parseCount('--cold-samples', values['cold-samples'], REMOTE_DEFAULTS.coldSamples, 0, 100);
    let billedMs: number | undefined;
    if (values['billed-ms'] !== undefined) {
      billedMs = Number(values['billed-ms']);
      if (!(billedMs > 0 && billedMs <= 900_000)) throw new UsageError(`--billed-ms expects a number of milliseconds above 0, got "${values['billed-ms']}"`);
    }
    const outDir = values.out ? resolve(values.out) : join(ROOT, 'reports');
    const notes: string[] = [];
    if (coldWaitMs === undefined && coldSamples > 0) {
      notes.push('Lambda cold starts were skipped: a deployed function cannot be made cold from outside; rerun with --cold-wait 15m to sample them by waiting.');
    } else if (coldWaitMs !== undefined && coldSamples > 0) {
      io.stderr(`compare: cold samples wait ${formatDuration(coldWaitMs)} each: ${formatDuration(coldWaitMs * coldSamples * 3)} of waiting after the warm runs.\n`);
    }

    io.stderr(`compare: benching ${server.url} and ${lambda.url}\n`);
    const progress = createProgress(io.progress ?? process.stderr);
    let bench: BenchResult;
    try {
      bench = await runBench({
        targets: [
          { name: 'server', url: server.url, noColdStarts: 'not applicable: a long-running server has no per-request cold start (it always answers X-Cold-Start: false)' },
          { name: 'lambda', url: lambda.url },
        ],
        requests: parseCount('--requests', values.requests, REMOTE_DEFAULTS.requests),
        concurrency,
        warmup: parseCount('--warmup', values.warmup, concurrency * 5, 0),
        coldSamples,
        ...(coldWaitMs !== undefined ? { coldWaitMs } : {}),
        timeoutMs: values.timeout !== undefined ? parseDuration('--timeout', values.timeout) : 30_000,
        ...(values['api-key'] !== undefined ? { apiKey: values['api-key'] } : {}),
        ...(values['metrics-token'] !== undefined ? { metricsToken: values['metrics-token'] } : {}),
        allowRemote: Boolean(values['i-own-this-target']),
        onProgress: (p) => progress.update(p),
      });
    } finally {
      progress.end();
    }
    const report = buildReport({
      mode: 'remote',
      bench,
      prices,
      costSettings: cost,
      ...(billedMs !== undefined ? { billedMsOverride: billedMs } : {}),
      notes,
      environment: {
        database: { kind: 'unknown', description: 'as deployed (not visible from here)' },
        server: { how: `deployed, ${server.url}`, startupMs: null },
        lambda: { how: `deployed, ${lambda.url}`, memoryMb: cost.memoryMb, artifact: null, artifactBytes: null, maxConcurrency: null },
      },
    });
    const written = writeReport(report, outDir, loadChartAssets());
    printSummary(io, report, written, performance.now() - t0);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof BenchUsageError) {
      io.stderr(`compare: ${err.message}\nRun with --help for the list of options.\n`);
      return 2;
    }
    io.stderr(`compare: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

/** The cost flags of a saved report, so re-pricing changes only what the user asks for. */
function savedSettings(r: CompareReport): CostSettings {
  const l = r.cost.lambdaInput;
  return {
    memoryMb: l.memoryMb,
    architecture: l.architecture ?? 'x86_64',
    freeTier: l.freeTier ?? 'none',
    ec2Type: r.cost.ec2Input.instanceType,
    gp3Gb: r.cost.ec2Input.gp3GbPerInstance ?? 8,
    warmerEveryMinutes: l.warmer ? Math.round((DAYS_PER_MONTH * 24 * 60) / l.warmer.invocationsPerMonth) : null,
  };
}

function reprice(file: string, values: Record<string, string | boolean | string[] | undefined>, io: CliIo, t0: number): number {
  let saved: CompareReport;
  try {
    saved = JSON.parse(readFileSync(resolve(file), 'utf8')) as CompareReport;
  } catch (err) {
    throw new UsageError(`--from: cannot read ${file}: ${(err as Error).message}`);
  }
  if (saved.schema !== COMPARE_SCHEMA) throw new UsageError(`--from: ${file} is not a compare report (schema ${String(saved.schema)})`);
  const prices = loadPrices();
  const cost = parseCostSettings(values as Parameters<typeof parseCostSettings>[0], prices, savedSettings(saved));
  let billedMs: number | undefined = saved.cost.durationKind === 'given' ? saved.cost.lambdaInput.durationMs : undefined;
  if (typeof values['billed-ms'] === 'string') {
    billedMs = Number(values['billed-ms']);
    if (!(billedMs > 0 && billedMs <= 900_000)) throw new UsageError(`--billed-ms expects a number of milliseconds above 0, got "${values['billed-ms']}"`);
  }
  const report = buildReport({
    mode: saved.mode,
    bench: saved.bench,
    environment: saved.environment,
    prices,
    costSettings: cost,
    ...(billedMs !== undefined ? { billedMsOverride: billedMs } : {}),
    ...(saved.lambdaMeasured.warmer ? { warmerBilledMs: saved.lambdaMeasured.warmer.billedMs } : {}),
    // buildReport adds its own note about an estimated duration again when it applies.
    notes: [
      ...saved.notes.filter((n) => !n.startsWith('The Lambda duration in the cost model is estimated') && !n.startsWith('Re-priced from')),
      `Re-priced from ${basename(file)} (the benchmark ran ${saved.bench.startedAt.replace('T', ' ').slice(0, 16)} UTC).`,
    ],
  });
  const outDir = typeof values.out === 'string' ? resolve(values.out) : join(ROOT, 'reports');
  const written = writeReport(report, outDir, loadChartAssets());
  printSummary(io, report, written, performance.now() - t0);
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runCompareCli(process.argv.slice(2));
}
