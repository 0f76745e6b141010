/**
 * Realistic tracked events from a seeded generator, and the independent arithmetic the tests
 * compare the service's answers with.
 */
import type { TrackBody } from '../../tools/shared/sample-events.ts';

export { makeEvents, rng, type TrackBody } from '../../tools/shared/sample-events.ts';

/** The q-quantile with linear interpolation between ranks q·(n−1) (numpy's default), of sorted values. */
export function exactPercentile(sorted: readonly number[], q: number): number {
  const rank = q * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

/** What the analytics of one business must say, computed from the events sent. */
export function expectedTotals(events: TrackBody[]) {
  const n = events.length;
  const sum = (f: (e: TrackBody) => number) => events.reduce((a, e) => a + f(e), 0);
  const rt = events.map((e) => Math.round(e.response_time_ms));
  const requested = events.filter((e) => e.appointment_requested).length;
  const booked = events.filter((e) => e.appointment_booked).length;
  const conversations = new Set(events.map((e) => (e.conversation_id as string | undefined) ?? (e.session_id as string | undefined))).size;
  return {
    total_requests: n,
    total_conversations: conversations,
    avg_response_time_ms: n ? rt.reduce((a, b) => a + b, 0) / n : 0,
    total_tokens_used: sum((e) => e.tokens_used),
    avg_tokens_used: n ? sum((e) => e.tokens_used) / n : 0,
    total_api_cost_usd: sum((e) => (e.api_cost_usd as number) ?? 0),
    appointment_requests: requested,
    appointments_booked: booked,
    human_handoffs: events.filter((e) => e.human_handoff_requested).length,
    appointment_conversion_rate: requested ? booked / requested : 0,
    success_rate: n ? sum((e) => (e.success_rate as number) ?? 1) / n : 0,
    error_rate: n ? events.filter((e) => e.response_type === 'error').length / n : 0,
    sorted_response_times: [...rt].sort((a, b) => a - b),
  };
}
