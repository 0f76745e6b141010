/**
 * Scale: `GET /metrics` and `GET /analytics/{id}` medians with 10,000 and with 1,000,000 stored
 * events (500 businesses, 90 days), on PGlite and on PostgreSQL, and again with a further 50,000
 * events stored but not yet folded (reads add that tail themselves). Their cost must not grow
 * with the number of events (target: ≤ 2× the 10k median). Seeding goes through the real write
 * path (store.insertEvents, then one fold) and its rate is reported. With a tail, the first read
 * starts a fold (as the service does); the maximum of those reads is reported next to the median.
 */
import { randomUUID } from 'node:crypto';
import { openStore } from '../../src/storage/open-store.ts';
import type { NewEvent } from '../../src/storage/types.ts';
import { createBenchDatabase, machine, median, printVerdicts, table } from './lib.ts';
import { freshPgliteDir as freshPgliteFolder } from '../../tools/shared/pglite-template.ts';
import { startServiceServer } from './throughput.ts';

const BUSINESSES = 500;
const DAYS = 90;
const INTENTS = ['booking', 'pricing', 'hours', 'emergency', 'insurance', 'general'];
const TYPES = ['answer', 'answer', 'answer', 'clarification', 'error'];
const MODELS = ['gemini-1.5-flash', 'gemini-1.5-pro', 'gpt-4o-mini'];

/** Deterministic pseudo-random events spread over 500 businesses and the last 90 days. */
function* events(count: number, seed: number): Generator<NewEvent> {
  let s = seed >>> 0;
  const r = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const business = Math.floor(r() * BUSINESSES);
    const requested = r() < 0.3;
    const prompt = 20 + Math.floor(r() * 600);
    const completion = 10 + Math.floor(r() * 400);
    const type = TYPES[Math.floor(r() * TYPES.length)]!;
    yield {
      business_id: `business-${String(business).padStart(3, '0')}`,
      event_id: randomUUID(),
      conversation_id: `conv-${business}-${Math.floor(i / 5)}`,
      session_id: `sess-${Math.floor(i / 11)}`,
      response_time_ms: Math.round(150 + -Math.log(1 - r()) * 700),
      success_rate: type === 'error' ? 0 : 1,
      tokens_used: prompt + completion,
      prompt_tokens: prompt,
      completion_tokens: completion,
      api_cost_usd: Math.round((prompt * 0.075 + completion * 0.3) / 1000) / 1000,
      model_name: MODELS[Math.floor(r() * MODELS.length)]!,
      intent_detected: INTENTS[Math.floor(r() * INTENTS.length)]!,
      response_type: type,
      appointment_requested: requested,
      appointment_booked: requested && r() < 0.45,
      human_handoff_requested: r() < 0.08,
      user_message_length: Math.floor(r() * 300),
      ai_response_length: Math.floor(r() * 1200),
      user_satisfaction: null,
      created_at: new Date(now - r() * DAYS * 86_400_000).toISOString(),
    };
  }
}

async function seed(
  settings: { databaseUrl: string | undefined; dataDir: string },
  count: number,
  seedValue: number,
  progress: string,
  fold = true,
) {
  // No folds while seeding; one at the end (timed), unless the tail is what is measured.
  const store = await openStore({ ...settings, dbPoolMax: 2, dbConnectTimeoutMs: 5000, dbStatementTimeoutMs: 600_000, foldEvery: 1e9 });
  await store.migrate();
  const started = performance.now();
  const batchSize = 2000;
  let batch: NewEvent[] = [];
  let done = 0;
  const tty = process.stderr.isTTY;
  for (const e of events(count, seedValue)) {
    batch.push(e);
    if (batch.length === batchSize) {
      await store.insertEvents(batch);
      done += batch.length;
      batch = [];
      if (tty) process.stderr.write(`\r  ${progress}: ${done.toLocaleString()} / ${count.toLocaleString()} events`);
      else if (done % (batchSize * 50) === 0) process.stderr.write(`  ${progress}: ${done.toLocaleString()} / ${count.toLocaleString()}\n`);
    }
  }
  if (batch.length) await store.insertEvents(batch);
  if (tty) process.stderr.write('\n');
  if (fold) await store.foldPending();
  const seconds = (performance.now() - started) / 1000;
  await store.close();
  return { seconds, perSecond: count / seconds };
}

interface Measured {
  metrics: number;
  analytics: number;
  /** Slowest request of either kind, warm-up included (with a tail: the reads that fold it). */
  max: number;
  bytes: number;
}

async function measure(url: string, samples: number): Promise<Measured> {
  const time = async (path: string) => {
    const t = performance.now();
    const res = await fetch(`${url}${path}`);
    const text = await res.text();
    if (!res.ok) throw new Error(`${path} answered ${res.status}: ${text.slice(0, 200)}`);
    const ms = performance.now() - t;
    max = Math.max(max, ms);
    return { ms, bytes: text.length };
  };
  let max = 0;
  // Warm-up: first scrape loads prom-client, first analytics warms the plan cache.
  for (let i = 0; i < 5; i++) {
    await time('/metrics');
    await time(`/analytics/business-00${i}?days=30`);
  }
  const metrics: number[] = [];
  const analytics: number[] = [];
  let bytes = 0;
  for (let i = 0; i < samples; i++) {
    const m = await time('/metrics');
    bytes = m.bytes;
    metrics.push(m.ms);
    analytics.push((await time(`/analytics/business-${String((i * 37) % BUSINESSES).padStart(3, '0')}?days=30`)).ms);
  }
  return { metrics: median(metrics), analytics: median(analytics), max, bytes };
}

interface ScalePoint {
  events: number;
  /** Of `events`, stored but not folded when the server started. */
  unfolded: number;
  metricsMs: number;
  analyticsMs: number;
  maxMs: number;
  metricsBytes: number;
}

export interface ScaleRow {
  backend: 'pglite' | 'postgres';
  small: ScalePoint;
  large: ScalePoint;
  tail: ScalePoint;
  seeding: { seconds: number; perSecond: number };
}

const point = (events: number, unfolded: number, m: Measured): ScalePoint => ({
  events, unfolded, metricsMs: m.metrics, analyticsMs: m.analytics, maxMs: m.max, metricsBytes: m.bytes,
});

export async function scale(
  backend: 'pglite' | 'postgres',
  smallEvents: number,
  largeEvents: number,
  samples: number,
  tailEvents = 50_000,
): Promise<ScaleRow> {
  const db = backend === 'postgres' ? await createBenchDatabase('scale') : undefined;
  const dataDir = backend === 'pglite' ? await freshPgliteFolder() : '';
  const settings = { databaseUrl: db?.url, dataDir };
  const env: Record<string, string> = db ? { DATABASE_URL: db.url } : { DATA_DIR: dataDir };
  try {
    const first = await seed(settings, smallEvents, 1, `${backend} seed`);
    let server = await startServiceServer(env);
    const small = await measure(server.url, samples);
    await server.stop();
    const second = await seed(settings, largeEvents - smallEvents, 2, `${backend} seed`);
    server = await startServiceServer(env);
    const large = await measure(server.url, samples);
    await server.stop();
    await seed(settings, tailEvents, 3, `${backend} unfolded tail`, false);
    // No timer: only the reads themselves may fold the tail.
    server = await startServiceServer({ ...env, FOLD_INTERVAL_MS: '0' });
    const tail = await measure(server.url, samples);
    await server.stop();
    const seconds = first.seconds + second.seconds;
    return {
      backend,
      small: point(smallEvents, 0, small),
      large: point(largeEvents, 0, large),
      tail: point(largeEvents + tailEvents, tailEvents, tail),
      seeding: { seconds, perSecond: largeEvents / seconds },
    };
  } finally {
    await db?.drop();
  }
}

export function printScale(rows: ScaleRow[]): boolean {
  console.log(`\nScale: medians of sequential requests, 500 businesses over 90 days (${machine()})\n`);
  console.log(
    table(
      ['backend', 'events', 'of which unfolded', '/metrics ms', '/analytics/{id} ms', 'slowest ms', 'exposition KiB', 'seeding'],
      rows.flatMap((r) =>
        [r.small, r.large, r.tail].map((p, i) => [
          r.backend,
          p.events.toLocaleString(),
          p.unfolded.toLocaleString(),
          p.metricsMs.toFixed(2),
          p.analyticsMs.toFixed(2),
          p.maxMs.toFixed(0),
          (p.metricsBytes / 1024).toFixed(0),
          i === 1 ? `${r.seeding.seconds.toFixed(0)} s (${Math.round(r.seeding.perSecond).toLocaleString()} events/s)` : '',
        ]),
      ),
    ),
  );
  console.log('');
  const verdicts = rows.flatMap((r) => {
    return [r.large, r.tail].flatMap((p) => {
      const m = p.metricsMs / r.small.metricsMs;
      const a = p.analyticsMs / r.small.analyticsMs;
      const label = `${p.events.toLocaleString()}${p.unfolded ? ` (${p.unfolded.toLocaleString()} unfolded)` : ''} vs ${r.small.events.toLocaleString()}`;
      return [
        { name: `${r.backend} /metrics ${label}`, measured: `${m.toFixed(2)}×`, target: '≤ 2.00×', met: m <= 2 },
        { name: `${r.backend} /analytics/{id} ${label}`, measured: `${a.toFixed(2)}×`, target: '≤ 2.00×', met: a <= 2 },
      ];
    });
  });
  printVerdicts(verdicts);
  return verdicts.every((v) => v.met);
}
