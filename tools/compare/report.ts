/**
 * The comparison report: bench results of a `server` and a `lambda` target plus the Lambda's
 * measured billed durations, fed through the cost model, with the charts to draw and a
 * plain-language verdict. Pure: everything here is computed from its inputs, so the compare test
 * can recompute each figure from the raw samples stored in the report's JSON.
 *
 * JSON schema "mlops-compare/1" (reports/compare-<timestamp>.json):
 *   { schema, createdAt, mode: "local"|"remote", machine,
 *     environment: { database: {kind, description}, server: {how, startupMs|null},
 *                    lambda: {how, memoryMb, artifact|null, artifactBytes|null, maxConcurrency|null, node?} },
 *     bench: the "mlops-bench/1" result (tools/bench/bench.ts), its lambda samples carrying
 *            `lambda: {durationMs, billedDurationMs, initDurationMs, maxMemoryUsedMb}` when measured,
 *     lambdaMeasured: { endpoints: {health|track|metrics: {n, meanBilledMs, meanDurationMs,
 *                       billedP50, billedP99, maxMemoryUsedMb}}, initDurationMs: Summary,
 *                       warmer: {n, meanBilledMs, billedMs[]}|null (the stack's keep-warm ping) },
 *     cost: { prices: {date, region, currency}, durationSource, lambdaInput (exactly what
 *             lambdaCost() got, minus requestsPerDay and apiType), ec2Input,
 *             ec2Monthly, levels: [{requestsPerDay, lambda: {http, rest, none}}],
 *             breakEven: [BreakEvenResult for http, rest, none],
 *             perMillion: [{endpoint, durationMs, httpApiPerMillion}],
 *             curve: {requestsPerDay: [], ec2: [], http: [], rest: [], none: []},
 *             coldStartCostPerThousand: number|null, modelAssumptions: string[] },
 *     charts: [{id, kind: "line"|"bars"|"histogram", caption, spec}],   (MlopsCharts input)
 *     verdict: string[], assumptions: string[], notes: string[] }
 */
import {
  assumptions as modelAssumptions,
  breakEven,
  ec2Cost,
  lambdaCost,
  type ApiType,
  type Architecture,
  type BreakEvenResult,
  type Ec2Input,
  type FreeTier,
  type LambdaInput,
  type PriceTable,
} from '../cost/model.ts';
import { ENDPOINTS, formatDuration, type BenchResult, type EndpointKey, type EndpointResult, type MachineInfo, type Sample, type TargetResult } from '../bench/bench.ts';
import { histogramCounts, logEdges, mean, summarize, type LatencySummary } from '../bench/stats.ts';

export const COMPARE_SCHEMA = 'mlops-compare/1';
export const API_TYPES: readonly ApiType[] = ['http', 'rest', 'none'];
export const API_LABELS: Record<ApiType, string> = { http: 'Lambda + HTTP API', rest: 'Lambda + REST API', none: 'Lambda Function URL' };
export const COST_LEVELS = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];
/** 100 to 100 million requests a day, ten points a decade. */
export const CURVE_POINTS = Array.from({ length: 61 }, (_, i) => Math.round(10 ** (2 + i / 10)));
export const DAYS_PER_MONTH = 30;

export interface ChartSpec {
  id: string;
  kind: 'line' | 'bars' | 'histogram';
  caption: string;
  spec: Record<string, unknown>;
}

export interface CostSettings {
  memoryMb: number;
  architecture: Architecture;
  freeTier: FreeTier;
  ec2Type: string;
  gp3Gb: number;
  /** Keep-warm schedule of the deployed stack (null = none). */
  warmerEveryMinutes: number | null;
}

export interface ReportEnvironment {
  database: { kind: 'postgres' | 'pglite' | 'unknown'; description: string };
  server: { how: string; startupMs: number | null };
  lambda: { how: string; memoryMb: number; artifact: string | null; artifactBytes: number | null; maxConcurrency: number | null; /** The emulator's Node. */ node?: string };
}

export interface LambdaEndpointFigures {
  n: number;
  meanBilledMs: number | null;
  meanDurationMs: number | null;
  billedP50: number | null;
  billedP99: number | null;
  maxMemoryUsedMb: number | null;
}

export interface CompareReport {
  schema: typeof COMPARE_SCHEMA;
  createdAt: string;
  mode: 'local' | 'remote';
  machine: MachineInfo;
  environment: ReportEnvironment;
  bench: BenchResult;
  lambdaMeasured: {
    endpoints: Partial<Record<EndpointKey, LambdaEndpointFigures>>;
    initDurationMs: LatencySummary;
    warmer: { n: number; meanBilledMs: number; billedMs: number[] } | null;
  };
  cost: {
    prices: { date: string; region: string; currency: string };
    durationSource: string;
    /** measured: emulator REPORT records; given: --billed-ms; estimated: Server-Timing lower bound. */
    durationKind: 'measured' | 'given' | 'estimated';
    lambdaInput: Omit<LambdaInput, 'requestsPerDay' | 'apiType'>;
    ec2Input: Ec2Input;
    ec2Monthly: number;
    levels: { requestsPerDay: number; lambda: Record<ApiType, number> }[];
    breakEven: BreakEvenResult[];
    perMillion: { endpoint: EndpointKey; durationMs: number; httpApiPerMillion: number }[];
    curve: { requestsPerDay: number[] } & Record<ApiType | 'ec2', number[]>;
    coldStartCostPerThousand: number | null;
    modelAssumptions: string[];
  };
  charts: ChartSpec[];
  verdict: string[];
  assumptions: string[];
  notes: string[];
}

export interface ReportInput {
  mode: 'local' | 'remote';
  bench: BenchResult;
  environment: ReportEnvironment;
  costSettings: CostSettings;
  prices: PriceTable;
  /** Remote mode: billed duration read from CloudWatch REPORT lines by the user. */
  billedMsOverride?: number;
  /** Billed ms of warm warm-up invocations (local mode: measured through the emulator's Invoke API). */
  warmerBilledMs?: number[];
  notes?: string[];
  now?: Date;
}

// ---------------------------------------------------------------------------------------------
// Sample selections: the definitions the test recomputes independently

const ok = (s: Sample) => s.status >= 200 && s.status < 300;
/** Warm samples of a target/endpoint: load phase, 2xx, not marked cold (as in bench.ts analyse()). */
export const warmSamples = (e: EndpointResult): Sample[] => e.samples.filter((s) => s.phase === 'load' && ok(s) && s.cold !== true);
/** Cold samples: cold phase, 2xx, marked cold. */
export const coldSamples = (e: EndpointResult): Sample[] => e.samples.filter((s) => s.phase === 'cold' && ok(s) && s.cold === true);

export function target(bench: BenchResult, name: string): TargetResult | undefined {
  return bench.targets.find((t) => t.name === name);
}

export function endpoint(t: TargetResult | undefined, key: EndpointKey): EndpointResult | undefined {
  return t?.endpoints.find((e) => e.endpoint === key);
}

export function lambdaFigures(e: EndpointResult): LambdaEndpointFigures {
  const measured = warmSamples(e).filter((s) => s.lambda);
  const billed = measured.map((s) => s.lambda!.billedDurationMs);
  const b = summarize(billed);
  return {
    n: measured.length,
    meanBilledMs: mean(billed),
    meanDurationMs: mean(measured.map((s) => s.lambda!.durationMs)),
    billedP50: b.p50,
    billedP99: b.p99,
    maxMemoryUsedMb: measured.length ? Math.max(...measured.map((s) => s.lambda!.maxMemoryUsedMb)) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting (shared with the HTML and Markdown renderers)

export function fmtMs(v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 100) return `${Math.round(v)} ms`;
  if (v >= 10) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}

export function fmtMoney(v: number): string {
  if (v === 0) return '$0.00';
  if (Math.abs(v) < 0.01) return `$${v.toFixed(4)}`;
  return `$${v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** 138,000 → "138k", 1,200,000 → "1.2M": for chart labels and prose. */
export function fmtCount(n: number): string {
  const round = (x: number) => (x >= 100 ? Math.round(x).toString() : x >= 10 ? x.toFixed(1).replace(/\.0$/, '') : x.toFixed(2).replace(/\.?0+$/, ''));
  if (n >= 1e9) return `${round(n / 1e9)}B`;
  if (n >= 1e6) return `${round(n / 1e6)}M`;
  if (n >= 1e3) return `${round(n / 1e3)}k`;
  return round(n);
}

const label = (key: EndpointKey) => `${ENDPOINTS[key].method} ${ENDPOINTS[key].path}`;

// ---------------------------------------------------------------------------------------------
// Cost

export function costInputs(
  settings: CostSettings,
  durationMs: number,
  warmerDurationMs: number,
): { lambdaInput: Omit<LambdaInput, 'requestsPerDay' | 'apiType'>; ec2Input: Ec2Input } {
  const lambdaInput: Omit<LambdaInput, 'requestsPerDay' | 'apiType'> = {
    durationMs,
    memoryMb: settings.memoryMb,
    architecture: settings.architecture,
    freeTier: settings.freeTier,
    daysPerMonth: DAYS_PER_MONTH,
  };
  if (settings.warmerEveryMinutes) {
    lambdaInput.warmer = { invocationsPerMonth: (DAYS_PER_MONTH * 24 * 60) / settings.warmerEveryMinutes, durationMs: warmerDurationMs };
  }
  const ec2Input: Ec2Input = { instanceType: settings.ec2Type, gp3GbPerInstance: settings.gp3Gb, publicIpv4PerInstance: 1, freeTier: settings.freeTier };
  return { lambdaInput, ec2Input };
}

// ---------------------------------------------------------------------------------------------
// The report

export function buildReport(input: ReportInput): CompareReport {
  const { bench, prices, costSettings } = input;
  const server = target(bench, 'server');
  const lambda = target(bench, 'lambda');
  if (!server || !lambda) throw new Error('the comparison needs a target named "server" and one named "lambda"');
  const notes = [...(input.notes ?? [])];

  // Measured Lambda figures (REPORT records joined to samples by request id).
  const endpoints: Partial<Record<EndpointKey, LambdaEndpointFigures>> = {};
  for (const e of lambda.endpoints) endpoints[e.endpoint] = lambdaFigures(e);
  const inits = lambda.endpoints.flatMap((e) => coldSamples(e).filter((s) => s.lambda?.initDurationMs != null).map((s) => s.lambda!.initDurationMs!));
  const warmer = input.warmerBilledMs?.length
    ? { n: input.warmerBilledMs.length, meanBilledMs: mean(input.warmerBilledMs)!, billedMs: [...input.warmerBilledMs] }
    : null;

  // The duration the cost model gets: POST /track is the traffic that grows with the business.
  const trackLambda = endpoint(lambda, 'track');
  const trackFigures = endpoints.track;
  let durationMs: number;
  let durationSource: string;
  let durationKind: CompareReport['cost']['durationKind'];
  if (input.billedMsOverride !== undefined) {
    durationMs = input.billedMsOverride;
    durationSource = `${durationMs} ms per invocation, given with --billed-ms (from the function's CloudWatch REPORT lines)`;
    durationKind = 'given';
  } else if (trackFigures && trackFigures.meanBilledMs !== null) {
    durationMs = trackFigures.meanBilledMs;
    durationSource = `mean Billed Duration of the ${trackFigures.n} warm POST /track invocations in the emulator's REPORT records (${durationMs.toFixed(2)} ms; the model rounds up to whole ms)`;
    durationKind = 'measured';
  } else if (trackLambda && trackLambda.warmServer.mean !== null) {
    durationMs = trackLambda.warmServer.mean;
    durationSource =
      `mean Server-Timing of warm POST /track answers (${durationMs.toFixed(2)} ms): the handler's own time, a lower bound of the billed duration, ` +
      'because billing is not visible from outside. Pass --billed-ms with the average @billedDuration of the REPORT lines for the real figure.';
    durationKind = 'estimated';
    notes.push('The Lambda duration in the cost model is estimated from Server-Timing, not measured billing.');
  } else {
    throw new Error('no successful warm POST /track answer from the lambda target: nothing to base the cost on');
  }
  const warmerDurationMs = warmer?.meanBilledMs ?? endpoints.health?.meanBilledMs ?? 10;
  const { lambdaInput, ec2Input } = costInputs(costSettings, durationMs, warmerDurationMs);
  const ec2Monthly = ec2Cost(ec2Input, prices).total;
  const cost = (requestsPerDay: number, apiType: ApiType) => lambdaCost({ ...lambdaInput, requestsPerDay, apiType }, prices).total;
  const levels = COST_LEVELS.map((r) => ({ requestsPerDay: r, lambda: { http: cost(r, 'http'), rest: cost(r, 'rest'), none: cost(r, 'none') } }));
  const breakEvens = API_TYPES.map((apiType) => breakEven({ ...lambdaInput, apiType }, ec2Input, prices));
  const curve = {
    requestsPerDay: CURVE_POINTS,
    ec2: CURVE_POINTS.map(() => ec2Monthly),
    http: CURVE_POINTS.map((r) => cost(r, 'http')),
    rest: CURVE_POINTS.map((r) => cost(r, 'rest')),
    none: CURVE_POINTS.map((r) => cost(r, 'none')),
  };
  // Price of one million requests at each endpoint's own measured duration (no warmer: per request only).
  const perMillion = (Object.entries(endpoints) as [EndpointKey, LambdaEndpointFigures][])
    .filter(([, f]) => f.meanBilledMs !== null)
    .map(([key, f]) => ({
      endpoint: key,
      durationMs: f.meanBilledMs!,
      httpApiPerMillion: lambdaCost(
        { durationMs: f.meanBilledMs!, memoryMb: costSettings.memoryMb, architecture: costSettings.architecture, freeTier: 'none', daysPerMonth: DAYS_PER_MONTH, requestsPerDay: 1e6 / DAYS_PER_MONTH, apiType: 'http' },
        prices,
      ).total,
    }));
  const initMedian = summarize(inits).p50;
  const coldStartCostPerThousand =
    initMedian === null
      ? null
      : lambdaCost({ ...lambdaInput, warmer: undefined, requestsPerDay: 0, apiType: 'none', coldStarts: { perMonth: 1000, initDurationMs: Math.min(initMedian, 10_000) } }, prices)
          .lineItems.find((l) => l.key === 'init')!.monthlyCost;

  const report: CompareReport = {
    schema: COMPARE_SCHEMA,
    createdAt: (input.now ?? new Date()).toISOString(),
    mode: input.mode,
    machine: bench.machine,
    environment: input.environment,
    bench,
    lambdaMeasured: { endpoints, initDurationMs: summarize(inits), warmer },
    cost: {
      prices: { date: prices.date, region: prices.region, currency: prices.currency },
      durationSource,
      durationKind,
      lambdaInput,
      ec2Input,
      ec2Monthly,
      levels,
      breakEven: breakEvens,
      perMillion,
      curve,
      coldStartCostPerThousand,
      modelAssumptions: modelAssumptions({ ...lambdaInput, apiType: 'http' }, ec2Input, prices),
    },
    charts: [],
    verdict: [],
    assumptions: [],
    notes,
  };
  report.charts = buildCharts(report);
  report.assumptions = buildAssumptions(report);
  report.verdict = buildVerdict(report);
  return report;
}

// ---------------------------------------------------------------------------------------------
// Charts (specs for src/web/charts.js, MlopsCharts)

function buildCharts(r: CompareReport): ChartSpec[] {
  const charts: ChartSpec[] = [];
  const server = target(r.bench, 'server')!;
  const lambda = target(r.bench, 'lambda')!;
  const keys = r.bench.settings.endpoints;

  // Warm percentiles side by side.
  const pLabels: string[] = [];
  const sVals: number[] = [];
  const lVals: number[] = [];
  for (const k of keys) {
    for (const p of ['p50', 'p90', 'p99'] as const) {
      pLabels.push(`${ENDPOINTS[k].path} ${p}`);
      sVals.push(endpoint(server, k)?.warm[p] ?? 0);
      lVals.push(endpoint(lambda, k)?.warm[p] ?? 0);
    }
  }
  charts.push({
    id: 'warm-percentiles',
    kind: 'bars',
    caption: 'Warm latency as the client saw it (load phase, answers not marked cold), per endpoint: median, p90, p99.',
    spec: { title: 'Warm latency percentiles', labels: pLabels, series: [{ label: 'server', values: sVals }, { label: 'lambda', values: lVals }], xLabel: 'endpoint and percentile', yLabel: 'ms' },
  });

  // Distributions, one histogram per endpoint on shared log-spaced bins.
  for (const k of keys) {
    const s = warmSamples(endpoint(server, k)!).map((x) => x.ms);
    const l = warmSamples(endpoint(lambda, k)!).map((x) => x.ms);
    const edges = logEdges([...s, ...l], 30);
    charts.push({
      id: `warm-histogram-${k}`,
      kind: 'histogram',
      caption: `${label(k)}: distribution of warm client-seen latency (log-spaced bins).`,
      spec: {
        title: `${label(k)}: warm latency distribution`,
        edges: edges.map((x) => Math.round(x * 1000) / 1000),
        series: [
          { label: `server (n=${s.length})`, counts: histogramCounts(s, edges) },
          { label: `lambda (n=${l.length})`, counts: histogramCounts(l, edges) },
        ],
        xLabel: 'ms',
        yLabel: 'requests',
        logX: true,
      },
    });
  }

  // Cold starts, one bar group per cold sample.
  const coldLabels: string[] = [];
  const initVals: number[] = [];
  const clientVals: number[] = [];
  const appVals: number[] = [];
  const total = keys.reduce((n, k) => n + coldSamples(endpoint(lambda, k)!).length, 0);
  // Long labels only fit a dozen bars; beyond that h1…, t1…, m1… (explained in the caption).
  const compact = total > 12;
  for (const k of keys) {
    coldSamples(endpoint(lambda, k)!).forEach((s, i) => {
      coldLabels.push(compact ? `${k[0]}${i + 1}` : `${ENDPOINTS[k].path} #${i + 1}`);
      initVals.push(s.lambda?.initDurationMs ?? 0);
      clientVals.push(s.ms);
      appVals.push(s.serverMs ?? 0);
    });
  }
  if (coldLabels.length) {
    const measuredInit = initVals.some((v) => v > 0);
    charts.push({
      id: 'cold-starts',
      kind: 'bars',
      caption:
        (measuredInit
          ? 'Each forced Lambda cold start: Init Duration from the emulator\'s REPORT line (process start + module load), the app\'s own time for that first request (Server-Timing, includes opening the database connection on POST /track), and the whole latency the client saw.'
          : 'Each Lambda cold start: the app\'s own time for the first request (Server-Timing) and the whole latency the client saw. Init Duration is only in the function\'s CloudWatch REPORT lines.') +
        (compact ? ` Bars h1, h2… are GET /health samples, t… POST /track, m… GET /metrics.` : '') +
        ` Warm medians for scale: ${keys.map((k) => `${ENDPOINTS[k].path} ${fmtMs(endpoint(lambda, k)!.warm.p50)}`).join(', ')}.`,
      spec: {
        title: 'Lambda cold starts, per sample',
        labels: coldLabels,
        series: [
          ...(measuredInit ? [{ label: 'Init Duration', values: initVals }] : []),
          { label: 'first request in the app', values: appVals },
          { label: 'client-seen latency', values: clientVals },
        ],
        xLabel: 'cold sample',
        yLabel: 'ms',
      },
    });
  }

  // Where the time goes: inside the app vs around it.
  const wLabels: string[] = [];
  const inside: number[] = [];
  const outside: number[] = [];
  for (const k of keys) {
    for (const t of [server, lambda]) {
      const e = endpoint(t, k)!;
      wLabels.push(`${t.name} ${ENDPOINTS[k].path}`);
      inside.push(e.warmServer.p50 ?? 0);
      outside.push(e.warmOutside.p50 ?? 0);
    }
  }
  charts.push({
    id: 'inside-outside',
    kind: 'bars',
    caption:
      'Median warm time inside the app (Server-Timing: app;dur, from the first middleware to the response) and outside it (client-seen minus that: HTTP, the gateway front and Lambda runtime hand-off, the client).',
    spec: { title: 'Where the time goes (medians)', labels: wLabels, series: [{ label: 'inside the app', values: inside }, { label: 'outside the app', values: outside }], xLabel: 'target and endpoint', yLabel: 'ms' },
  });

  // Cost against traffic.
  const ec2Name = `EC2 ${r.cost.ec2Input.instanceType}`;
  charts.push({
    id: 'cost',
    kind: 'line',
    caption:
      `Monthly cost against traffic (both axes logarithmic), Lambda at the measured ${Math.ceil(r.cost.lambdaInput.durationMs - 1e-9)} ms billed per request, ${r.cost.lambdaInput.memoryMb} MB ${r.cost.lambdaInput.architecture}` +
      `${r.cost.lambdaInput.warmer ? `, warmer every ${r.cost.lambdaInput.warmer ? Math.round((DAYS_PER_MONTH * 24 * 60) / r.cost.lambdaInput.warmer.invocationsPerMonth) : ''} min` : ''}; ` +
      `${ec2Name} with ${r.cost.ec2Input.gp3GbPerInstance} GB gp3 and a public IPv4. Vertical lines: break-even points. Prices: ${r.cost.prices.region}, ${r.cost.prices.date}.`,
    spec: {
      title: 'Monthly cost against traffic',
      x: r.cost.curve.requestsPerDay,
      xKind: 'number',
      series: [
        { label: ec2Name, values: r.cost.curve.ec2 },
        ...API_TYPES.map((a) => ({ label: API_LABELS[a], values: r.cost.curve[a].map((v) => (v > 0 ? v : null)) })),
      ],
      xLabel: 'requests per day',
      yLabel: 'USD per month',
      height: 320,
      logX: true,
      logY: true,
      markers: r.cost.breakEven
        .filter((b) => b.status === 'crosses' && b.requestsPerDay !== null)
        .sort((a, b) => a.requestsPerDay! - b.requestsPerDay!)
        .map((b) => ({ x: b.requestsPerDay!, label: `${API_LABELS[b.apiType].replace(/^Lambda (\+ )?/, '')}: ${fmtCount(b.requestsPerDay!)}/day` })),
    },
  });
  return charts;
}

// ---------------------------------------------------------------------------------------------
// Words

function breakEvenText(b: BreakEvenResult): string {
  if (b.status === 'crosses') return `${fmtCount(b.requestsPerDay!)} requests a day (≈ ${(b.requestsPerDay! / 86_400).toFixed(b.requestsPerDay! < 86_400 ? 2 : 1)} per second on average)`;
  if (b.status === 'ec2-cheaper-throughout') return 'never: the server is cheaper even with no traffic';
  return `never below ${fmtCount(b.maxRequestsPerDay)} requests a day: Lambda is cheaper throughout`;
}

function ratio(a: number | null, b: number | null): string | null {
  if (a === null || b === null || a <= 0 || b <= 0) return null;
  const r = a / b;
  return r >= 1.995 ? `${r.toFixed(1)}×` : `${Math.round((r - 1) * 100)} %`;
}

function buildVerdict(r: CompareReport): string[] {
  const server = target(r.bench, 'server')!;
  const lambda = target(r.bench, 'lambda')!;
  const out: string[] = [];
  const where = r.mode === 'local' ? 'the Lambda function in the local emulator' : 'the deployed Lambda function';

  // Latency.
  const sTrack = endpoint(server, 'track');
  const lTrack = endpoint(lambda, 'track');
  if (sTrack && lTrack && sTrack.warm.p50 !== null && lTrack.warm.p50 !== null) {
    const faster = sTrack.warm.p50 <= lTrack.warm.p50 ? 'server' : 'lambda';
    const slowP = faster === 'server' ? lTrack.warm.p50 : sTrack.warm.p50;
    const fastP = faster === 'server' ? sTrack.warm.p50 : lTrack.warm.p50;
    const diff = ratio(slowP, fastP);
    let text =
      `Warm, recording an event (POST /track) took ${fmtMs(sTrack.warm.p50)} at the median and ${fmtMs(sTrack.warm.p99)} at p99 on the server, ` +
      `and ${fmtMs(lTrack.warm.p50)} / ${fmtMs(lTrack.warm.p99)} on ${where}`;
    text += diff ? `: the ${faster} was ${faster === 'server' && diff.endsWith('×') ? `${diff} as fast` : `${diff} faster`} at the median.` : '.';
    const sIn = sTrack.warmServer.p50;
    const lIn = lTrack.warmServer.p50;
    if (sIn !== null && lIn !== null) {
      text += ` Inside the app the two took ${fmtMs(sIn)} and ${fmtMs(lIn)}; the rest (${fmtMs(sTrack.warmOutside.p50)} vs ${fmtMs(lTrack.warmOutside.p50)}) is the path around it${
        r.mode === 'local' ? ': the API Gateway front, the Lambda Runtime API hand-off and the extra process hop' : ': network, TLS, API Gateway or the load balancer'
      }.`;
    }
    out.push(text);
  }

  // Cold starts.
  const colds = lambda.endpoints.filter((e) => e.cold.n > 0);
  if (colds.length) {
    const parts = colds.map((e) => `${e.path} ${fmtMs(e.cold.p50)} (warm ${fmtMs(e.warm.p50)})`);
    const init = r.lambdaMeasured.initDurationMs;
    const how = lambda.cold.mode === 'forced' ? 'forced by reaping the idle environments before each sample' : 'after waiting out the idle time';
    let text = `A Lambda cold start (${colds.reduce((n, e) => n + e.cold.n, 0)} samples, ${how}) made the first request slow: median ${parts.join(', ')}.`;
    if (init.n > 0) text += ` Init Duration, the part before the handler runs, was ${fmtMs(init.p50)} at the median (max ${fmtMs(init.max)}); a first POST /track also opens the database connection.`;
    const inLoad = lambda.endpoints.reduce((n, e) => n + e.counts.coldInLoad, 0);
    if (inLoad > 0) text += ` ${inLoad} more cold start(s) happened during the load phase, when traffic outgrew the warm environments; they are left out of the warm figures.`;
    out.push(text);
  } else if (lambda.cold.mode !== 'none') {
    const missed = lambda.endpoints.reduce((n, e) => n + e.counts.coldMissed, 0);
    out.push(
      `No cold start was caught: ${missed} cold sample(s) taken after ${lambda.cold.waitMs !== null ? formatDuration(lambda.cold.waitMs) : 'a wait'} of idle time came back marked warm, so the function kept its environments ` +
        'longer than that (or the stack\'s warmer kept one warm). Wait longer, or disable the warmer for the measurement.',
    );
  } else {
    out.push(`Cold starts were not measured: ${lambda.cold.note}`);
  }
  const startup = r.environment.server.startupMs;
  out.push(
    `The server has no per-request cold start: its process starts once${startup !== null ? ` (${fmtMs(startup)} here, from spawn to listening, migrations included)` : ''} and every request after that is warm. ` +
      'It pays for that by running, and costing, all month whether or not anyone sends an event.',
  );

  // Cost.
  const li = r.cost.lambdaInput;
  const http = r.cost.breakEven.find((b) => b.apiType === 'http')!;
  const rest = r.cost.breakEven.find((b) => b.apiType === 'rest')!;
  const none = r.cost.breakEven.find((b) => b.apiType === 'none')!;
  const small = r.cost.levels[0]!;
  let costText =
    `Cost: at ${Math.ceil(li.durationMs - 1e-9)} ms billed per event${r.cost.durationKind === 'estimated' ? ' (estimated from Server-Timing, a lower bound: pass --billed-ms for the real figure)' : ''} (${li.memoryMb} MB, ${li.architecture}${li.warmer ? ', with the stack\'s warmer' : ''}), ` +
    `Lambda behind an HTTP API costs less than one ${r.cost.ec2Input.instanceType} (${fmtMoney(r.cost.ec2Monthly)} a month with its disk and public IPv4) up to ${breakEvenText(http)}; above that the server is cheaper. ` +
    `Behind a REST API the break-even is ${breakEvenText(rest)}; with a Function URL (no API Gateway) ${breakEvenText(none)}. ` +
    `At ${fmtCount(small.requestsPerDay)} events a day Lambda + HTTP API costs ${fmtMoney(small.lambda.http)} a month.`;
  if (r.cost.coldStartCostPerThousand !== null) costText += ` Each 1,000 cold starts add ${fmtMoney(r.cost.coldStartCostPerThousand)} of billed INIT time.`;
  out.push(costText);

  // Capacity, so the cheaper side is not mistaken for a sufficient one.
  const thr = sTrack?.throughputRps ?? null;
  if (thr !== null && http.status === 'crosses') {
    out.push(
      `Capacity: the server recorded ${Math.round(thr).toLocaleString('en-US')} events per second here at concurrency ${r.bench.settings.concurrency}, ` +
        `${Math.round(thr / (http.requestsPerDay! / 86_400)).toLocaleString('en-US')}× the average rate at the HTTP API break-even. ` +
        `This machine (${r.machine.cpus} × ${r.machine.cpuModel}) is not a ${r.cost.ec2Input.instanceType}, whose burstable CPU sustains far less; size the instance for the peak hour, not the daily average.`,
    );
  }

  // The plain answer.
  if (http.status === 'crosses') {
    // Only claim a latency win the measurements show: on a busy machine the warm medians can go either way.
    const serverFaster = sTrack && lTrack && sTrack.warm.p50 !== null && lTrack.warm.p50 !== null && sTrack.warm.p50 < lTrack.warm.p50;
    const coldSeen = colds.length > 0;
    out.push(
      `In short: below about ${fmtCount(http.requestsPerDay!)} events a day Lambda is the cheaper home for this service and costs next to nothing when idle` +
        (coldSeen ? `, at the price of a slow first request after a quiet spell (${fmtMs(r.lambdaMeasured.initDurationMs.p50)} of Init Duration here)` : '') +
        `; above it the always-on server is cheaper` +
        (serverFaster ? ' and, warm, it was also faster here' : '') +
        (coldSeen ? ', and it never makes a request wait for a cold start.' : '.'),
    );
  }

  // The assumptions a reader must not miss, in the verdict itself; the full list follows it.
  const m = r.machine;
  const busy = m.loadAverage && Math.max(m.loadAverage.start, m.loadAverage.end) > m.cpus * 0.75 ? ', which was busy with other work during the run' : '';
  out.push(
    `Assumptions: measured on this machine (${m.cpus} × ${m.cpuModel}, Node ${m.node})${busy}` +
      (r.mode === 'local'
        ? `, with the Lambda side in the local emulator, which is not AWS: no real API Gateway, the host's CPU${r.environment.lambda.node ? ` (Node ${r.environment.lambda.node} for the function)` : ' and Node'} instead of a ${r.environment.lambda.memoryMb} MB ${r.cost.lambdaInput.architecture} sandbox, and no sandbox placement in its cold starts`
        : ', over the network to the deployed stacks') +
      `; ${r.cost.prices.region} list prices as checked on ${r.cost.prices.date}; one ${r.cost.ec2Input.instanceType} against on-demand Lambda. The list below has the rest.`,
  );
  return out;
}

/** Says when other work competed for the CPU: figures from a busy machine vary run to run. */
function loadText(m: MachineInfo): string {
  const la = m.loadAverage;
  if (!la) return 'Load average not recorded.';
  const busy = Math.max(la.start, la.end) > m.cpus * 0.75;
  return (
    `1-minute load average ${la.start} at the start and ${la.end} at the end of the run on ${m.cpus} cores` +
    (busy ? ': other work was competing for the CPU, so absolute figures are noisier than usual; the comparison between the two sides, measured in turns, holds better.' : '.')
  );
}

function buildAssumptions(r: CompareReport): string[] {
  const m = r.machine;
  const out = [
    `Measured on ${m.hostname}: ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB RAM, ${m.platform}, Node ${m.node}, on ${r.bench.startedAt.slice(0, 10)}. The load generator ran on the same machine and shared its CPU with both services.`,
    loadText(m),
    `Load: ${r.bench.settings.requests} measured requests per endpoint and target at concurrency ${r.bench.settings.concurrency}, after ${r.bench.settings.warmup} unmeasured warm-up requests; percentiles are nearest-rank over 2xx answers only.`,
  ];
  if (r.mode === 'local') {
    out.push(
      'The Lambda side is the local emulator (tools/lambda-emulator), not AWS: each execution environment is a Node process on this machine running the packaged zip with the host\'s Node ' +
        `(${m.node}; AWS runs nodejs22.x on Amazon Linux), ${m.arch === 'x64' ? 'x86_64' : m.arch} (the stack deploys ${r.cost.lambdaInput.architecture}), with no network between the gateway, the function and the database, ` +
        `and no CPU share tied to memory (on AWS ${r.environment.lambda.memoryMb} MB gets about ${(r.environment.lambda.memoryMb / 1769).toFixed(2)} vCPU). AWS cold starts also include placing the sandbox and fetching the code, which the emulator does not have.`,
      'The Lambda time outside the app is the emulator\'s own path (a loopback HTTP front, the Runtime API, thawing and freezing the process around each request); API Gateway\'s overhead on AWS is different and is not modelled.',
      `Database: ${r.environment.database.kind === 'postgres' ? 'both sides used the same throwaway PostgreSQL database' : `the server used ${r.environment.database.kind}, the Lambda PostgreSQL`} on this machine (${r.environment.database.description}). A deployment reaches Neon or RDS over the network, which adds a round trip to every POST /track on both sides.`,
      `Lambda billed durations are the emulator's REPORT figures (handler time on this CPU); on AWS they depend on the memory size's CPU share and the database latency.`,
    );
  } else {
    out.push('Both targets were reached over the network from this machine: client-seen latency includes the path to AWS, which real users have too but from elsewhere.');
  }
  out.push(
    `Lambda duration in the cost model: ${r.cost.durationSource}. Prices come from tools/cost/prices.json.`,
    ...r.cost.modelAssumptions,
  );
  return out;
}

/** Short ISO-like stamp for file names, in UTC: 20261127-134501. */
export function fileStamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}
