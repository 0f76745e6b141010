/**
 * The one implementation of `Store`, over any `SqlExecutor` (postgres.js or PGlite). All reads
 * return JSON built in SQL: one statement per answer gives a consistent snapshot and the same
 * JavaScript types from both drivers.
 */
import { AGGREGATES, SCHEMA, upsertSql } from './aggregates.ts';
import { isRetryableConflict, isUnavailableError, StoreUnavailableError } from './errors.ts';
import type { SqlExecutor } from './executor.ts';
import { FINE_BUCKET_COUNT, PROMETHEUS_BUCKETS_MS } from './latency-buckets.ts';
import { MIGRATIONS } from './migrations/index.ts';
import type {
  AnalyticsWindow, BusinessTotals, InsertOutcome, MetricsSnapshot, NewEvent, PurgeReport, RefreshOptions, RefreshReport,
  RefreshResult, Store, WriteStats,
} from './types.ts';
import { WriteBatcher } from './write-batcher.ts';

const EVENT_COLUMNS: readonly [name: keyof NewEvent, type: string][] = [
  ['business_id', 'text'], ['conversation_id', 'text'], ['session_id', 'text'],
  ['response_time_ms', 'integer'], ['success_rate', 'numeric'], ['tokens_used', 'integer'],
  ['prompt_tokens', 'integer'], ['completion_tokens', 'integer'], ['api_cost_usd', 'numeric'],
  ['model_name', 'text'], ['intent_detected', 'text'], ['appointment_requested', 'boolean'],
  ['human_handoff_requested', 'boolean'], ['appointment_booked', 'boolean'],
  ['user_message_length', 'integer'], ['ai_response_length', 'integer'], ['response_type', 'text'],
  ['event_id', 'text'], ['user_satisfaction', 'double precision'],
];

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const LIFETIME = AGGREGATES.filter((t) => t.scope === 'lifetime');
const DAILY = AGGREGATES.filter((t) => t.scope !== 'lifetime');
const MIGRATION_LOCK = `hashtext('mlops-service:migrations')`;
const REFRESH_LOCK = `hashtext('mlops-service:refresh')`;

/** Events arrive as one JSON parameter, so the statement text is the same for any batch size. */
const INSERT_SQL = (() => {
  const names = EVENT_COLUMNS.map(([n]) => n);
  const recordset = [...EVENT_COLUMNS.map(([n, t]) => `${n} ${t}`), 'created_at timestamp', 'ord integer'].join(', ');
  const ctes = [
    `input AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(${recordset}))`,
    `ins AS (INSERT INTO ${SCHEMA}.ai_metrics (${names.join(', ')}, created_at)
      SELECT ${names.join(', ')}, coalesce(created_at, now() AT TIME ZONE 'utc') FROM input ORDER BY ord
      ON CONFLICT (business_id, event_id) DO NOTHING RETURNING *)`,
    ...AGGREGATES.map((table, i) => `agg${i} AS (${upsertSql(table, 'ins')})`),
  ];
  return `WITH ${ctes.join(',\n')}
    SELECT id, business_id, event_id, to_char(created_at, ${ISO}) AS created_at FROM ins`;
})();

const EXISTING_SQL = `SELECT m.id, m.business_id, m.event_id, to_char(m.created_at, ${ISO}) AS created_at
  FROM ${SCHEMA}.ai_metrics m
  JOIN jsonb_to_recordset($1::jsonb) AS k(business_id text, event_id text)
    ON m.business_id = k.business_id AND m.event_id = k.event_id`;


const BUSINESS_TOTALS_SQL = `SELECT coalesce(json_agg(b ORDER BY b.business_id), '[]'::json) AS rows FROM (
  SELECT business_id, ${['requests', 'response_time_ms_sum', 'success_rate_sum', 'tokens_used', 'api_cost_usd',
    'appointments_requested', 'appointments_booked', 'handoffs_error', 'handoffs_complex', 'errors']
    .map((c) => `sum(${c}) AS ${c}`).join(', ')},
    to_char(min(first_event_at), ${ISO}) AS first_event_at, to_char(max(last_event_at), ${ISO}) AS last_event_at
  FROM ${SCHEMA}.agg_business GROUP BY business_id) b`;

const METRICS_SQL = `SELECT json_build_object(
  'requests', (SELECT coalesce(json_agg(r ORDER BY r.business_id, r.response_type, r.intent), '[]'::json) FROM (
      SELECT business_id, response_type, intent, sum(requests) AS requests
      FROM ${SCHEMA}.agg_requests GROUP BY 1, 2, 3) r),
  'businesses', (${BUSINESS_TOTALS_SQL}),
  'models', (SELECT coalesce(json_agg(m ORDER BY m.business_id, m.model_name), '[]'::json) FROM (
      SELECT business_id, model_name, sum(requests) AS requests, sum(tokens_used) AS tokens_used,
        sum(api_cost_usd) AS api_cost_usd FROM ${SCHEMA}.agg_model GROUP BY 1, 2) m),
  'latency', (SELECT json_build_object('count', coalesce(sum(count), 0), 'sum_ms', coalesce(sum(sum_ms), 0),
      'cumulative', json_build_array(${PROMETHEUS_BUCKETS_MS.map((le) => `coalesce(sum(le_${le}), 0)`).join(', ')}))
    FROM ${SCHEMA}.agg_latency)
) AS snapshot`;

const LATENCY_SUMS = Array.from({ length: FINE_BUCKET_COUNT }, (_, i) => `coalesce(sum(b${i}), 0)`).join(', ');

/** $1 business, $2 days. The window is the last $2 UTC days, today included. */
const ANALYTICS_SQL = `WITH bounds AS (
    SELECT (now() AT TIME ZONE 'utc')::date - ($2::int - 1) AS from_day, (now() AT TIME ZONE 'utc')::date AS to_day)
  SELECT json_build_object(
    'from', to_char(from_day, 'YYYY-MM-DD'), 'to', to_char(to_day, 'YYYY-MM-DD'),
    'totals', (SELECT json_build_object(
        'requests', coalesce(sum(requests), 0), 'response_time_ms_sum', coalesce(sum(response_time_ms_sum), 0),
        'success_rate_sum', coalesce(sum(success_rate_sum), 0), 'tokens_used', coalesce(sum(tokens_used), 0),
        'api_cost_usd', coalesce(sum(api_cost_usd), 0), 'appointments_requested', coalesce(sum(appointments_requested), 0),
        'appointments_booked', coalesce(sum(appointments_booked), 0), 'human_handoffs', coalesce(sum(human_handoffs), 0),
        'errors', coalesce(sum(errors), 0),
        'conversations', (SELECT count(DISTINCT conversation_key) FROM ${SCHEMA}.conversation_days c
            WHERE c.business_id = $1 AND c.day >= from_day))
      FROM ${SCHEMA}.daily_business d WHERE d.business_id = $1 AND d.day >= from_day),
    'latency_buckets', (SELECT json_build_array(${LATENCY_SUMS})
      FROM ${SCHEMA}.daily_latency l WHERE l.business_id = $1 AND l.day >= from_day),
    'by_intent', (SELECT coalesce(json_agg(i ORDER BY i.requests DESC, i.intent), '[]'::json) FROM (
        SELECT intent, sum(requests) AS requests FROM ${SCHEMA}.daily_intent
        WHERE business_id = $1 AND day >= from_day GROUP BY intent) i),
    'by_model', (SELECT coalesce(json_agg(m ORDER BY m.requests DESC, m.model_name), '[]'::json) FROM (
        SELECT model_name, sum(requests) AS requests, sum(tokens_used) AS tokens_used, sum(api_cost_usd) AS api_cost_usd
        FROM ${SCHEMA}.daily_model WHERE business_id = $1 AND day >= from_day GROUP BY model_name) m),
    'daily', (SELECT json_agg(json_build_object('date', to_char(g.day, 'YYYY-MM-DD'),
        'requests', coalesce(d.requests, 0), 'response_time_ms_sum', coalesce(d.response_time_ms_sum, 0),
        'api_cost_usd', coalesce(d.api_cost_usd, 0)) ORDER BY g.day)
      FROM (SELECT generate_series(from_day, to_day, interval '1 day')::date AS day) g
      LEFT JOIN ${SCHEMA}.daily_business d ON d.business_id = $1 AND d.day = g.day)
  ) AS result FROM bounds`;

/** The hot statements, as SQL to run directly or as calls to session functions. */
interface Statements {
  insert: string;
  metrics: string;
  totals: string;
  analytics: string;
}

const DIRECT: Statements = { insert: INSERT_SQL, metrics: METRICS_SQL, totals: BUSINESS_TOTALS_SQL, analytics: ANALYTICS_SQL };

/**
 * PGlite keeps no plan between `query()` calls, and planning these statements in WebAssembly
 * takes 40–100 ms each time; PL/pgSQL caches the plans of the statements in a function body for
 * the session. So an embedded store wraps them in temporary (session-only, never migrated)
 * functions. PostgreSQL needs none: postgres.js prepares statements per connection.
 */
export const SESSION_FUNCTIONS_SQL = `
CREATE OR REPLACE FUNCTION pg_temp.mlops_insert_events(payload jsonb)
  RETURNS TABLE(id int, business_id varchar, event_id varchar, created_at text) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN RETURN QUERY ${INSERT_SQL.replace('$1::jsonb', 'payload')}; END $fn$;
CREATE OR REPLACE FUNCTION pg_temp.mlops_metrics_snapshot() RETURNS json LANGUAGE plpgsql AS $fn$
BEGIN RETURN (${METRICS_SQL.replace(/ AS snapshot$/, '')}); END $fn$;
CREATE OR REPLACE FUNCTION pg_temp.mlops_business_totals() RETURNS json LANGUAGE plpgsql AS $fn$
BEGIN RETURN (${BUSINESS_TOTALS_SQL.replace(' AS rows FROM (', ' FROM (')}); END $fn$;
CREATE OR REPLACE FUNCTION pg_temp.mlops_analytics(business text, days int) RETURNS json LANGUAGE plpgsql AS $fn$
BEGIN RETURN (${ANALYTICS_SQL.replace(/\$1/g, 'business').replace(/\$2/g, 'days').replace(/ AS result FROM bounds$/, ' FROM bounds')}); END $fn$;`;

const SESSION: Statements = {
  insert: 'SELECT * FROM pg_temp.mlops_insert_events($1::jsonb)',
  metrics: 'SELECT pg_temp.mlops_metrics_snapshot() AS snapshot',
  totals: 'SELECT pg_temp.mlops_business_totals() AS rows',
  analytics: 'SELECT pg_temp.mlops_analytics($1, $2) AS result',
};

export interface SqlStoreOptions {
  kind: Store['kind'];
  description: string;
  /** Commits in flight at once; at most the pool size. */
  maxConcurrentCommits: number;
  /** Events per shared commit. */
  maxEventsPerCommit?: number;
  /** Run the hot statements through SESSION_FUNCTIONS_SQL (created by the caller on its session). */
  sessionFunctions?: boolean;
  /**
   * How long a request waits for the database before giving up with StoreUnavailableError (a 503).
   * statement_timeout is enforced by the server, so a frozen or partitioned server would otherwise
   * hold requests until TCP gives up. Unset: no limit.
   */
  operationTimeoutMs?: number;
}

const keyOf = (businessId: string, eventId: string) => `${businessId}\u0000${eventId}`;

export class SqlStore implements Store {
  readonly kind: Store['kind'];
  readonly description: string;
  readonly #db: SqlExecutor;
  readonly #batcher: WriteBatcher<NewEvent, InsertOutcome>;
  readonly #sql: Statements;
  readonly #operationTimeoutMs: number | undefined;

  constructor(db: SqlExecutor, options: SqlStoreOptions) {
    this.#db = db;
    this.#operationTimeoutMs = options.operationTimeoutMs;
    this.#sql = options.sessionFunctions ? SESSION : DIRECT;
    this.kind = options.kind;
    this.description = options.description;
    this.#batcher = new WriteBatcher((events) => this.#insertNow(events), {
      maxItems: options.maxEventsPerCommit ?? 1000,
      maxConcurrent: options.maxConcurrentCommits,
      retryAlone: (error) => !isUnavailableError(error),
    });
  }

  get writeStats(): WriteStats {
    return { ...this.#batcher.stats, pending: this.#batcher.pending };
  }

  async migrate(): Promise<{ applied: string[] }> {
    return this.#guard(() =>
      this.#db.transaction(async (tx) => {
        // Transaction-scoped lock: a second instance waits here, then finds the work done.
        await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
        await tx.exec(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA};
          CREATE TABLE IF NOT EXISTS ${SCHEMA}.schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
        const rows = await tx.query<{ version: number }>(`SELECT version FROM ${SCHEMA}.schema_migrations`);
        const done = new Set(rows.map((r) => Number(r.version)));
        const applied: string[] = [];
        for (const m of MIGRATIONS) {
          if (done.has(m.version)) continue;
          await tx.exec(m.sql);
          await tx.query(`INSERT INTO ${SCHEMA}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
          applied.push(`${String(m.version).padStart(4, '0')}_${m.name}`);
        }
        return { applied };
      }),
    );
  }

  insertEvents(events: NewEvent[]): Promise<InsertOutcome[]> {
    if (events.length === 0) return Promise.resolve([]);
    return this.#deadline(this.#batcher.submit(events));
  }

  /**
   * Gives up waiting after `operationTimeoutMs`. A write given up on may still commit later; a
   * retry with the same event_id is then answered as a duplicate, so nothing is counted twice.
   */
  #deadline<T>(work: Promise<T>, ms = this.#operationTimeoutMs): Promise<T> {
    if (!ms) return work;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(`Database did not answer within ${ms} ms`)), ms);
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  async #insertNow(events: NewEvent[]): Promise<InsertOutcome[]> {
    // Passed as a value, not a string: both drivers serialise parameters typed jsonb themselves.
    const payload = events.map((e, ord) => ({ ...e, ord }));
    const inserted = await this.#guard(() => this.#withConflictRetry(() =>
      this.#db.query<{ id: number; business_id: string; event_id: string; created_at: string }>(this.#sql.insert, [payload]),
    ));
    const fresh = new Map(inserted.map((r) => [keyOf(r.business_id, r.event_id), r]));
    const claimed = new Set<string>();
    const missing: { business_id: string; event_id: string }[] = [];
    for (const e of events) {
      const key = keyOf(e.business_id, e.event_id);
      if (!fresh.has(key)) missing.push({ business_id: e.business_id, event_id: e.event_id });
    }
    const existing = new Map<string, { id: number; created_at: string }>();
    if (missing.length > 0) {
      const rows = await this.#guard(() =>
        this.#db.query<{ id: number; business_id: string; event_id: string; created_at: string }>(EXISTING_SQL, [missing]),
      );
      for (const r of rows) existing.set(keyOf(r.business_id, r.event_id), r);
    }
    return events.map((e) => {
      const key = keyOf(e.business_id, e.event_id);
      const row = fresh.get(key);
      if (row && !claimed.has(key)) {
        claimed.add(key);
        return { id: Number(row.id), event_id: e.event_id, duplicate: false, created_at: row.created_at };
      }
      const prior = row ?? existing.get(key);
      if (!prior) {
        // Neither inserted nor found: only possible if the row vanished (retention) in between.
        throw new StoreUnavailableError('Event could not be confirmed as stored; retry with the same event_id');
      }
      return { id: Number(prior.id), event_id: e.event_id, duplicate: true, created_at: prior.created_at };
    });
  }

  async ping(timeoutMs: number): Promise<number> {
    const started = performance.now();
    await this.#deadline(this.#guard(() => this.#db.query('SELECT 1 AS ok')), timeoutMs);
    return performance.now() - started;
  }

  async metricsSnapshot(): Promise<MetricsSnapshot> {
    const [row] = await this.#deadline(this.#guard(() => this.#db.query<{ snapshot: MetricsSnapshot | string }>(this.#sql.metrics)));
    return parseJson(row!.snapshot);
  }

  async businessTotals(): Promise<BusinessTotals[]> {
    const [row] = await this.#deadline(this.#guard(() => this.#db.query<{ rows: BusinessTotals[] | string }>(this.#sql.totals)));
    return parseJson(row!.rows);
  }

  async analyticsWindow(businessId: string, days: number): Promise<AnalyticsWindow> {
    const [row] = await this.#deadline(
      this.#guard(() =>
        this.#db.query<{ result: Omit<AnalyticsWindow, 'business_id' | 'days'> | string }>(this.#sql.analytics, [businessId, days]),
      ),
    );
    const result = parseJson(row!.result);
    const { conversations, ...totals } = result.totals as AnalyticsWindow['totals'];
    return {
      business_id: businessId,
      days,
      ...result,
      totals: { ...totals, conversations },
      latency_buckets: result.latency_buckets ?? new Array(FINE_BUCKET_COUNT).fill(0),
    };
  }

  async refreshAggregates(options: RefreshOptions = {}): Promise<RefreshResult> {
    const started = performance.now();
    return this.#guard(() =>
      this.#db.transaction(async (tx): Promise<RefreshResult> => {
        const [lock] = await tx.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock(${REFRESH_LOCK}) AS locked`);
        const [last] = await tx.query<{ value: string | null; age_ms: number | null }>(
          `SELECT max(value) AS value, (extract(epoch FROM now() - max(value)::timestamptz) * 1000)::float8 AS age_ms
           FROM ${SCHEMA}.service_state WHERE key = 'last_refresh_at'`,
        );
        const lastAt = last?.value ?? null;
        if (!lock?.locked) return { status: 'skipped', reason: 'Another refresh is running', last_refresh_at: lastAt };
        const minInterval = options.minIntervalMs ?? 0;
        if (!options.force && last?.age_ms != null && last.age_ms < minInterval) {
          return {
            status: 'skipped',
            reason: `Aggregates are maintained on every write; the last full refresh was ${Math.round(last.age_ms / 1000)} s ago ` +
              `(at most one per ${Math.round(minInterval / 1000)} s; add ?force=true to run one now)`,
            last_refresh_at: lastAt,
          };
        }
        // SHARE blocks writers (their ROW EXCLUSIVE) until the rebuild commits, so no event is
        // counted twice or missed; readers carry on.
        await tx.query(`LOCK TABLE ${SCHEMA}.ai_metrics IN SHARE MODE`);
        const watermark = await readWatermark(tx);
        const [drift] = await tx.query<{ rows: RefreshReport['drift'] | string; events: number; businesses: number }>(
          `SELECT (SELECT count(*)::float8 FROM ${SCHEMA}.ai_metrics) AS events,
            (SELECT count(DISTINCT business_id)::float8 FROM ${SCHEMA}.ai_metrics) AS businesses,
            (SELECT coalesce(json_agg(x ORDER BY x.business_id), '[]'::json) FROM (
              SELECT coalesce(a.business_id, s.business_id) AS business_id, coalesce(a.requests, 0) AS before,
                coalesce(s.requests, 0) AS after
              FROM (SELECT business_id, requests FROM ${SCHEMA}.agg_business WHERE NOT archived) a
              FULL JOIN (SELECT business_id, count(*) AS requests FROM ${SCHEMA}.ai_metrics GROUP BY 1) s
                ON a.business_id = s.business_id
              WHERE coalesce(a.requests, 0) <> coalesce(s.requests, 0)) x) AS rows`,
        );
        const before = await countRows(tx);
        const sinceWatermark = watermark ? `e.created_at >= '${watermark}'::date` : undefined;
        for (const table of LIFETIME) {
          await tx.query(`DELETE FROM ${SCHEMA}.${table.name} WHERE NOT archived`);
          await tx.query(upsertSql(table, `${SCHEMA}.ai_metrics`));
        }
        for (const table of DAILY) {
          await tx.query(`DELETE FROM ${SCHEMA}.${table.name}${watermark ? ` WHERE day >= '${watermark}'::date` : ''}`);
          await tx.query(upsertSql(table, `${SCHEMA}.ai_metrics`, sinceWatermark ? { where: sinceWatermark } : {}));
        }
        const after = await countRows(tx);
        await tx.query(
          `INSERT INTO ${SCHEMA}.service_state (key, value) VALUES ('last_refresh_at', to_char(now() AT TIME ZONE 'utc', ${ISO}))
           ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        );
        const report: RefreshReport = {
          events_scanned: Number(drift!.events),
          businesses: Number(drift!.businesses),
          tables: AGGREGATES.map((t) => ({ table: t.name, rows_before: before[t.name] ?? 0, rows_after: after[t.name] ?? 0 })),
          drift: parseJson(drift!.rows),
          duration_ms: Math.round(performance.now() - started),
        };
        return { status: 'done', report };
      }),
    );
  }

  async purgeBefore(cutoffDay: string): Promise<PurgeReport> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(cutoffDay)) throw new Error(`cutoffDay must be YYYY-MM-DD, got ${cutoffDay}`);
    return this.#guard(() =>
      this.#db.transaction(async (tx) => {
        // Deleting with RETURNING makes the deleted rows the source: a concurrent purge deletes
        // (and moves to the archived totals) each row exactly once.
        const ctes = [
          `purged AS (DELETE FROM ${SCHEMA}.ai_metrics WHERE created_at < $1::date RETURNING *)`,
          ...LIFETIME.flatMap((table, i) => [
            `live${i} AS (${upsertSql(table, 'purged', { sign: -1 })})`,
            `arch${i} AS (${upsertSql(table, 'purged', { archived: true })})`,
          ]),
        ];
        const [row] = await tx.query<{ deleted: number }>(
          `WITH ${ctes.join(',\n')} SELECT count(*)::float8 AS deleted FROM purged`,
          [cutoffDay],
        );
        await tx.query(`DELETE FROM ${SCHEMA}.conversation_days WHERE day < $1::date`, [cutoffDay]);
        await tx.query(
          `INSERT INTO ${SCHEMA}.service_state (key, value) VALUES ('purged_before', $1)
           ON CONFLICT (key) DO UPDATE SET value = greatest(service_state.value, excluded.value)`,
          [cutoffDay],
        );
        return { cutoff_day: cutoffDay, events_deleted: Number(row!.deleted) };
      }),
    );
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  /** Retries a statement that lost a deadlock or serialization race; it had no effect. */
  async #withConflictRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (attempt >= 4 || !isRetryableConflict(error)) throw error;
      }
    }
  }

  /** Turns driver errors that mean "database unreachable" into `StoreUnavailableError`. */
  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (code === '42P01' || code === '3F000') {
        throw new StoreUnavailableError(
          'The database has no mlops schema yet: run `npm run migrate` with DATABASE_URL set (or start a server with DB_MIGRATE_ON_START=true)',
          { cause: error },
        );
      }
      if (error instanceof StoreUnavailableError || !isUnavailableError(error)) throw error;
      // The driver's message names hosts and ports: it goes to the log (as the cause), and clients
      // get its code only.
      throw new StoreUnavailableError(`Database unavailable${typeof code === 'string' ? ` (${code})` : ''}`, { cause: error });
    }
  }
}

async function readWatermark(tx: SqlExecutor): Promise<string | undefined> {
  const rows = await tx.query<{ value: string }>(`SELECT value FROM ${SCHEMA}.service_state WHERE key = 'purged_before'`);
  const value = rows[0]?.value;
  return value && /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : undefined;
}

async function countRows(tx: SqlExecutor): Promise<Record<string, number>> {
  const [row] = await tx.query<{ counts: Record<string, number> | string }>(
    `SELECT json_build_object(${AGGREGATES.map((t) => `'${t.name}', (SELECT count(*) FROM ${SCHEMA}.${t.name})`).join(', ')}) AS counts`,
  );
  return parseJson(row!.counts);
}

/** postgres.js and PGlite both parse `json` columns, but be tolerant of a driver that does not. */
function parseJson<T>(value: T | string): T {
  return typeof value === 'string' ? (JSON.parse(value) as T) : value;
}
