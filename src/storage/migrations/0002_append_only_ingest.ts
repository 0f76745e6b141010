/**
 * Append-only ingest (see sql-store.ts): a write stores its events and queues their keys in
 * `fold_queue`; folds move queued events into the aggregates later, so no write updates a row
 * another write may update.
 *
 * - `ai_metrics.id` becomes BIGINT (a 32-bit SERIAL runs out in weeks at a thousand events a
 *   second, duplicates and rollbacks burning values too). This rewrites the table once.
 * - Every event stored before this migration was already added to the aggregates by its own
 *   insert, so the queue starts empty.
 * - The per-day latency histogram becomes sparse and log-spaced (2 % relative accuracy, see
 *   latency-buckets.ts): rebuilt from the raw events still stored; for days whose raw events
 *   retention already removed, each old bucket's count moves to the new bucket of the old
 *   bucket's midpoint (those days keep the old ladder's accuracy).
 *
 * Frozen once released: later changes go in a new migration.
 */
import { latencyBucketSql } from '../latency-buckets.ts';

/** The ladder of 0001's `daily_latency` (bucket i holds [t(i-1), t(i))), for the conversion only. */
const OLD_THRESHOLDS = [
  10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 120, 140, 160, 180, 200, 250, 300, 350, 400, 450, 500,
  600, 700, 800, 900, 1000, 1200, 1400, 1600, 1800, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 6000,
  7000, 8000, 9000, 10000, 12500, 15000, 20000, 30000, 60000,
];
const oldBuckets = OLD_THRESHOLDS.map((upper, i) => {
  const lower = i === 0 ? 0 : OLD_THRESHOLDS[i - 1]!;
  return `(l.b${i}, ${Math.round((lower + upper) / 2)})`;
});
oldBuckets.push(`(l.b${OLD_THRESHOLDS.length}, ${OLD_THRESHOLDS[OLD_THRESHOLDS.length - 1]})`);

export const sql = `
ALTER TABLE mlops.ai_metrics ALTER COLUMN id TYPE BIGINT;
ALTER SEQUENCE mlops.ai_metrics_id_seq AS BIGINT;

CREATE TABLE mlops.fold_queue (
  business_id VARCHAR(255) NOT NULL,
  id BIGINT NOT NULL,
  PRIMARY KEY (business_id, id)
);
-- A queue: rows live seconds, dead tuples pile up at the rate of writes; the lifetime aggregates
-- are small but every fold rewrites their touched rows. Vacuum them after 10k dead rows whatever
-- their size, unthrottled (autovacuum_vacuum_insert_*: PostgreSQL 13 or later).
ALTER TABLE mlops.fold_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
  autovacuum_vacuum_cost_delay = 0, autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000,
  autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000);
ALTER TABLE mlops.agg_requests SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE mlops.agg_business SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE mlops.agg_model SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE mlops.agg_latency SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);

CREATE TABLE mlops.daily_latency_buckets (
  business_id VARCHAR(255) NOT NULL,
  day DATE NOT NULL,
  bucket SMALLINT NOT NULL,
  requests BIGINT NOT NULL,
  PRIMARY KEY (business_id, day, bucket)
);

INSERT INTO mlops.daily_latency_buckets (business_id, day, bucket, requests)
  SELECT business_id, created_at::date, ${latencyBucketSql('response_time_ms')}, count(*)
  FROM mlops.ai_metrics
  -- Days before the watermark are converted from the old ladder below (raw events imported there
  -- after a purge were already in the old ladder too).
  WHERE created_at >= coalesce((SELECT value::date FROM mlops.service_state WHERE key = 'purged_before'), '-infinity'::date)
  GROUP BY 1, 2, 3;

INSERT INTO mlops.daily_latency_buckets (business_id, day, bucket, requests)
  SELECT l.business_id, l.day, ${latencyBucketSql('v.mid')}, sum(v.n)
  FROM mlops.daily_latency l
  CROSS JOIN LATERAL (VALUES ${oldBuckets.join(', ')}) AS v(n, mid)
  WHERE v.n > 0
    -- retention purges whole days before this watermark: the days with no raw events left
    AND l.day < coalesce((SELECT value::date FROM mlops.service_state WHERE key = 'purged_before'), '-infinity'::date)
  GROUP BY 1, 2, 3
  ON CONFLICT (business_id, day, bucket) DO UPDATE SET requests = daily_latency_buckets.requests + excluded.requests;

DROP TABLE mlops.daily_latency;
`;
