/**
 * HTTP latency benchmark of one or more running copies of the service (the Node server, the
 * Lambda function behind API Gateway or the local emulator): warm latency under load, cold
 * starts where they can be produced, split by the service's own `X-Cold-Start` header.
 *
 * Output schema ("mlops-bench/1"), what `npm run bench -- --json` prints and what
 * reports embed. Times are milliseconds, rounded to the microsecond.
 *
 *   {
 *     schema: "mlops-bench/1",
 *     startedAt, finishedAt: ISO 8601 strings,
 *     machine: { hostname, platform, arch, cpus, cpuModel, memoryGb, node,
 *                loadAverage: { start, end } (1-minute load average: other work competing) },
 *     settings: { endpoints: ["health"|"track"|"metrics"], requests, concurrency, warmup,
 *                 coldSamples, coldWaitMs: number|null, timeoutMs, seed, apiKey: boolean },
 *     percentileMethod: "nearest-rank: sorted[ceil(p/100*n)-1]",
 *     targets: [{
 *       name, url,
 *       cold: { mode: "forced"|"wait"|"none", waitMs: number|null, note: string },
 *       endpoints: [{
 *         endpoint: "health"|"track"|"metrics", method, path,
 *         warm:         Summary of client-seen ms, phase "load", 2xx, X-Cold-Start != true
 *         warmServer:   Summary of Server-Timing app;dur over the same samples
 *         warmOutside:  Summary of (client ms − Server-Timing) over the same samples: network,
 *                       gateway, runtime, client, i.e. everything outside the app's handler
 *         cold:         Summary of client-seen ms, phase "cold", 2xx, X-Cold-Start: true
 *         coldServer:   Summary of Server-Timing over the same samples
 *         throughputRps: 2xx answers of the load phase / its wall time (null without any),
 *         loadWallMs,
 *         counts: { sent, ok,
 *                   errors: { "<status>"|"timeout"|"network": n } over every phase,
 *                   coldInLoad: load-phase answers marked cold (excluded from warm),
 *                   coldMissed: cold-phase answers marked warm (excluded from cold),
 *                   noMarker: answers without an X-Cold-Start header (counted as warm) },
 *         samples: [{                                   one per request, in completion order
 *           phase: "cold"|"warmup"|"load", at: ms since the bench started (request sent),
 *           ms: client-seen latency, request written → last body byte,
 *           ttfbMs: → response headers (null when none came),
 *           status: HTTP status, 0 when no answer, error: string (only on failures),
 *           cold: X-Cold-Start as true|false, null when absent,
 *           serverMs: Server-Timing app;dur or null, instance: X-Instance-Id or null,
 *           requestId: X-Request-Id or null (the Lambda request id behind API Gateway),
 *           lambda?: { durationMs, billedDurationMs, initDurationMs, maxMemoryUsedMb }
 *                    added by compare:local from the emulator's REPORT record of that request
 *         }]
 *       }]
 *     }]
 *   }
 *
 * Summary = { n, min, mean, p50, p90, p99, max } (null figures when n = 0). Warm-up samples are
 * kept in `samples` but are in no summary.
 */
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { trackPayloads } from './payloads.ts';
import { round3, summarize, PERCENTILE_METHOD, type LatencySummary } from './stats.ts';

export const BENCH_SCHEMA = 'mlops-bench/1';

export type EndpointKey = 'health' | 'track' | 'metrics';
export const ENDPOINT_KEYS: readonly EndpointKey[] = ['health', 'track', 'metrics'];
export const ENDPOINTS: Record<EndpointKey, { method: 'GET' | 'POST'; path: string }> = {
  health: { method: 'GET', path: '/health' },
  track: { method: 'POST', path: '/track' },
  metrics: { method: 'GET', path: '/metrics' },
};

export type Phase = 'cold' | 'warmup' | 'load';
export type ColdMode = 'forced' | 'wait' | 'none';

export interface LambdaFigures {
  durationMs: number;
  billedDurationMs: number;
  initDurationMs: number | null;
  maxMemoryUsedMb: number;
}

export interface Sample {
  phase: Phase;
  at: number;
  ms: number;
  ttfbMs: number | null;
  status: number;
  error?: string;
  cold: boolean | null;
  serverMs: number | null;
  instance: string | null;
  requestId: string | null;
  lambda?: LambdaFigures;
}

export interface EndpointResult {
  endpoint: EndpointKey;
  method: string;
  path: string;
  warm: LatencySummary;
  warmServer: LatencySummary;
  warmOutside: LatencySummary;
  cold: LatencySummary;
  coldServer: LatencySummary;
  throughputRps: number | null;
  loadWallMs: number;
  counts: { sent: number; ok: number; errors: Record<string, number>; coldInLoad: number; coldMissed: number; noMarker: number };
  samples: Sample[];
}

export interface TargetResult {
  name: string;
  url: string;
  cold: { mode: ColdMode; waitMs: number | null; note: string };
  endpoints: EndpointResult[];
}

export interface MachineInfo {
  hostname: string;
  platform: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  /** 1-minute load average when the run started and ended; above the core count, other work competed for the CPU. */
  loadAverage: { start: number; end: number };
}

export interface BenchResult {
  schema: typeof BENCH_SCHEMA;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  settings: {
    endpoints: EndpointKey[];
    requests: number;
    concurrency: number;
    warmup: number;
    coldSamples: number;
    coldWaitMs: number | null;
    timeoutMs: number;
    seed: number;
    apiKey: boolean;
  };
  percentileMethod: string;
  targets: TargetResult[];
}

export interface BenchTarget {
  name: string;
  /** Base URL of the service, e.g. http://127.0.0.1:5001 or …/default/mlops-service-lambda. */
  url: string;
  /** Leaves the target so that its next request is a cold start (the emulator's reapIdle()). */
  forceCold?: () => Promise<void>;
  /** Set when this target has no cold starts at all (a long-running server): the reason, printed instead of sampling. */
  noColdStarts?: string;
}

export interface ProgressEvent {
  done: number;
  total: number;
  /** What is running now, e.g. "lambda POST /track load". */
  stage: string;
  /** Set while waiting out an idle timeout: ms left. */
  waitingMs?: number;
}

export interface BenchOptions {
  targets: BenchTarget[];
  endpoints?: EndpointKey[];
  /** Measured requests per target and endpoint (load phase). */
  requests: number;
  concurrency: number;
  /** Unmeasured requests per target and endpoint before the load phase (default 5 × concurrency). */
  warmup?: number;
  /** Cold samples per target and endpoint, where the target can produce them. */
  coldSamples: number;
  /** Targets without forceCold get their cold samples by waiting this long before each one. */
  coldWaitMs?: number;
  apiKey?: string;
  metricsToken?: string;
  timeoutMs?: number;
  seed?: number;
  /** Required for any target that is not on this machine (loopback). */
  allowRemote?: boolean;
  onProgress?: (p: ProgressEvent) => void;
  /** Injected by tests so wait mode is exercised without waiting. */
  sleep?: (ms: number, onTick: (leftMs: number) => void) => Promise<void>;
}

export class BenchUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchUsageError';
  }
}

/** Loopback by its literal host: no DNS lookup, so a name that merely resolves to 127.0.0.1 is not trusted. */
export function isLoopbackUrl(raw: string): boolean {
  let host: string;
  try {
    host = new URL(raw).hostname.toLowerCase();
  } catch {
    return false;
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === '[::1]' || host === '::1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function machineInfo(loadAtStart = os.loadavg()[0]!): MachineInfo {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: `${os.type()} ${os.release()}`,
    arch: process.arch,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    loadAverage: { start: Math.round(loadAtStart * 100) / 100, end: Math.round(os.loadavg()[0]! * 100) / 100 },
  };
}

/** `app;dur=12.34` (possibly among other metrics) → 12.34. */
export function parseServerTiming(header: string | undefined | null): number | null {
  if (!header) return null;
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().split(';');
    if (name?.trim() !== 'app') continue;
    for (const p of params) {
      const m = /^\s*dur=([\d.]+)\s*$/.exec(p);
      if (m) return Number(m[1]);
    }
  }
  return null;
}

function joinUrl(base: string, path: string): URL {
  const u = new URL(base);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}${path}`;
  return u;
}

interface RequestSpec {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: Buffer | null;
}

/**
 * One request through node:http with the given agent. node:http rather than fetch: an explicit
 * keep-alive pool sized to the concurrency, and far less client CPU per request, which matters on
 * a small machine where the load generator shares the cores with the service it measures.
 */
function send(spec: RequestSpec, agent: http.Agent | false, timeoutMs: number, origin: number, phase: Phase): Promise<Sample> {
  return new Promise((resolve) => {
    const lib = spec.url.protocol === 'https:' ? https : http;
    let ttfb: number | null = null;
    let settled = false;
    const t0 = performance.now();
    const finish = (status: number, res: http.IncomingMessage | null, error?: string): void => {
      if (settled) return;
      settled = true;
      const h = res?.headers ?? {};
      const coldHeader = typeof h['x-cold-start'] === 'string' ? h['x-cold-start'] : undefined;
      const sample: Sample = {
        phase,
        at: round3(t0 - origin),
        ms: round3(performance.now() - t0),
        ttfbMs: ttfb === null ? null : round3(ttfb - t0),
        status,
        cold: coldHeader === undefined ? null : coldHeader.trim().toLowerCase() === 'true',
        serverMs: parseServerTiming(typeof h['server-timing'] === 'string' ? h['server-timing'] : undefined),
        instance: typeof h['x-instance-id'] === 'string' ? h['x-instance-id'] : null,
        requestId: typeof h['x-request-id'] === 'string' ? h['x-request-id'] : null,
      };
      if (error !== undefined) sample.error = error;
      resolve(sample);
    };
    const req = lib.request(
      spec.url,
      { method: spec.method, agent, headers: spec.body ? { ...spec.headers, 'content-length': String(spec.body.length) } : spec.headers },
      (res) => {
        ttfb = performance.now();
        const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
        // Error bodies are kept (briefly) because "401" alone does not say which key was wrong.
        let errorText = '';
        res.on('data', (chunk: Buffer) => {
          if (!ok && errorText.length < 200) errorText += chunk.toString('utf8');
        });
        res.on('end', () => finish(res.statusCode ?? 0, res, ok ? undefined : errorText.slice(0, 200) || `HTTP ${res.statusCode}`));
        res.on('error', (err) => finish(0, res, `network: ${err.message}`));
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy(new Error(`timeout after ${timeoutMs} ms`));
    });
    req.on('error', (err) => finish(0, null, err.message.startsWith('timeout') ? err.message : `network: ${err.message}`));
    req.end(spec.body ?? undefined);
  });
}

function errorKey(s: Sample): string | null {
  if (s.status >= 200 && s.status < 300) return null;
  if (s.status > 0) return String(s.status);
  return s.error?.startsWith('timeout') ? 'timeout' : 'network';
}

const isOk = (s: Sample): boolean => s.status >= 200 && s.status < 300;

/** Summaries and counts of one target/endpoint from its samples: the one place the cold/warm split is defined. */
export function analyse(samples: Sample[], loadWallMs: number): Omit<EndpointResult, 'endpoint' | 'method' | 'path' | 'samples'> {
  const warm = samples.filter((s) => s.phase === 'load' && isOk(s) && s.cold !== true);
  const cold = samples.filter((s) => s.phase === 'cold' && isOk(s) && s.cold === true);
  const errors: Record<string, number> = {};
  for (const s of samples) {
    const k = errorKey(s);
    if (k) errors[k] = (errors[k] ?? 0) + 1;
  }
  const withServer = (xs: Sample[]) => xs.filter((s) => s.serverMs !== null);
  const okLoad = samples.filter((s) => s.phase === 'load' && isOk(s)).length;
  return {
    warm: summarize(warm.map((s) => s.ms)),
    warmServer: summarize(withServer(warm).map((s) => s.serverMs!)),
    warmOutside: summarize(withServer(warm).map((s) => round3(s.ms - s.serverMs!))),
    cold: summarize(cold.map((s) => s.ms)),
    coldServer: summarize(withServer(cold).map((s) => s.serverMs!)),
    throughputRps: okLoad > 0 && loadWallMs > 0 ? Math.round((okLoad / (loadWallMs / 1000)) * 10) / 10 : null,
    loadWallMs: round3(loadWallMs),
    counts: {
      sent: samples.length,
      ok: samples.filter(isOk).length,
      errors,
      coldInLoad: samples.filter((s) => s.phase === 'load' && s.cold === true).length,
      coldMissed: samples.filter((s) => s.phase === 'cold' && s.cold === false).length,
      noMarker: samples.filter((s) => s.status > 0 && s.cold === null).length,
    },
  };
}

function defaultSleep(ms: number, onTick: (leftMs: number) => void): Promise<void> {
  return new Promise((resolve) => {
    const end = Date.now() + ms;
    const tick = () => {
      const left = end - Date.now();
      if (left <= 0) return resolve();
      onTick(left);
      setTimeout(tick, Math.min(1000, left));
    };
    tick();
  });
}

function validate(o: BenchOptions): void {
  if (o.targets.length === 0) throw new BenchUsageError('at least one target is needed');
  const names = new Set<string>();
  for (const t of o.targets) {
    if (!/^[\w.-]{1,40}$/.test(t.name)) throw new BenchUsageError(`target name "${t.name}" must be 1-40 letters, digits, '.', '_' or '-'`);
    if (names.has(t.name)) throw new BenchUsageError(`target name "${t.name}" is used twice`);
    names.add(t.name);
    let u: URL;
    try {
      u = new URL(t.url);
    } catch {
      throw new BenchUsageError(`target ${t.name}: "${t.url}" is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BenchUsageError(`target ${t.name}: only http:// and https:// URLs, got ${u.protocol}`);
    if (!o.allowRemote && !isLoopbackUrl(t.url)) {
      throw new BenchUsageError(
        `target ${t.name}: ${u.host} is not this machine. A benchmark is a load test: point it only at deployments you own ` +
          `(and pay for). Pass --i-own-this-target to confirm.`,
      );
    }
  }
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new BenchUsageError(`${name} must be a whole number ≥ ${min}, got ${v}`);
  };
  int('requests', o.requests, 1);
  int('concurrency', o.concurrency, 1);
  int('cold samples', o.coldSamples, 0);
  if (o.warmup !== undefined) int('warmup', o.warmup, 0);
  if (o.coldWaitMs !== undefined && !(o.coldWaitMs >= 0)) throw new BenchUsageError('cold wait must be ≥ 0');
  for (const e of o.endpoints ?? ENDPOINT_KEYS) if (!ENDPOINT_KEYS.includes(e)) throw new BenchUsageError(`unknown endpoint "${e}"`);
}

/** How a target's cold starts will be measured, and the sentence the output prints about it. */
export function coldPlan(t: BenchTarget, o: Pick<BenchOptions, 'coldSamples' | 'coldWaitMs'>): TargetResult['cold'] {
  if (o.coldSamples === 0) return { mode: 'none', waitMs: null, note: 'cold starts not sampled (--cold-samples 0)' };
  if (t.noColdStarts) return { mode: 'none', waitMs: null, note: t.noColdStarts };
  if (t.forceCold) return { mode: 'forced', waitMs: null, note: 'forced: the target was made idle-cold before each cold sample' };
  if (o.coldWaitMs !== undefined) {
    return {
      mode: 'wait',
      waitMs: o.coldWaitMs,
      note: `by waiting ${formatDuration(o.coldWaitMs)} of idle time before each cold sample; answers the service marks warm are counted as missed`,
    };
  }
  return {
    mode: 'none',
    waitMs: null,
    note:
      'not measured: this target cannot be made cold from here. Pass --cold-wait 15m to wait out the idle time before each cold sample (Lambda keeps idle environments for minutes, an unpublished and varying time).',
  };
}

export function formatDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 60_000 === 0) return `${Math.floor(ms / 3_600_000)} h ${(ms % 3_600_000) / 60_000} min`.replace(/ 0 min$/, '');
  if (ms >= 60_000 && ms % 1000 === 0) return `${Math.floor(ms / 60_000)} min${ms % 60_000 ? ` ${(ms % 60_000) / 1000} s` : ''}`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  return `${ms} ms`;
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  validate(options);
  const endpoints = [...(options.endpoints ?? ENDPOINT_KEYS)];
  const warmup = options.warmup ?? options.concurrency * 5;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const seed = options.seed ?? 1;
  const sleep = options.sleep ?? defaultSleep;
  const plans = options.targets.map((t) => coldPlan(t, options));
  const coldCount = (i: number) => (plans[i]!.mode === 'none' ? 0 : options.coldSamples);
  const total = options.targets.reduce((sum, _t, i) => sum + endpoints.length * (warmup + options.requests + coldCount(i)), 0);
  let done = 0;
  const progress = (stage: string, waitingMs?: number) =>
    options.onProgress?.({ done, total, stage, ...(waitingMs !== undefined ? { waitingMs } : {}) });

  const startedAt = new Date();
  const loadAtStart = os.loadavg()[0]!;
  const origin = performance.now();
  const samples = new Map<string, Sample[]>(); // `${target}\t${endpoint}` → samples
  const wall = new Map<string, number>();
  const key = (t: BenchTarget, e: EndpointKey) => `${t.name}\t${e}`;
  for (const t of options.targets) for (const e of endpoints) samples.set(key(t, e), []);

  const payloadFor = new Map<string, () => Buffer | null>();
  const specFor = (t: BenchTarget, e: EndpointKey): RequestSpec => {
    const { method, path } = ENDPOINTS[e];
    const headers: Record<string, string> = { accept: '*/*', 'user-agent': 'mlops-bench/1' };
    if (e === 'track') {
      headers['content-type'] = 'application/json';
      if (options.apiKey) headers['x-api-key'] = options.apiKey;
    }
    // With API keys set, /metrics takes the metrics token or any API key.
    const metricsCredential = options.metricsToken ?? options.apiKey;
    if (e === 'metrics' && metricsCredential) headers.authorization = `Bearer ${metricsCredential}`;
    let next = payloadFor.get(key(t, e));
    if (!next) {
      // Same seed for every target: both receive the same sequence of event shapes.
      const gen = e === 'track' ? trackPayloads(seed) : null;
      next = () => (gen ? Buffer.from(JSON.stringify(gen())) : null);
      payloadFor.set(key(t, e), next);
    }
    return { url: joinUrl(t.url, path), method, headers, body: next() };
  };

  const agents = options.targets.map(
    () => new http.Agent({ keepAlive: true, maxSockets: options.concurrency, maxFreeSockets: options.concurrency }),
  );
  const httpsAgents = options.targets.map(
    () => new https.Agent({ keepAlive: true, maxSockets: options.concurrency, maxFreeSockets: options.concurrency }),
  );
  const agentFor = (i: number, url: string) => (url.startsWith('https:') ? httpsAgents[i]! : agents[i]!);

  try {
    // Warm phase: per endpoint, each target in turn, so slow drift of the machine hits both alike.
    for (const e of endpoints) {
      for (const [i, t] of options.targets.entries()) {
        const list = samples.get(key(t, e))!;
        const label = `${t.name} ${ENDPOINTS[e].method} ${ENDPOINTS[e].path}`;
        for (const [phase, count] of [
          ['warmup', warmup],
          ['load', options.requests],
        ] as const) {
          if (count === 0) continue;
          progress(`${label} ${phase}`);
          let issued = 0;
          const t0 = performance.now();
          await Promise.all(
            Array.from({ length: Math.min(options.concurrency, count) }, async () => {
              while (issued < count) {
                issued++;
                const spec = specFor(t, e);
                list.push(await send(spec, agentFor(i, t.url), timeoutMs, origin, phase));
                done++;
                if (done % 25 === 0) progress(`${label} ${phase}`);
              }
            }),
          );
          if (phase === 'load') wall.set(key(t, e), performance.now() - t0);
        }
      }
    }

    // Cold phase: rounds, so one idle wait serves every waiting target at once.
    const maxCold = Math.max(0, ...options.targets.map((_t, i) => coldCount(i)));
    const waiting = options.targets.filter((_t, i) => plans[i]!.mode === 'wait');
    for (const e of endpoints) {
      for (let round = 0; round < maxCold; round++) {
        if (waiting.length > 0) {
          const stage = `cold ${ENDPOINTS[e].method} ${ENDPOINTS[e].path} #${round + 1}: waiting out idle time`;
          await sleep(options.coldWaitMs!, (left) => progress(stage, left));
        }
        for (const [i, t] of options.targets.entries()) {
          if (plans[i]!.mode === 'none') continue;
          progress(`${t.name} ${ENDPOINTS[e].method} ${ENDPOINTS[e].path} cold #${round + 1}`);
          if (plans[i]!.mode === 'forced') await t.forceCold!();
          // A fresh connection, as a client arriving after a quiet period has (and an idle
          // keep-alive socket may have been closed by the far side in the meantime).
          samples.get(key(t, e))!.push(await send(specFor(t, e), false, timeoutMs, origin, 'cold'));
          done++;
        }
      }
    }
    progress('done');
  } finally {
    for (const a of [...agents, ...httpsAgents]) a.destroy();
  }

  return {
    schema: BENCH_SCHEMA,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: machineInfo(loadAtStart),
    settings: {
      endpoints,
      requests: options.requests,
      concurrency: options.concurrency,
      warmup,
      coldSamples: options.coldSamples,
      coldWaitMs: options.coldWaitMs ?? null,
      timeoutMs,
      seed,
      apiKey: Boolean(options.apiKey),
    },
    percentileMethod: PERCENTILE_METHOD,
    targets: options.targets.map((t, i) => ({
      name: t.name,
      url: t.url,
      cold: plans[i]!,
      endpoints: endpoints.map((e) => {
        const list = samples.get(key(t, e))!;
        return { endpoint: e, ...ENDPOINTS[e], ...analyse(list, wall.get(key(t, e)) ?? 0), samples: list };
      }),
    })),
  };
}

/** Recomputes every summary from the samples (after compare:local added Lambda figures, or a hand edit). */
export function reanalyse(result: BenchResult): BenchResult {
  for (const t of result.targets) {
    for (const [i, e] of t.endpoints.entries()) {
      t.endpoints[i] = { ...e, ...analyse(e.samples, e.loadWallMs) };
    }
  }
  return result;
}
