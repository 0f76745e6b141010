/**
 * The aggregate tables and the one generator of every statement that maintains or reads them.
 *
 * Each table is a GROUP BY over event rows. The same definition is applied to every source: the
 * events a fold takes off the queue, all folded events (refresh), the rows retention deletes
 * (purge, moved from live to archived), and the unfolded tail a read adds (`withTailSql`).
 * Generating all of them from one definition is what keeps them from drifting apart.
 */
import { GENAI_DURATION_BUCKETS_MS, GENAI_TOKEN_BUCKETS, latencyBucketSql, PROMETHEUS_BUCKETS_MS } from './latency-buckets.ts';

type Combine = 'sum' | 'min' | 'max';

interface ValueColumn {
  name: string;
  /** Aggregate expression over the source rows `e`. */
  expr: string;
  combine: Combine;
}

export interface AggregateTable {
  name: string;
  /**
   * lifetime: keyed by `archived` too, read by `/metrics` and summaries;
   * daily: keyed by UTC day, read by windowed analytics;
   * set: distinct keys only (no values).
   */
  scope: 'lifetime' | 'daily' | 'set';
  keys: { name: string; expr: string }[];
  values: ValueColumn[];
  /** Rows without a key value are skipped (set tables). */
  where?: string;
}

// coalesce: a key-less aggregate over zero rows yields one row whose sums are NULL.
const sum = (name: string, expr: string): ValueColumn => ({ name, expr: `coalesce(sum(${expr}), 0)`, combine: 'sum' });
const countIf = (name: string, cond: string): ValueColumn => ({
  name,
  expr: `count(*) FILTER (WHERE ${cond})`,
  combine: 'sum',
});
const count = (name: string): ValueColumn => ({ name, expr: 'count(*)', combine: 'sum' });

/**
 * The id of the first event with a key: the order in which a business's label values appeared,
 * which the label cap of `/metrics` keeps (the first N values keep their own series). Ids only grow,
 * so it never changes once set; a purge leaves it (min columns are not subtracted).
 */
const firstId: ValueColumn = { name: 'first_id', expr: 'min(e.id)', combine: 'min' };

/** Histogram columns `<prefix>_le_<bound>` counting the rows whose `expr` is at most each bound. */
const histogram = (prefix: string, expr: string, bounds: readonly number[], where = 'true'): ValueColumn[] => [
  countIf(`${prefix}_count`, where),
  sum(`${prefix}_sum`, `CASE WHEN ${where} THEN ${expr} ELSE 0 END`),
  ...bounds.map((le) => countIf(`${prefix}_le_${le}`, `${where} AND ${expr} <= ${le}`)),
];

const businessKey = { name: 'business_id', expr: 'e.business_id' };

/** The per-business sums kept both for all time and per day. */
const businessSums: ValueColumn[] = [
  count('requests'),
  sum('response_time_ms_sum', 'e.response_time_ms'),
  sum('success_rate_sum', 'e.success_rate'),
  sum('tokens_used', 'e.tokens_used'),
  sum('api_cost_usd', 'e.api_cost_usd'),
  countIf('appointments_requested', 'e.appointment_requested'),
  countIf('appointments_booked', 'e.appointment_booked'),
];
const dayKey = { name: 'day', expr: 'e.day' };

export const AGGREGATES: readonly AggregateTable[] = [
  {
    name: 'agg_requests',
    scope: 'lifetime',
    keys: [businessKey, { name: 'response_type', expr: 'e.response_type' }, { name: 'intent', expr: 'e.intent_detected' }],
    values: [count('requests'), firstId],
  },
  {
    name: 'agg_business',
    scope: 'lifetime',
    keys: [businessKey],
    values: [
      ...businessSums,
      countIf('handoffs_error', "e.human_handoff_requested AND e.response_type = 'error'"),
      countIf('handoffs_complex', "e.human_handoff_requested AND e.response_type <> 'error'"),
      countIf('errors', "e.response_type = 'error'"),
      { name: 'first_event_at', expr: 'min(e.created_at)', combine: 'min' },
      { name: 'last_event_at', expr: 'max(e.created_at)', combine: 'max' },
    ],
  },
  {
    name: 'agg_model',
    scope: 'lifetime',
    keys: [businessKey, { name: 'model_name', expr: 'e.model_name' }],
    values: [
      count('requests'),
      sum('tokens_used', 'e.tokens_used'),
      sum('api_cost_usd', 'e.api_cost_usd'),
      firstId,
      sum('unpriced_tokens', "CASE WHEN e.cost_source = 'unpriced' THEN e.tokens_used ELSE 0 END"),
    ],
  },
  {
    // The OpenTelemetry GenAI client histograms: duration of every call, input and output tokens of
    // the calls that reported them (a call without a count is not observed as 0 tokens).
    name: 'agg_genai',
    scope: 'lifetime',
    keys: [businessKey, { name: 'model_name', expr: 'e.model_name' }, { name: 'operation_name', expr: 'e.operation_name' }],
    values: [
      firstId,
      ...histogram('duration', 'e.response_time_ms', GENAI_DURATION_BUCKETS_MS),
      ...histogram('input', 'e.prompt_tokens', GENAI_TOKEN_BUCKETS, 'e.prompt_tokens IS NOT NULL'),
      ...histogram('output', 'e.completion_tokens', GENAI_TOKEN_BUCKETS, 'e.completion_tokens IS NOT NULL'),
    ],
  },
  {
    name: 'agg_latency',
    scope: 'lifetime',
    keys: [],
    values: [
      count('count'),
      sum('sum_ms', 'e.response_time_ms'),
      ...PROMETHEUS_BUCKETS_MS.map((le) => countIf(`le_${le}`, `e.response_time_ms <= ${le}`)),
    ],
  },
  {
    name: 'daily_business',
    scope: 'daily',
    keys: [businessKey, dayKey],
    values: [
      ...businessSums,
      countIf('human_handoffs', 'e.human_handoff_requested'),
      countIf('errors', "e.response_type = 'error'"),
      // Cost by where it came from; unpriced events have no cost, only tokens nobody priced.
      sum('cost_client_usd', "CASE WHEN e.cost_source = 'client' THEN e.api_cost_usd ELSE 0 END"),
      sum('cost_price_table_usd', "CASE WHEN e.cost_source = 'price_table' THEN e.api_cost_usd ELSE 0 END"),
      countIf('unpriced_requests', "e.cost_source = 'unpriced'"),
      sum('unpriced_tokens', "CASE WHEN e.cost_source = 'unpriced' THEN e.tokens_used ELSE 0 END"),
    ],
  },
  {
    // Sparse log-spaced latency histogram (see latency-buckets.ts): the analytics percentiles.
    name: 'daily_latency_buckets',
    scope: 'daily',
    keys: [businessKey, dayKey, { name: 'bucket', expr: 'e.latency_bucket' }],
    values: [count('requests')],
  },
  {
    name: 'daily_intent',
    scope: 'daily',
    keys: [businessKey, dayKey, { name: 'intent', expr: 'e.intent_detected' }],
    values: [count('requests')],
  },
  {
    name: 'daily_model',
    scope: 'daily',
    keys: [businessKey, dayKey, { name: 'model_name', expr: 'e.model_name' }],
    values: [count('requests'), sum('tokens_used', 'e.tokens_used'), sum('api_cost_usd', 'e.api_cost_usd')],
  },
  {
    name: 'conversation_days',
    scope: 'set',
    keys: [businessKey, dayKey, { name: 'conversation_key', expr: 'e.conversation_key' }],
    values: [],
    where: 'e.conversation_key IS NOT NULL',
  },
];

export const SCHEMA = 'mlops';

/**
 * Wraps a source of `ai_metrics`-shaped rows with the derived columns the definitions use.
 * The conversation key falls back to the session when a client sends no conversation id.
 */
export function derivedSource(source: string): string {
  return `(SELECT s.*, s.created_at::date AS day,
      ${latencyBucketSql('s.response_time_ms')} AS latency_bucket,
      coalesce(s.conversation_id, nullif(s.session_id, '')) AS conversation_key
    FROM ${source} s) e`;
}

export interface UpsertOptions {
  /** For lifetime tables: write the archived (true) or live (false) rows. */
  archived?: boolean;
  /** -1 subtracts (purge from live). min/max columns are left untouched then. */
  sign?: 1 | -1;
  /** Extra filter on the source rows. */
  where?: string;
}

/**
 * `INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE` adding the source's aggregates to a table.
 * Rows are grouped (one row per key, which ON CONFLICT requires) and ordered by key, so
 * concurrent writers take row locks in the same order and cannot deadlock each other.
 */
export function upsertSql(table: AggregateTable, source: string, options: UpsertOptions = {}): string {
  const sign = options.sign ?? 1;
  const keyCols = table.keys.map((k) => k.name);
  const keyExprs = table.keys.map((k) => k.expr);
  if (table.scope === 'lifetime') {
    keyCols.unshift('archived');
    keyExprs.unshift(options.archived ? 'true' : 'false');
  }
  const valueExprs = table.values.map((v) => {
    if (v.combine !== 'sum') return sign === 1 ? v.expr : 'NULL';
    return sign === 1 ? v.expr : `-(${v.expr})`;
  });
  const conditions = [table.where, options.where].filter(Boolean);
  const where = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
  // GROUP BY positions of real key expressions only; a constant `archived` needs no grouping.
  const groupPositions = table.keys.map((_, i) => i + 1 + (table.scope === 'lifetime' ? 1 : 0));
  const positions = groupPositions.join(', ');
  const grouping = table.scope === 'set' ? `ORDER BY ${positions}` : positions ? `GROUP BY ${positions} ORDER BY ${positions}` : '';
  const select = table.scope === 'set' ? 'SELECT DISTINCT' : 'SELECT';
  const head = `INSERT INTO ${SCHEMA}.${table.name} (${[...keyCols, ...table.values.map((v) => v.name)].join(', ')})
    ${select} ${[...keyExprs, ...valueExprs].join(', ')}
    FROM ${derivedSource(source)} ${where} ${grouping}`;
  if (table.values.length === 0) return `${head} ON CONFLICT DO NOTHING`;
  const updates = table.values.map((v) => {
    const current = `${table.name}.${v.name}`;
    if (v.combine === 'sum') return `${v.name} = ${current} + excluded.${v.name}`;
    return `${v.name} = ${v.combine === 'min' ? 'least' : 'greatest'}(${current}, excluded.${v.name})`;
  });
  return `${head} ON CONFLICT (${keyCols.join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
}

/**
 * Events stored but not yet folded into the aggregates. Ingest appends each new event here (its
 * key only) in the same statement that stores it; a fold deletes queue rows and adds their events
 * to the aggregates in one transaction, so every event is counted by exactly one of the two.
 */
export const FOLD_QUEUE = `${SCHEMA}.fold_queue`;

/** The not-yet-folded events, optionally of one business (`businessParam` is a SQL expression). */
export function tailEventsSql(businessParam?: string): string {
  return `SELECT e.* FROM ${FOLD_QUEUE} q CROSS JOIN LATERAL ${eventById('q.id')} e${
    businessParam ? ` WHERE q.business_id = ${businessParam}` : ''}`;
}

/**
 * The event with id `idExpr`, as a LATERAL subquery the planner may not flatten (OFFSET 0): one
 * primary-key lookup per queued row. A queue's statistics swing between empty and large faster
 * than ANALYZE follows them; planned as a hash join, a tail of 0 rows was read by scanning every
 * stored event (0.7 s at a million).
 */
export function eventById(idExpr: string): string {
  return `(SELECT * FROM ${SCHEMA}.ai_metrics m WHERE m.id = ${idExpr} OFFSET 0)`;
}

/** The events already folded: what a rebuild of the aggregates must count. */
export const FOLDED_EVENTS = `(SELECT m.* FROM ${SCHEMA}.ai_metrics m
  WHERE NOT EXISTS (SELECT 1 FROM ${FOLD_QUEUE} q WHERE q.business_id = m.business_id AND q.id = m.id))`;

export interface WithTailFilter {
  /** Condition on the stored aggregate rows (their column names). */
  stored?: string;
  /** Condition on the tail's derived event rows `e`. */
  tail?: string;
}

/**
 * A table's rows as a reader must see them: the stored aggregates plus the same aggregates over
 * the tail (a CTE or table named `tail`), merged per key. Read in one statement, this is exact
 * whatever folds commit meanwhile: a snapshot sees each event either in the queue or folded.
 * Lifetime tables' `archived` rows are merged with the live ones (readers sum both).
 */
export function withTailSql(table: AggregateTable, tail: string, filter: WithTailFilter = {}): string {
  const keys = table.keys.map((k) => k.name);
  const stored = `SELECT ${[...keys, ...table.values.map((v) => v.name)].join(', ')} FROM ${SCHEMA}.${table.name}${
    filter.stored ? ` WHERE ${filter.stored}` : ''}`;
  const conditions = [table.where, filter.tail].filter(Boolean);
  const where = conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
  const positions = keys.map((_, i) => i + 1).join(', ');
  const fromTail = `SELECT ${table.scope === 'set' ? 'DISTINCT ' : ''}${[
    ...table.keys.map((k) => `${k.expr} AS ${k.name}`),
    ...table.values.map((v) => `${v.expr} AS ${v.name}`),
  ].join(', ')} FROM ${derivedSource(tail)}${where}${table.scope !== 'set' && positions ? ` GROUP BY ${positions}` : ''}`;
  if (table.scope === 'set') return `(SELECT DISTINCT * FROM (${stored} UNION ALL ${fromTail}) u)`;
  const merged = table.values.map((v) => `${v.combine}(u.${v.name}) AS ${v.name}`);
  return `(SELECT ${[...keys.map((k) => `u.${k}`), ...merged].join(', ')} FROM (${stored} UNION ALL ${fromTail}) u${
    positions ? ` GROUP BY ${positions}` : ''})`;
}

export function aggregateTable(name: string): AggregateTable {
  const table = AGGREGATES.find((t) => t.name === name);
  if (!table) throw new Error(`no aggregate table ${name}`);
  return table;
}
