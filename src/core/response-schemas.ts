/**
 * Schemas of the answers, for the OpenAPI document and for the tests that check real responses
 * against it (so the document cannot drift from what is served). Not loaded on request paths.
 */
import * as z from 'zod/mini';

const iso = z.string().check(z.describe('ISO-8601 UTC time with Z'));
const num = z.number();
const int = z.int();

export const errorSchema = z.object({
  error: z.string().check(z.describe('Machine-readable code, e.g. validation_error')),
  message: z.string(),
  details: z.optional(z.array(z.object({ field: z.string(), message: z.string() }))),
  request_id: z.optional(z.string()),
  reason: z.optional(
    z.enum(['write_not_started', 'write_queue_full', 'write_outcome_unknown']).check(
      z.describe('503 on a write: not_started and queue_full stored nothing; outcome_unknown may have stored it (retry with the same event_id)'),
    ),
  ),
});

export const healthSchema = z.object({
  status: z.literal('healthy'),
  service: z.literal('mlops-service-prometheus'),
  timestamp: iso,
  monitoring: z.literal('prometheus'),
  metrics_endpoint: z.string(),
  environment: z.string(),
  security: z.object({ api_key_required: z.boolean(), metrics_token_required: z.boolean() }),
  runtime: z.object({ name: z.enum(['server', 'lambda']), instance_id: z.string(), cold_start: z.optional(z.boolean()) }),
  version: z.string(),
  database: z.object({ configured: z.boolean(), kind: z.optional(z.string()), message: z.optional(z.string()) }),
});

export const healthDetailedSchema = z.object({
  status: z.enum(['healthy', 'degraded']),
  service: z.string(),
  timestamp: iso,
  version: z.string(),
  environment: z.string(),
  uptime_seconds: num,
  memory: z.object({ rss_mb: num, heap_used_mb: num, heap_total_mb: num }),
  requests: z.object({ total: int, failed: int, rejected: int, error_rate: num, scope: z.string() }),
  runtime: z.object({
    name: z.enum(['server', 'lambda']),
    instance_id: z.string(),
    started_at: iso,
    node_version: z.string(),
    cold_start: z.boolean(),
    cold_starts: int,
    warmups: int,
  }),
  security: z.object({ api_key_required: z.boolean(), metrics_token_required: z.boolean() }),
  database: z.object({
    status: z.enum(['up', 'down', 'not_configured']),
    kind: z.optional(z.string()),
    location: z.optional(z.string()),
    latency_ms: z.optional(num),
    error: z.optional(z.string()),
    message: z.optional(z.string()),
  }),
});

export const indexSchema = z.object({
  message: z.string(),
  service: z.string(),
  version: z.string(),
  runtime: z.string(),
  base_path: z.string(),
  endpoints: z.record(z.string(), z.string()),
  documentation: z.string(),
});

export const trackResponseSchema = z.object({
  status: z.literal('success'),
  message: z.literal('Metrics tracked successfully'),
  prometheus_updated: z.literal(true),
  database_stored: z.literal(true),
  id: int,
  event_id: z.string(),
  duplicate: z.boolean(),
  timestamp: iso,
});

export const batchResponseSchema = z.object({
  status: z.literal('success'),
  message: z.string(),
  database_stored: z.literal(true),
  stored: int,
  duplicates: int,
  results: z.array(z.object({ id: int, event_id: z.string(), duplicate: z.boolean(), timestamp: iso })),
  timestamp: iso,
});

const refreshReport = z.object({
  events_scanned: int,
  unfolded_events: int.check(z.describe('Events stored but not yet folded: counted by reads from the queue, folded later')),
  businesses: int,
  tables: z.array(z.object({ table: z.string(), rows_before: int, rows_after: int })),
  drift: z.array(z.object({ business_id: z.string(), before: num, after: num })),
  duration_ms: num,
});

export const refreshResponseSchema = z.union([
  z.object({ status: z.literal('success'), message: z.string(), report: refreshReport, timestamp: iso }),
  z.object({ status: z.literal('skipped'), message: z.string(), last_refresh_at: z.nullable(iso), timestamp: iso }),
]);

export const summarySchema = z.object({
  businesses: z.array(
    z.object({
      business_id: z.string(),
      total_requests: int,
      avg_response_time_ms: num,
      success_rate: num,
      error_rate: num,
      total_tokens_used: int,
      total_api_cost_usd: num,
      appointment_requests: int,
      appointments_booked: int,
      appointment_conversion_rate: num,
      human_handoffs: int,
      first_event_at: z.nullable(iso),
      last_event_at: z.nullable(iso),
    }),
  ),
  count: int,
  timestamp: iso,
});

export const analyticsSchema = z.object({
  business_id: z.string(),
  period: z.string().check(z.describe('"<days>_days"')),
  window: z.object({ from: z.string(), to: z.string(), days: int, timezone: z.literal('UTC') }),
  metrics: z.object({
    total_requests: int,
    total_conversations: int,
    avg_response_time_ms: num,
    p50_response_time_ms: num,
    p95_response_time_ms: num,
    avg_tokens_used: num,
    total_tokens_used: int,
    total_api_cost_usd: num,
    unpriced_tokens: int,
    appointment_requests: int,
    appointments_booked: int,
    human_handoffs: int,
    appointment_conversion_rate: num,
    success_rate: num,
    error_rate: num,
  }),
  cost_by_source: z.object({ client_usd: num, price_table_usd: num, unpriced_requests: int, unpriced_tokens: int }),
  percentiles: z.object({ method: z.string(), source: z.literal('histogram'), max_relative_error: z.number() }),
  definitions: z.record(z.string(), z.string()),
  by_intent: z.array(z.object({ intent: z.string(), requests: int, share: num })),
  by_model: z.array(z.object({ model_name: z.string(), requests: int, tokens_used: int, cost_usd: num })),
  daily: z.array(z.object({ date: z.string(), requests: int, avg_response_time_ms: num, cost_usd: num })),
  timestamp: iso,
});
