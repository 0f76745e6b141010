/**
 * The one implementation of `Store`, over any `SqlExecutor` (postgres.js or PGlite). All reads
 * return JSON built in SQL: one statement per answer gives a consistent snapshot and the same
 * JavaScript types from both drivers.
 */
import { aggregateTable, AGGREGATES, eventById, FOLD_QUEUE, FOLDED_EVENTS, SCHEMA, tailEventsSql, upsertSql, withTailSql } from './aggregates.ts';
import { isDataError, isRetryableConflict, isUnavailableError, StoreDataError, StoreUnavailableError } from './errors.ts';
import type { SqlExecutor } from './executor.ts';
import { GENAI_DURATION_BUCKETS_MS, GENAI_TOKEN_BUCKETS, PROMETHEUS_BUCKETS_MS } from './latency-buckets.ts';
import { MIGRATIONS } from './migrations/index.ts';
import type {
  AnalyticsWindow, BusinessTotals, FoldOptions, FoldReport, InsertOutcome, MetricsSnapshot, NewEvent, PurgeReport, RefreshOptions,
  RefreshReport, RefreshResult, Store, WriteStats,
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
  ['cost_source', 'text'], ['operation_name', 'text'], ['cached_input_tokens', 'integer'],
];

/** What an absent optional field of `NewEvent` is stored as (the other columns take NULL). */
const EVENT_DEFAULTS: Partial<Record<keyof NewEvent, string>> = { cost_source: "'client'", operation_name: "'chat'" };

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const LIFETIME = AGGREGATES.filter((t) => t.scope === 'lifetime');
const DAILY = AGGREGATES.filter((t) => t.scope !== 'lifetime');
const MIGRATION_LOCK = `hashtext('mlops-service:migrations')`;
const REFRESH_LOCK = `hashtext('mlops-service:refresh')`;
/** Held by whoever changes the aggregates (fold, refresh, purge): one at a time, writers never wait. */
const FOLD_LOCK = `hashtext('mlops-service:fold')`;

/**
 * Events arrive as one JSON parameter, so the statement text is the same for any batch size.
 * Append-only: the statement inserts the events and their fold-queue keys and updates no row, so
 * concurrent writers (Lambda environments, server replicas) never wait for each other's commits;
 * only a repeat of the same (business_id, event_id) waits for the first writer, then is a duplicate.
 */
const INSERT_SQL = (() => {
  const names = EVENT_COLUMNS.map(([n]) => n);
  const recordset = [...EVENT_COLUMNS.map(([n, t]) => `${n} ${t}`), 'created_at timestamptz', 'ord integer'].join(', ');
  const ctes = [
    `input AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(${recordset}))`,
    `ins AS (INSERT INTO ${SCHEMA}.ai_metrics (${names.join(', ')}, created_at)
      SELECT ${names.map((n) => (EVENT_DEFAULTS[n] ? `coalesce(${n}, ${EVENT_DEFAULTS[n]})` : n)).join(', ')}, coalesce(created_at, now()) AT TIME ZONE 'utc' FROM input
      -- Key order: two batches sharing event ids take their index locks in one order, never a deadlock.
      ORDER BY business_id, event_id, ord
      ON CONFLICT (business_id, event_id) DO NOTHING RETURNING id, business_id, event_id, created_at)`,
    `queued AS (INSERT INTO ${FOLD_QUEUE} (business_id, id) SELECT business_id, id FROM ins)`,
  ];
  return `WITH ${ctes.join(',\n')}
    SELECT id, business_id, event_id, to_char(created_at, ${ISO}) AS created_at FROM ins`;
})();

const EXISTING_SQL = `SELECT m.id, m.business_id, m.event_id, to_char(m.created_at, ${ISO}) AS created_at
  FROM ${SCHEMA}.ai_metrics m
  JOIN jsonb_to_recordset($1::jsonb) AS k(business_id text, event_id text)
    ON m.business_id = k.business_id AND m.event_id = k.event_id`;


const tail = (table: string, filter?: Parameters<typeof withTailSql>[2]) => withTailSql(aggregateTable(table), 'tail', filter);

/**
 * Per-business lifetime totals; reads the CTE `tail` of the statement it is part of. `withTailSql`
 * already yields one row per key, so nothing is grouped twice: at a million events the second
 * hash aggregate pushed /metrics past work_mem (4 MB) into temporary files.
 */
const BUSINESS_TOTALS_BODY = `SELECT coalesce(json_agg(b ORDER BY b.business_id), '[]'::json) FROM (
  SELECT business_id, ${['requests', 'response_time_ms_sum', 'success_rate_sum', 'tokens_used', 'api_cost_usd',
    'appointments_requested', 'appointments_booked', 'handoffs_error', 'handoffs_complex', 'errors'].join(', ')},
    to_char(first_event_at, ${ISO}) AS first_event_at, to_char(last_event_at, ${ISO}) AS last_event_at
  FROM ${tail('agg_business')} x) b`;

const ALL_TAIL = `tail AS (${tailEventsSql()})`;

const BUSINESS_TOTALS_SQL = `WITH ${ALL_TAIL} SELECT (${BUSINESS_TOTALS_BODY}) AS rows`;

/** `{count, sum, cumulative:[…]}` of the histogram columns `<prefix>_*` of agg_genai. */
const genaiHistogram = (prefix: string, bounds: readonly number[]) =>
  `json_build_object('count', ${prefix}_count, 'sum', ${prefix}_sum, 'cumulative', json_build_array(${bounds.map((le) => `${prefix}_le_${le}`).join(', ')}))`;

/** Everything `/metrics` prints, in one statement: one snapshot of aggregates + tail. */
const METRICS_SQL = `WITH ${ALL_TAIL} SELECT json_build_object(
  'requests', (SELECT coalesce(json_agg(r ORDER BY r.business_id, r.response_type, r.intent), '[]'::json) FROM (
      SELECT business_id, response_type, intent, requests, first_id FROM ${tail('agg_requests')} x) r),
  'businesses', (${BUSINESS_TOTALS_BODY}),
  'models', (SELECT coalesce(json_agg(m ORDER BY m.business_id, m.model_name), '[]'::json) FROM (
      SELECT business_id, model_name, requests, tokens_used, api_cost_usd, first_id, unpriced_tokens FROM ${tail('agg_model')} x) m),
  'genai', (SELECT coalesce(json_agg(g ORDER BY g.business_id, g.model_name, g.operation_name), '[]'::json) FROM (
      SELECT business_id, model_name, operation_name, first_id,
        ${genaiHistogram('duration', GENAI_DURATION_BUCKETS_MS)} AS duration,
        ${genaiHistogram('input', GENAI_TOKEN_BUCKETS)} AS input,
        ${genaiHistogram('output', GENAI_TOKEN_BUCKETS)} AS output
      FROM ${tail('agg_genai')} x) g),
  'latency', (SELECT json_build_object('count', coalesce(sum(count), 0), 'sum_ms', coalesce(sum(sum_ms), 0),
      'cumulative', json_build_array(${PROMETHEUS_BUCKETS_MS.map((le) => `coalesce(sum(le_${le}), 0)`).join(', ')}))
    FROM ${tail('agg_latency')} x),
  'unfolded', (SELECT count(*) FROM tail)
) AS snapshot`;

const inWindow = { stored: 'business_id = $1 AND day >= from_day AND day <= to_day', tail: 'e.day >= from_day AND e.day <= to_day' };

/** $1 business, $2 days. The window is the last $2 UTC days, today included. */
const ANALYTICS_SQL = `WITH bounds AS (
    SELECT (now() AT TIME ZONE 'utc')::date - ($2::int - 1) AS from_day, (now() AT TIME ZONE 'utc')::date AS to_day),
  tail AS (${tailEventsSql('$1')}),
  window_days AS (SELECT d.* FROM bounds CROSS JOIN LATERAL ${tail('daily_business', inWindow)} d)
  SELECT json_build_object(
    'from', to_char(from_day, 'YYYY-MM-DD'), 'to', to_char(to_day, 'YYYY-MM-DD'),
    'totals', (SELECT json_build_object(
        'requests', coalesce(sum(requests), 0), 'response_time_ms_sum', coalesce(sum(response_time_ms_sum), 0),
        'success_rate_sum', coalesce(sum(success_rate_sum), 0), 'tokens_used', coalesce(sum(tokens_used), 0),
        'api_cost_usd', coalesce(sum(api_cost_usd), 0), 'appointments_requested', coalesce(sum(appointments_requested), 0),
        'appointments_booked', coalesce(sum(appointments_booked), 0), 'human_handoffs', coalesce(sum(human_handoffs), 0),
        'errors', coalesce(sum(errors), 0),
        'cost_client_usd', coalesce(sum(cost_client_usd), 0), 'cost_price_table_usd', coalesce(sum(cost_price_table_usd), 0),
        'unpriced_requests', coalesce(sum(unpriced_requests), 0), 'unpriced_tokens', coalesce(sum(unpriced_tokens), 0),
        'conversations', (SELECT count(DISTINCT conversation_key) FROM ${tail('conversation_days', inWindow)} c))
      FROM window_days),
    'latency_buckets', (SELECT coalesce(json_agg(json_build_object('bucket', bucket, 'count', requests) ORDER BY bucket), '[]'::json) FROM (
        SELECT bucket, sum(requests) AS requests FROM ${tail('daily_latency_buckets', inWindow)} l GROUP BY bucket) l),
    'by_intent', (SELECT coalesce(json_agg(i ORDER BY i.requests DESC, i.intent), '[]'::json) FROM (
        SELECT intent, sum(requests) AS requests FROM ${tail('daily_intent', inWindow)} x GROUP BY intent) i),
    'by_model', (SELECT coalesce(json_agg(m ORDER BY m.requests DESC, m.model_name), '[]'::json) FROM (
        SELECT model_name, sum(requests) AS requests, sum(tokens_used) AS tokens_used, sum(api_cost_usd) AS api_cost_usd
        FROM ${tail('daily_model', inWindow)} x GROUP BY model_name) m),
    'daily', (SELECT json_agg(json_build_object('date', to_char(g.day, 'YYYY-MM-DD'),
        'requests', coalesce(d.requests, 0), 'response_time_ms_sum', coalesce(d.response_time_ms_sum, 0),
        'api_cost_usd', coalesce(d.api_cost_usd, 0)) ORDER BY g.day)
      FROM (SELECT generate_series(from_day, to_day, interval '1 day')::date AS day) g
      LEFT JOIN window_days d ON d.day = g.day),
    'unfolded', (SELECT count(*) FROM tail)
  ) AS result FROM bounds`;

/**
 * One fold: takes up to $1 queued events (skipping any another transaction holds) and adds them to
 * every aggregate, in one statement. Dequeue and aggregation commit together or not at all, so an
 * event is folded exactly once even when a folder dies mid-way; callers hold FOLD_LOCK.
 */
const FOLD_SQL = (() => {
  const ctes = [
    `taken AS (DELETE FROM ${FOLD_QUEUE} WHERE (business_id, id) IN (
        SELECT business_id, id FROM ${FOLD_QUEUE} LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id)`,
    `src AS (SELECT e.* FROM taken t CROSS JOIN LATERAL ${eventById('t.id')} e)`,
    ...AGGREGATES.map((table, i) => `agg${i} AS (${upsertSql(table, 'src')})`),
  ];
  return `WITH ${ctes.join(',\n')} SELECT count(*)::int AS folded FROM taken`;
})();

/** The hot statements, as SQL to run directly or as calls to session functions. */
interface Statements {
  insert: string;
  metrics: string;
  totals: string;
  analytics: string;
  fold: string;
}

const DIRECT: Statements = { insert: INSERT_SQL, metrics: METRICS_SQL, totals: BUSINESS_TOTALS_SQL, analytics: ANALYTICS_SQL, fold: FOLD_SQL };

/**
 * PGlite keeps no plan between `query()` calls, and planning these statements in WebAssembly
 * takes 40–100 ms each time; PL/pgSQL caches the plans of the statements in a function body for
 * the session. So an embedded store wraps them in temporary (session-only, never migrated)
 * functions. PostgreSQL needs none: postgres.js prepares statements per connection.
 */
export const SESSION_FUNCTIONS_SQL = `
CREATE OR REPLACE FUNCTION pg_temp.mlops_insert_events(payload jsonb)
  RETURNS TABLE(id bigint, business_id varchar, event_id varchar, created_at text) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN RETURN QUERY ${INSERT_SQL.replace('$1::jsonb', 'payload')}; END $fn$;
CREATE OR REPLACE FUNCTION pg_temp.mlops_metrics_snapshot() RETURNS json LANGUAGE plpgsql AS $fn$
BEGIN RETURN (${METRICS_SQL.replace(/ AS snapshot$/, '')}); END $fn$;
CREATE OR REPLACE FUNCTION pg_temp.mlops_business_totals() RETURNS json LANGUAGE plpgsql AS $fn$
BEGIN RETURN (${BUSINESS_TOTALS_SQL.replace(/ AS rows$/, '')}); END $fn$;
CREATE OR REPLACE FUNCTION pg_temp.mlops_analytics(business text, days int) RETURNS json LANGUAGE plpgsql AS $fn$
BEGIN RETURN (${ANALYTICS_SQL.replace(/\$1/g, 'business').replace(/\$2/g, 'days').replace(/ AS result FROM bounds$/, ' FROM bounds')}); END $fn$;
CREATE OR REPLACE FUNCTION pg_temp.mlops_fold(lim int) RETURNS int LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE folded int;
BEGIN ${FOLD_SQL.replace('$1', 'lim').replace(/ AS folded FROM taken$/, ' INTO folded FROM taken')}; RETURN folded; END $fn$;`;

const SESSION: Statements = {
  insert: 'SELECT * FROM pg_temp.mlops_insert_events($1::jsonb)',
  metrics: 'SELECT pg_temp.mlops_metrics_snapshot() AS snapshot',
  totals: 'SELECT pg_temp.mlops_business_totals() AS rows',
  analytics: 'SELECT pg_temp.mlops_analytics($1, $2) AS result',
  fold: 'SELECT pg_temp.mlops_fold($1) AS folded',
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
  /** Requests waiting for a commit, in events; past it a write is refused at once (a 503). */
  maxQueuedEvents?: number;
  /** When this process folds the events it wrote (see FoldPolicy). */
  fold?: Partial<FoldPolicy>;
  /** Events per purge transaction (default PURGE_CHUNK). */
  purgeChunk?: number;
  /**
   * A statement run before each aggregate read, in the same transaction (session settings a
   * pooler does not let a connection keep, e.g. JIT off).
   */
  readSettings?: string;
}

/**
 * Who folds. Every process folds once it has stored `every` events since its last fold, so the
 * unfolded tail stays near `every` × the number of writing processes under sustained load;
 * servers also fold on a timer (the adapter's), Lambda in its warm-ups.
 */
export interface FoldPolicy {
  every: number;
  /**
   * background: fold after the commit without delaying any answer (a server);
   * inline: fold before the write answers, within `inlineBudgetMs` (Lambda: work left running
   * after an answer would be frozen mid-transaction).
   */
  mode: 'background' | 'inline';
  inlineBudgetMs: number;
  /** Events per fold transaction: bounds each statement's time and the rows it locks. */
  chunk: number;
}

const DEFAULT_FOLD: FoldPolicy = { every: 200, mode: 'background', inlineBudgetMs: 250, chunk: 5000 };

/**
 * Folded queue rows leave dead tuples that every read's tail scan would step over until a vacuum,
 * and so do the lifetime aggregate rows each fold rewrites; autovacuum is tuned for them
 * (migration 0002) but wakes once a minute at best, and PGlite has none. So a fold loop that may
 * take its time vacuums them itself past this many folded events. Truncation stays on: it takes
 * the queue's lock only when no writer asks for it (PostgreSQL gives it up within ~20 ms).
 */
const VACUUM_QUEUE_AFTER = 20_000;

const VACUUM_SQL = [FOLD_QUEUE, ...AGGREGATES.filter((t) => t.scope === 'lifetime').map((t) => `${SCHEMA}.${t.name}`)]
  .map((table) => `VACUUM (ANALYZE) ${table};`)
  .join('\n');

/** Events per purge transaction: each DELETE stays far inside any statement timeout. */
const PURGE_CHUNK = 5000;
/** Conversation-day keys are kept this long (the longest analytics window), past raw-event retention. */
const CONVERSATION_DAYS_KEPT = 366;

const keyOf = (businessId: string, eventId: string) => `${businessId}\u0000${eventId}`;

export class SqlStore implements Store {
  readonly kind: Store['kind'];
  readonly description: string;
  readonly #db: SqlExecutor;
  readonly #batcher: WriteBatcher<NewEvent, InsertOutcome>;
  readonly #sql: Statements;
  readonly #operationTimeoutMs: number | undefined;
  readonly #fold: FoldPolicy;
  readonly #purgeChunk: number;
  readonly #readSettings: string | undefined;
  /** Events this process stored since it last folded. */
  #sinceFold = 0;
  /** The fold loop of this process, when one runs: callers share it. */
  #folding: Promise<FoldReport> | undefined;
  /** Queue rows this process deleted since it last vacuumed the queue. */
  #foldedSinceVacuum = 0;
  readonly #foldStats = { folds: 0, folded: 0, busy: 0, failures: 0 };

  constructor(db: SqlExecutor, options: SqlStoreOptions) {
    this.#db = db;
    this.#operationTimeoutMs = options.operationTimeoutMs;
    this.#fold = { ...DEFAULT_FOLD, ...options.fold };
    this.#purgeChunk = options.purgeChunk ?? PURGE_CHUNK;
    this.#readSettings = options.readSettings;
    this.#sql = options.sessionFunctions ? SESSION : DIRECT;
    this.kind = options.kind;
    this.description = options.description;
    this.#batcher = new WriteBatcher((events) => this.#insertNow(events), {
      maxItems: options.maxEventsPerCommit ?? 1000,
      maxConcurrent: options.maxConcurrentCommits,
      retryAlone: (error) => !isUnavailableError(error),
      maxQueuedItems: options.maxQueuedEvents ?? 10_000,
    });
  }

  get writeStats(): WriteStats {
    return { ...this.#batcher.stats, pending: this.#batcher.pending, fold: { ...this.#foldStats } };
  }

  async migrate(): Promise<{ applied: string[] }> {
    return this.#guard(() =>
      this.#db.transaction(async (tx) => {
        // Transaction-scoped lock: a second instance waits here, then finds the work done.
        await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
        // A migration may rewrite a large table (0002): no statement timeout for this transaction.
        await tx.query(`SELECT set_config('statement_timeout', '0', true)`);
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

  /**
   * A write still queued when its deadline passes is taken out of the queue and never committed
   * (WriteNotStartedError); one whose commit had started may still commit
   * (WriteOutcomeUnknownError): a retry with the same event_id is then a duplicate.
   */
  async insertEvents(events: NewEvent[]): Promise<InsertOutcome[]> {
    if (events.length === 0) return [];
    const deadline = this.#operationTimeoutMs;
    const outcomes = await this.#batcher.submit(events, deadline ? { deadlineMs: deadline } : {});
    this.#sinceFold += outcomes.reduce((n, o) => n + (o.duplicate ? 0 : 1), 0);
    // A failed fold is retried by the next trigger; the events are stored and read from the tail.
    await this.#foldIfDue(this.#sinceFold);
    return outcomes;
  }

  /**
   * Moves queued events into the aggregates, a chunk per transaction, until the queue is empty,
   * `budgetMs` has passed, or another process holds the fold lock (it is folding the same queue).
   * Concurrent calls in one process share one loop. Never blocks writers.
   */
  foldPending(options: FoldOptions = {}): Promise<FoldReport> {
    this.#folding ??= this.#foldLoop(options).finally(() => {
      this.#folding = undefined;
    });
    return this.#folding;
  }

  async #foldLoop({ budgetMs, maxChunks }: FoldOptions): Promise<FoldReport> {
    const started = performance.now();
    this.#sinceFold = 0;
    const report: FoldReport = { folded: 0, chunks: 0, busy: false, drained: false, duration_ms: 0 };
    try {
      for (;;) {
        const folded = await this.#foldChunk(this.#fold.chunk, budgetMs === undefined ? 30_000 : this.#operationTimeoutMs);
        if (folded === undefined) {
          report.busy = true;
          this.#foldStats.busy++;
          break;
        }
        report.folded += folded;
        report.chunks++;
        this.#foldStats.folds++;
        this.#foldStats.folded += folded;
        this.#foldedSinceVacuum += folded;
        if (folded < this.#fold.chunk) {
          report.drained = true;
          break;
        }
        if (maxChunks !== undefined && report.chunks >= maxChunks) break;
        if (budgetMs !== undefined && performance.now() - started >= budgetMs) break;
        // Also between chunks: each chunk's scan steps over the dead rows of the ones before it.
        await this.#vacuumQueueIfDue(budgetMs);
      }
      await this.#vacuumQueueIfDue(budgetMs);
    } catch (error) {
      this.#foldStats.failures++;
      throw error;
    }
    report.duration_ms = Math.round(performance.now() - started);
    return report;
  }

  /** Not in a request's inline fold: a vacuum is a few ms per 10k dead rows, but not budgeted. */
  async #vacuumQueueIfDue(budgetMs: number | undefined): Promise<void> {
    if (this.#foldedSinceVacuum < VACUUM_QUEUE_AFTER || (budgetMs !== undefined && budgetMs < 1000)) return;
    this.#foldedSinceVacuum = 0;
    // Every fold rewrites the lifetime rows it touches, so those small tables bloat as fast as the
    // queue, and /metrics reads them whole. A failed vacuum is only a missed clean-up.
    await this.#deadline(this.#guard(() => this.#db.exec(VACUUM_SQL)), 60_000).catch(() => {
      this.#foldStats.failures++;
    });
  }

  /** One fold transaction; undefined when another transaction holds the fold lock. */
  async #foldChunk(limit: number, deadlineMs: number | undefined): Promise<number | undefined> {
    return this.#deadline(this.#guard(() =>
      this.#db.transaction(async (tx) => {
        // A holder frozen mid-fold (a Lambda environment) must not keep the lock for long.
        const [lock] = await tx.query<{ locked: boolean }>(
          `SELECT set_config('idle_in_transaction_session_timeout', '10000', true) AS t, pg_try_advisory_xact_lock(${FOLD_LOCK}) AS locked`,
        );
        if (!lock?.locked) return undefined;
        const [row] = await tx.query<{ folded: number }>(this.#sql.fold, [limit]);
        return Number(row?.folded ?? 0);
      }),
    ), deadlineMs);
  }

  /** An aggregate read, after `readSettings` in one transaction when there are any. */
  #read<T>(text: string, params?: unknown[]): Promise<T[]> {
    const settings = this.#readSettings;
    if (!settings) return this.#db.query<T>(text, params);
    return this.#db.transaction(async (tx) => {
      await tx.query(settings);
      return tx.query<T>(text, params);
    });
  }

  /** Events stored and not yet folded (the tail every read adds to the aggregates). */
  async unfoldedCount(): Promise<number> {
    const [row] = await this.#deadline(this.#guard(() => this.#db.query<{ n: number }>(`SELECT count(*)::float8 AS n FROM ${FOLD_QUEUE}`)));
    return Number(row?.n ?? 0);
  }

  /** Gives up waiting after `operationTimeoutMs` (a 503); for reads and maintenance. */
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
    ), true);
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
    const [row] = await this.#deadline(
      this.#guard(() => this.#read<{ snapshot: (MetricsSnapshot & { unfolded: number }) | string }>(this.#sql.metrics)),
    );
    const { unfolded, ...snapshot } = parseJson(row!.snapshot);
    await this.#foldIfDue(Number(unfolded));
    return snapshot;
  }

  /**
   * Starts a fold once `every` events are waiting: after this process's own writes, or when a read
   * met a tail that long (a quiet writer left it, or the timer is off), so later reads are cheap
   * again. Background mode does not wait for it; inline mode waits, within the fold budget.
   */
  async #foldIfDue(unfolded: number): Promise<void> {
    if (unfolded < this.#fold.every) return;
    if (this.#fold.mode === 'inline') await this.foldPending({ budgetMs: this.#fold.inlineBudgetMs }).catch(() => undefined);
    else void this.foldPending().catch(() => undefined);
  }

  async businessTotals(): Promise<BusinessTotals[]> {
    const [row] = await this.#deadline(this.#guard(() => this.#read<{ rows: BusinessTotals[] | string }>(this.#sql.totals)));
    return parseJson(row!.rows);
  }

  async analyticsWindow(businessId: string, days: number): Promise<AnalyticsWindow> {
    const [row] = await this.#deadline(
      this.#guard(() =>
        this.#read<{ result: Omit<AnalyticsWindow, 'business_id' | 'days'> | string }>(this.#sql.analytics, [businessId, days]),
      true),
    );
    const result = parseJson(row!.result);
    await this.#foldIfDue(Number(result.unfolded ?? 0));
    const { conversations, ...totals } = result.totals as AnalyticsWindow['totals'];
    return {
      business_id: businessId,
      days,
      ...result,
      totals: { ...totals, conversations },
      latency_buckets: (result.latency_buckets ?? []).map((b) => ({ bucket: Number(b.bucket), count: Number(b.count) })),
    };
  }

  /**
   * Rebuilds the aggregates from the folded events. Inserts never wait for it: it holds only the
   * fold lock (folds pause; the tail keeps growing and reads stay exact), and the folded events
   * cannot change while it is held, so the rebuild counts each exactly once.
   */
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
            reason: `Aggregates are maintained continuously; the last full refresh was ${Math.round(last.age_ms / 1000)} s ago ` +
              `(at most one per ${Math.round(minInterval / 1000)} s; add ?force=true to run one now)`,
            last_refresh_at: lastAt,
          };
        }
        // Waits for a fold in progress (one chunk); writers are never blocked.
        await tx.query(`SELECT pg_advisory_xact_lock(${FOLD_LOCK})`);
        const watermark = await readWatermark(tx);
        const [drift] = await tx.query<{ rows: RefreshReport['drift'] | string; events: number; businesses: number; unfolded: number }>(
          `WITH folded AS (SELECT business_id, count(*) AS requests FROM ${FOLDED_EVENTS} f GROUP BY 1)
           SELECT (SELECT coalesce(sum(requests), 0)::float8 FROM folded) AS events,
            (SELECT count(*)::float8 FROM folded) AS businesses,
            (SELECT count(*)::float8 FROM ${FOLD_QUEUE}) AS unfolded,
            (SELECT coalesce(json_agg(x ORDER BY x.business_id), '[]'::json) FROM (
              SELECT coalesce(a.business_id, s.business_id) AS business_id, coalesce(a.requests, 0) AS before,
                coalesce(s.requests, 0) AS after
              FROM (SELECT business_id, requests FROM ${SCHEMA}.agg_business WHERE NOT archived) a
              FULL JOIN folded s ON a.business_id = s.business_id
              WHERE coalesce(a.requests, 0) <> coalesce(s.requests, 0)) x) AS rows`,
        );
        const before = await countRows(tx);
        const sinceWatermark = watermark ? `e.created_at >= '${watermark}'::date` : undefined;
        for (const table of LIFETIME) {
          await tx.query(`DELETE FROM ${SCHEMA}.${table.name} WHERE NOT archived`);
          await tx.query(upsertSql(table, FOLDED_EVENTS));
        }
        for (const table of DAILY) {
          await tx.query(`DELETE FROM ${SCHEMA}.${table.name}${watermark ? ` WHERE day >= '${watermark}'::date` : ''}`);
          await tx.query(upsertSql(table, FOLDED_EVENTS, sinceWatermark ? { where: sinceWatermark } : {}));
        }
        const after = await countRows(tx);
        await tx.query(
          `INSERT INTO ${SCHEMA}.service_state (key, value) VALUES ('last_refresh_at', to_char(now() AT TIME ZONE 'utc', ${ISO}))
           ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        );
        const report: RefreshReport = {
          events_scanned: Number(drift!.events),
          businesses: Number(drift!.businesses),
          unfolded_events: Number(drift!.unfolded),
          tables: AGGREGATES.map((t) => ({ table: t.name, rows_before: before[t.name] ?? 0, rows_after: after[t.name] ?? 0 })),
          drift: parseJson(drift!.rows),
          duration_ms: Math.round(performance.now() - started),
        };
        return { status: 'done', report };
      }),
    );
  }

  /**
   * Deletes folded raw events created before `cutoffDay`, a chunk per transaction (each within the
   * statement timeout however large the backlog), moving their share of every lifetime total to
   * the archived rows so totals stay monotonic. Daily rollups keep the purged days; conversation
   * keys are kept for the longest analytics window, so conversation counts stay right past
   * retention. Events still queued are folded first.
   */
  async purgeBefore(cutoffDay: string): Promise<PurgeReport> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(cutoffDay)) throw new Error(`cutoffDay must be YYYY-MM-DD, got ${cutoffDay}`);
    await this.foldPending();
    const ctes = [
      `purged AS (DELETE FROM ${SCHEMA}.ai_metrics WHERE id IN (
          SELECT m.id FROM ${FOLDED_EVENTS} m WHERE m.created_at < $1::date ORDER BY m.created_at LIMIT $2) RETURNING *)`,
      ...LIFETIME.flatMap((table, i) => [
        `live${i} AS (${upsertSql(table, 'purged', { sign: -1 })})`,
        `arch${i} AS (${upsertSql(table, 'purged', { archived: true })})`,
      ]),
    ];
    const purgeChunk = `WITH ${ctes.join(',\n')} SELECT count(*)::float8 AS deleted FROM purged`;
    let deleted = 0;
    let chunks = 0;
    for (;;) {
      const n = await this.#guard(() =>
        this.#db.transaction(async (tx) => {
          // The fold lock keeps the set of folded events still while a chunk moves its totals.
          await tx.query(`SELECT pg_advisory_xact_lock(${FOLD_LOCK})`);
          // The watermark commits with the first deletion: a refresh between chunks (or after a
          // purge that died half-way) must keep the daily rows of the days being purged.
          await tx.query(
            `INSERT INTO ${SCHEMA}.service_state (key, value) VALUES ('purged_before', $1)
             ON CONFLICT (key) DO UPDATE SET value = greatest(service_state.value, excluded.value)`,
            [cutoffDay],
          );
          const [row] = await tx.query<{ deleted: number }>(purgeChunk, [cutoffDay, this.#purgeChunk]);
          return Number(row!.deleted);
        }),
      );
      deleted += n;
      chunks++;
      if (n < this.#purgeChunk) break;
    }
    await this.#guard(() =>
      this.#db.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(${FOLD_LOCK})`);
        await tx.query(`DELETE FROM ${SCHEMA}.conversation_days WHERE day < $1::date - ${CONVERSATION_DAYS_KEPT}`, [cutoffDay]);
      }),
    );
    return { cutoff_day: cutoffDay, events_deleted: deleted, chunks };
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

  /**
   * Turns driver errors that mean "database unreachable" into `StoreUnavailableError`. With
   * `requestData`, the statement carries a request's values, and a data exception is theirs
   * (`StoreDataError`); elsewhere it is the service's own bug and stays a 500.
   */
  async #guard<T>(fn: () => Promise<T>, requestData = false): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (requestData && isDataError(error)) {
        throw new StoreDataError(`The database refused a value of the request: ${(error as Error).message}`, code as string, { cause: error });
      }
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
