/**
 * Priced tokens and the GenAI series (contract: "Prices", "Prometheus series").
 *
 * - `ai_metrics` gains `cost_source` (`client`, `price_table`, `unpriced`), `operation_name` (the
 *   GenAI operation: `chat` unless OTLP says otherwise) and `cached_input_tokens`. Every event
 *   stored before this migration keeps the cost it was stored with, as `client`: the service did
 *   not price events then.
 * - `agg_requests` and `agg_model` gain `first_id` (when a label value first appeared, for the
 *   label cap of `/metrics`), backfilled from the stored events; a key whose events retention has
 *   already removed keeps NULL, read as older than any stored event.
 * - `agg_model` gains `unpriced_tokens`, `daily_business` the cost by source; both start at 0 (no
 *   event was unpriced before), the client share of the daily cost is the whole cost.
 * - `agg_genai` (new): the GenAI client histograms per business, model and operation, built from
 *   the folded events still stored (the fold queue's events are added when they are folded).
 *   Events retention removed before this migration are not in it; its totals start here.
 *
 * Frozen once released: later changes go in a new migration. (The agg_genai columns and the
 * backfill are generated from the definition in aggregates.ts as it is at this version.)
 */
import { aggregateTable, FOLDED_EVENTS, upsertSql } from '../aggregates.ts';

const genai = aggregateTable('agg_genai');
const genaiColumns = genai.values
  .map((v) => `  ${v.name} ${v.name === 'first_id' ? 'BIGINT' : 'BIGINT NOT NULL'}`)
  .join(',\n');

export const sql = `
ALTER TABLE mlops.ai_metrics
  ADD COLUMN cost_source VARCHAR(12) NOT NULL DEFAULT 'client'
    CHECK (cost_source IN ('client', 'price_table', 'unpriced')),
  ADD COLUMN operation_name VARCHAR(50) NOT NULL DEFAULT 'chat',
  ADD COLUMN cached_input_tokens INTEGER;

ALTER TABLE mlops.agg_requests ADD COLUMN first_id BIGINT;
ALTER TABLE mlops.agg_model ADD COLUMN first_id BIGINT, ADD COLUMN unpriced_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mlops.daily_business
  ADD COLUMN cost_client_usd NUMERIC NOT NULL DEFAULT 0,
  ADD COLUMN cost_price_table_usd NUMERIC NOT NULL DEFAULT 0,
  ADD COLUMN unpriced_requests BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN unpriced_tokens BIGINT NOT NULL DEFAULT 0;
UPDATE mlops.daily_business SET cost_client_usd = api_cost_usd;

UPDATE mlops.agg_requests a SET first_id = f.first_id
  FROM (SELECT business_id, response_type, intent_detected, min(id) AS first_id FROM mlops.ai_metrics GROUP BY 1, 2, 3) f
  WHERE a.business_id = f.business_id AND a.response_type = f.response_type AND a.intent = f.intent_detected;
UPDATE mlops.agg_model a SET first_id = f.first_id
  FROM (SELECT business_id, model_name, min(id) AS first_id FROM mlops.ai_metrics GROUP BY 1, 2) f
  WHERE a.business_id = f.business_id AND a.model_name = f.model_name;

CREATE TABLE mlops.agg_genai (
  archived BOOLEAN NOT NULL,
  business_id VARCHAR(255) NOT NULL,
  model_name VARCHAR(100) NOT NULL,
  operation_name VARCHAR(50) NOT NULL,
${genaiColumns},
  PRIMARY KEY (archived, business_id, model_name, operation_name)
);
ALTER TABLE mlops.agg_genai SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0);
${upsertSql(genai, FOLDED_EVENTS, { archived: false })};
`;
