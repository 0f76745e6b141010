/**
 * Initial schema. Everything lives in the `mlops` schema so the service can share a database with
 * the Next.js app, whose own `public.ai_metrics` table has the same name and columns.
 *
 * `ai_metrics` keeps every column of the app's table with the same types, plus `event_id`
 * (idempotency) and `user_satisfaction`. The `agg_*` tables are lifetime totals for `/metrics` and
 * `/analytics` (`archived` rows hold the share of events removed by retention, so totals stay
 * monotonic); the `daily_*` tables are per business and UTC day, for windowed analytics. All are
 * maintained in the same statement that inserts events (see `aggregates.ts`).
 *
 * Frozen once released: later changes go in a new migration.
 */
const latencyColumns = Array.from({ length: 48 }, (_, i) => `b${i} BIGINT NOT NULL DEFAULT 0`).join(',\n  ');

export const sql = `
CREATE TABLE mlops.ai_metrics (
  id SERIAL PRIMARY KEY,
  business_id VARCHAR(255) NOT NULL,
  conversation_id VARCHAR(255),
  session_id VARCHAR(255) NOT NULL,
  response_time_ms INTEGER NOT NULL,
  success_rate DECIMAL(5,4) NOT NULL,
  tokens_used INTEGER NOT NULL,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  api_cost_usd DECIMAL(10,6) NOT NULL,
  model_name VARCHAR(100) NOT NULL,
  intent_detected VARCHAR(50) NOT NULL,
  appointment_requested BOOLEAN DEFAULT FALSE,
  human_handoff_requested BOOLEAN DEFAULT FALSE,
  appointment_booked BOOLEAN DEFAULT FALSE,
  user_message_length INTEGER NOT NULL,
  ai_response_length INTEGER NOT NULL,
  response_type VARCHAR(50) NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  event_id VARCHAR(255) NOT NULL,
  user_satisfaction DOUBLE PRECISION
);
CREATE UNIQUE INDEX ai_metrics_business_event_key ON mlops.ai_metrics (business_id, event_id);
CREATE INDEX ai_metrics_created_at_idx ON mlops.ai_metrics (created_at);

CREATE TABLE mlops.agg_requests (
  archived BOOLEAN NOT NULL,
  business_id VARCHAR(255) NOT NULL,
  response_type VARCHAR(50) NOT NULL,
  intent VARCHAR(50) NOT NULL,
  requests BIGINT NOT NULL,
  PRIMARY KEY (archived, business_id, response_type, intent)
);

CREATE TABLE mlops.agg_business (
  archived BOOLEAN NOT NULL,
  business_id VARCHAR(255) NOT NULL,
  requests BIGINT NOT NULL,
  response_time_ms_sum BIGINT NOT NULL,
  success_rate_sum NUMERIC NOT NULL,
  tokens_used BIGINT NOT NULL,
  api_cost_usd NUMERIC NOT NULL,
  appointments_requested BIGINT NOT NULL,
  appointments_booked BIGINT NOT NULL,
  handoffs_error BIGINT NOT NULL,
  handoffs_complex BIGINT NOT NULL,
  errors BIGINT NOT NULL,
  first_event_at TIMESTAMP,
  last_event_at TIMESTAMP,
  PRIMARY KEY (archived, business_id)
);

CREATE TABLE mlops.agg_model (
  archived BOOLEAN NOT NULL,
  business_id VARCHAR(255) NOT NULL,
  model_name VARCHAR(100) NOT NULL,
  requests BIGINT NOT NULL,
  tokens_used BIGINT NOT NULL,
  api_cost_usd NUMERIC NOT NULL,
  PRIMARY KEY (archived, business_id, model_name)
);

CREATE TABLE mlops.agg_latency (
  archived BOOLEAN NOT NULL PRIMARY KEY,
  count BIGINT NOT NULL,
  sum_ms BIGINT NOT NULL,
  le_100 BIGINT NOT NULL,
  le_500 BIGINT NOT NULL,
  le_1000 BIGINT NOT NULL,
  le_2000 BIGINT NOT NULL,
  le_5000 BIGINT NOT NULL,
  le_10000 BIGINT NOT NULL
);

CREATE TABLE mlops.daily_business (
  business_id VARCHAR(255) NOT NULL,
  day DATE NOT NULL,
  requests BIGINT NOT NULL,
  response_time_ms_sum BIGINT NOT NULL,
  success_rate_sum NUMERIC NOT NULL,
  tokens_used BIGINT NOT NULL,
  api_cost_usd NUMERIC NOT NULL,
  appointments_requested BIGINT NOT NULL,
  appointments_booked BIGINT NOT NULL,
  human_handoffs BIGINT NOT NULL,
  errors BIGINT NOT NULL,
  PRIMARY KEY (business_id, day)
);

CREATE TABLE mlops.daily_latency (
  business_id VARCHAR(255) NOT NULL,
  day DATE NOT NULL,
  ${latencyColumns},
  PRIMARY KEY (business_id, day)
);

CREATE TABLE mlops.daily_intent (
  business_id VARCHAR(255) NOT NULL,
  day DATE NOT NULL,
  intent VARCHAR(50) NOT NULL,
  requests BIGINT NOT NULL,
  PRIMARY KEY (business_id, day, intent)
);

CREATE TABLE mlops.daily_model (
  business_id VARCHAR(255) NOT NULL,
  day DATE NOT NULL,
  model_name VARCHAR(100) NOT NULL,
  requests BIGINT NOT NULL,
  tokens_used BIGINT NOT NULL,
  api_cost_usd NUMERIC NOT NULL,
  PRIMARY KEY (business_id, day, model_name)
);

-- One row per conversation (or session) and day: distinct conversations in a window.
CREATE TABLE mlops.conversation_days (
  business_id VARCHAR(255) NOT NULL,
  day DATE NOT NULL,
  conversation_key VARCHAR(255) NOT NULL,
  PRIMARY KEY (business_id, day, conversation_key)
);

-- Small key/value state, e.g. the retention watermark.
CREATE TABLE mlops.service_state (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;
