/**
 * Turns stored aggregates into the contract's analytics answers. Pure: no I/O, so the arithmetic
 * is tested directly and both runtimes print identical numbers.
 */
import { estimatePercentile, LATENCY_RELATIVE_ACCURACY } from '../storage/latency-buckets.ts';
import type { AnalyticsWindow, BusinessTotals } from '../storage/types.ts';

const round = (value: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};
const ratio = (num: number, den: number) => (den > 0 ? num / den : 0);

const ACCURACY_PERCENT = LATENCY_RELATIVE_ACCURACY * 100;

export const PERCENTILE_METHOD =
  `Estimated from a log-spaced response-time histogram (each bucket ${((1 + LATENCY_RELATIVE_ACCURACY) / (1 - LATENCY_RELATIVE_ACCURACY)).toFixed(4)}× ` +
  `the previous), interpolating linearly between the two nearest ranks (q·(n−1)); within ${ACCURACY_PERCENT} % of the exact percentile of the stored response times.`;

export function businessAnalytics(w: AnalyticsWindow, now: Date) {
  const t = w.totals;
  const p50 = estimatePercentile(w.latency_buckets, 0.5);
  const p95 = estimatePercentile(w.latency_buckets, 0.95);
  return {
    business_id: w.business_id,
    period: `${w.days}_days`,
    window: { from: w.from, to: w.to, days: w.days, timezone: 'UTC' },
    metrics: {
      total_requests: t.requests,
      total_conversations: t.conversations,
      avg_response_time_ms: round(ratio(t.response_time_ms_sum, t.requests), 2),
      p50_response_time_ms: p50 === null ? 0 : round(p50, 2),
      p95_response_time_ms: p95 === null ? 0 : round(p95, 2),
      avg_tokens_used: round(ratio(t.tokens_used, t.requests), 2),
      total_tokens_used: t.tokens_used,
      total_api_cost_usd: round(t.api_cost_usd, 6),
      unpriced_tokens: t.unpriced_tokens,
      appointment_requests: t.appointments_requested,
      appointments_booked: t.appointments_booked,
      human_handoffs: t.human_handoffs,
      appointment_conversion_rate: round(ratio(t.appointments_booked, t.appointments_requested), 4),
      success_rate: round(ratio(t.success_rate_sum, t.requests), 4),
      error_rate: round(ratio(t.errors, t.requests), 4),
    },
    cost_by_source: {
      client_usd: round(t.cost_client_usd, 6),
      price_table_usd: round(t.cost_price_table_usd, 6),
      unpriced_requests: t.unpriced_requests,
      unpriced_tokens: t.unpriced_tokens,
    },
    percentiles: {
      method: PERCENTILE_METHOD,
      source: 'histogram',
      max_relative_error: LATENCY_RELATIVE_ACCURACY,
    },
    definitions: {
      total_conversations: 'distinct conversation_id (or session_id when absent) seen in the window',
      appointment_conversion_rate: 'appointments_booked / appointment_requests',
      success_rate: 'mean success_rate of the events',
      error_rate: "share of events whose response_type is 'error'",
      total_api_cost_usd: 'cost sent by the client plus cost priced from the price table; unpriced events add nothing',
      unpriced_tokens: 'tokens of events without api_cost_usd whose model (or token split) the price table could not price: their cost is unknown, not $0',
    },
    by_intent: w.by_intent.map((i) => ({ intent: i.intent, requests: i.requests, share: round(ratio(i.requests, t.requests), 4) })),
    by_model: w.by_model.map((m) => ({
      model_name: m.model_name,
      requests: m.requests,
      tokens_used: m.tokens_used,
      cost_usd: round(m.api_cost_usd, 6),
    })),
    daily: w.daily.map((d) => ({
      date: d.date,
      requests: d.requests,
      avg_response_time_ms: round(ratio(d.response_time_ms_sum, d.requests), 2),
      cost_usd: round(d.api_cost_usd, 6),
    })),
    timestamp: now.toISOString(),
  };
}

export function businessSummary(b: BusinessTotals) {
  return {
    business_id: b.business_id,
    total_requests: b.requests,
    avg_response_time_ms: round(ratio(b.response_time_ms_sum, b.requests), 2),
    success_rate: round(ratio(b.success_rate_sum, b.requests), 4),
    error_rate: round(ratio(b.errors, b.requests), 4),
    total_tokens_used: b.tokens_used,
    total_api_cost_usd: round(b.api_cost_usd, 6),
    appointment_requests: b.appointments_requested,
    appointments_booked: b.appointments_booked,
    appointment_conversion_rate: round(ratio(b.appointments_booked, b.appointments_requested), 4),
    human_handoffs: b.handoffs_error + b.handoffs_complex,
    first_event_at: b.first_event_at,
    last_event_at: b.last_event_at,
  };
}
