/**
 * A bounded mixed-traffic load test against a running service on this machine (loopback only:
 * it must never be pointed at someone else's deployment). Reports throughput, latency percentiles
 * and errors per route, and the server's memory over time from `/health/detailed` (a soak run
 * shows whether memory stays flat after warm-up).
 */
import { randomUUID } from 'node:crypto';

export interface LoadOptions {
  url: string;
  durationMs: number;
  concurrency: number;
  /** Requests per second over all workers; 0 = as fast as the workers go. */
  rate: number;
  apiKey?: string;
  metricsToken?: string;
  businesses: number;
  batchSize: number;
  memoryIntervalMs: number;
  /** Memory samples before this are warm-up (default: a fifth of the run, at most 60 s). */
  warmupMs?: number;
  /** Called every few seconds with a one-line summary. */
  progress?: (line: string) => void;
}

export interface RouteReport {
  route: string;
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  latency_ms: { p50: number; p90: number; p99: number; max: number; mean: number };
}

export interface MemorySample {
  t_s: number;
  rss_mb: number;
  heap_used_mb: number;
}

export interface LoadReport {
  url: string;
  duration_s: number;
  concurrency: number;
  target_rate: number;
  requests: number;
  throughput_rps: number;
  events_acknowledged: number;
  errors: number;
  errors_by_status: Record<string, number>;
  routes: RouteReport[];
  memory: {
    samples: MemorySample[];
    first_minute_rss_mb: number | null;
    last_minute_rss_mb: number | null;
    /** Least-squares slope of RSS after warm-up, MB per minute, over `slope_samples` samples. */
    slope_mb_per_min: number | null;
    slope_samples: number;
    peak_rss_mb: number | null;
  };
}

const MIX: { route: string; weight: number }[] = [
  { route: 'POST /track', weight: 70 },
  { route: 'POST /track/batch', weight: 10 },
  { route: 'GET /analytics/{id}', weight: 10 },
  { route: 'GET /metrics', weight: 5 },
  { route: 'GET /health', weight: 5 },
];

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Refuses anything but this machine. */
export function assertLoopback(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`not a URL: ${url}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`only http(s) URLs, got ${u.protocol}`);
  if (!LOOPBACK.has(u.hostname) && !/^127\.\d+\.\d+\.\d+$/.test(u.hostname)) {
    throw new Error(`refusing ${u.hostname}: the load test only targets a server on this machine (localhost, 127.0.0.0/8, ::1)`);
  }
  return u;
}

/** "90s", "5m", "1h", "1500ms" or plain seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`bad duration "${text}" (use e.g. 30s, 5m)`);
  const n = Number(m[1]);
  return Math.round(n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']));
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Least-squares slope of y over x. */
export function slope(points: { x: number; y: number }[]): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const den = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return den === 0 ? null : points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / den;
}

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

function event(business: string) {
  return {
    business_id: business,
    event_id: randomUUID(),
    conversation_id: `load-conv-${Math.floor(Math.random() * 1000)}`,
    response_time_ms: Math.round(50 + Math.random() * 3000),
    tokens_used: 100 + Math.floor(Math.random() * 800),
    api_cost_usd: round(Math.random() * 0.01, 6),
    model_name: Math.random() < 0.7 ? 'gemini-1.5-flash' : 'gpt-4o-mini',
    intent_detected: ['booking', 'pricing', 'hours', 'general'][Math.floor(Math.random() * 4)],
    response_type: Math.random() < 0.05 ? 'error' : 'answer',
    appointment_requested: Math.random() < 0.3,
    appointment_booked: Math.random() < 0.15,
  };
}

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const base = assertLoopback(options.url).toString().replace(/\/+$/, '');
  const auth: Record<string, string> = options.apiKey ? { 'x-api-key': options.apiKey } : {};
  // With API keys set, /metrics takes the metrics token or any API key.
  const metricsCredential = options.metricsToken ?? options.apiKey;
  const metricsAuth: Record<string, string> = metricsCredential ? { authorization: `Bearer ${metricsCredential}` } : {};
  const businesses = Array.from({ length: Math.max(1, options.businesses) }, (_, i) => `load-${i + 1}`);
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
  const totalWeight = MIX.reduce((a, m) => a + m.weight, 0);
  const chooseRoute = () => {
    let r = Math.random() * totalWeight;
    for (const m of MIX) if ((r -= m.weight) < 0) return m.route;
    return MIX[0]!.route;
  };

  const latencies = new Map<string, number[]>(MIX.map((m) => [m.route, []]));
  const statuses = new Map<string, Map<string, number>>(MIX.map((m) => [m.route, new Map()]));
  let requests = 0;
  let acknowledged = 0;
  const memory: MemorySample[] = [];
  const started = performance.now();
  const deadline = started + options.durationMs;
  let slot = 0;

  async function one(route: string) {
    let url = base;
    const init: RequestInit = { signal: AbortSignal.timeout(30_000) };
    let events = 0;
    if (route === 'POST /track') {
      events = 1;
      Object.assign(init, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(event(pick(businesses))) });
      url += '/track';
    } else if (route === 'POST /track/batch') {
      events = options.batchSize;
      const batch = Array.from({ length: options.batchSize }, () => event(pick(businesses)));
      Object.assign(init, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ events: batch }) });
      url += '/track/batch';
    } else if (route === 'GET /analytics/{id}') {
      Object.assign(init, { headers: auth });
      url += `/analytics/${pick(businesses)}?days=7`;
    } else if (route === 'GET /metrics') {
      Object.assign(init, { headers: metricsAuth });
      url += '/metrics';
    } else {
      url += '/health';
    }
    const t0 = performance.now();
    let status: string;
    try {
      const res = await fetch(url, init);
      await res.arrayBuffer();
      status = String(res.status);
      if (res.ok) acknowledged += events;
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      status = `network:${cause?.code ?? (error as Error).name}`;
    }
    latencies.get(route)!.push(performance.now() - t0);
    const s = statuses.get(route)!;
    s.set(status, (s.get(status) ?? 0) + 1);
    requests++;
  }

  async function worker() {
    while (performance.now() < deadline) {
      if (options.rate > 0) {
        // Open-loop pacing: request k is due at start + k/rate, whichever worker is free.
        const due = started + (slot++ * 1000) / options.rate;
        const wait = due - performance.now();
        if (due >= deadline) return;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await one(chooseRoute());
    }
  }

  async function sampleMemory() {
    try {
      const res = await fetch(`${base}/health/detailed`, { signal: AbortSignal.timeout(5000) });
      const body = (await res.json()) as { memory?: { rss_mb?: number; heap_used_mb?: number } };
      if (body.memory?.rss_mb !== undefined) {
        memory.push({ t_s: round((performance.now() - started) / 1000, 1), rss_mb: body.memory.rss_mb, heap_used_mb: body.memory.heap_used_mb ?? 0 });
      }
    } catch {
      /* a missed sample is visible as a gap */
    }
  }

  const errorsNow = () => {
    let n = 0;
    for (const s of statuses.values()) for (const [k, v] of s) if (!k.startsWith('2')) n += v;
    return n;
  };
  await sampleMemory();
  const memTimer = setInterval(() => void sampleMemory(), options.memoryIntervalMs);
  let lastRequests = 0;
  let lastAt = performance.now();
  const progressTimer = setInterval(() => {
    const now = performance.now();
    const rps = ((requests - lastRequests) * 1000) / (now - lastAt);
    lastRequests = requests;
    lastAt = now;
    const rss = memory.at(-1)?.rss_mb;
    options.progress?.(
      `[load] ${Math.round((now - started) / 1000)}s/${Math.round(options.durationMs / 1000)}s  ${requests} requests  ${Math.round(rps)} req/s  errors ${errorsNow()}  rss ${rss ?? '?'} MB`,
    );
  }, 5000);
  try {
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  } finally {
    clearInterval(memTimer);
    clearInterval(progressTimer);
  }
  await sampleMemory();
  const elapsed = (performance.now() - started) / 1000;

  const routes: RouteReport[] = MIX.map(({ route }) => {
    const l = latencies.get(route)!.sort((a, b) => a - b);
    const s = Object.fromEntries(statuses.get(route)!);
    const errors = Object.entries(s).filter(([k]) => !k.startsWith('2')).reduce((a, [, v]) => a + v, 0);
    return {
      route,
      requests: l.length,
      errors,
      statuses: s,
      latency_ms: {
        p50: round(percentile(l, 50)), p90: round(percentile(l, 90)), p99: round(percentile(l, 99)), max: round(l.at(-1) ?? 0),
        mean: round(l.length ? l.reduce((a, b) => a + b, 0) / l.length : 0),
      },
    };
  });
  const errorsByStatus: Record<string, number> = {};
  for (const r of routes) for (const [k, v] of Object.entries(r.statuses)) if (!k.startsWith('2')) errorsByStatus[k] = (errorsByStatus[k] ?? 0) + v;

  const warmupS = (options.warmupMs ?? Math.min(60_000, options.durationMs / 5)) / 1000;
  const windowS = Math.min(60, elapsed / 3);
  const mean = (xs: MemorySample[]) => (xs.length ? round(xs.reduce((a, s) => a + s.rss_mb, 0) / xs.length, 1) : null);
  const afterWarmup = memory.filter((s) => s.t_s >= warmupS);
  const s = slope(afterWarmup.map((m) => ({ x: m.t_s / 60, y: m.rss_mb })));
  return {
    url: base,
    duration_s: round(elapsed, 1),
    concurrency: options.concurrency,
    target_rate: options.rate,
    requests,
    throughput_rps: round(requests / elapsed, 1),
    events_acknowledged: acknowledged,
    errors: errorsNow(),
    errors_by_status: errorsByStatus,
    routes,
    memory: {
      samples: memory,
      first_minute_rss_mb: mean(memory.filter((m) => m.t_s <= windowS)),
      last_minute_rss_mb: mean(memory.filter((m) => m.t_s >= elapsed - windowS)),
      slope_mb_per_min: s === null ? null : round(s, 2),
      slope_samples: afterWarmup.length,
      peak_rss_mb: memory.length ? Math.max(...memory.map((m) => m.rss_mb)) : null,
    },
  };
}

/** The human-readable report. */
export function formatReport(r: LoadReport): string {
  const lines = [
    `target ${r.url}  ${r.duration_s} s  concurrency ${r.concurrency}  rate ${r.target_rate || 'unlimited'}`,
    `${r.requests} requests, ${r.throughput_rps} req/s, ${r.events_acknowledged} events acknowledged, ${r.errors} errors ${JSON.stringify(r.errors_by_status)}`,
    '',
    `${'route'.padEnd(22)}${'requests'.padStart(9)}${'errors'.padStart(8)}${'p50 ms'.padStart(9)}${'p90 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'max ms'.padStart(9)}`,
    ...r.routes.map((x) =>
      `${x.route.padEnd(22)}${String(x.requests).padStart(9)}${String(x.errors).padStart(8)}${String(x.latency_ms.p50).padStart(9)}${String(x.latency_ms.p90).padStart(9)}${String(x.latency_ms.p99).padStart(9)}${String(x.latency_ms.max).padStart(9)}`),
    '',
    `server memory: first minute ${r.memory.first_minute_rss_mb} MB RSS, last minute ${r.memory.last_minute_rss_mb} MB, peak ${r.memory.peak_rss_mb} MB, ` +
      `slope after warm-up ${r.memory.slope_mb_per_min} MB/min (${r.memory.slope_samples} of ${r.memory.samples.length} samples)`,
  ];
  return lines.join('\n');
}
