/**
 * Realistic tracked events from a seeded generator, and the independent arithmetic the tests
 * compare the service's answers with.
 */
import { randomUUID } from 'node:crypto';

/** Mulberry32: small, seedable, good enough to vary test data reproducibly. */
export function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTENTS = ['booking', 'pricing', 'hours', 'emergency', 'general'];
const TYPES = ['answer', 'answer', 'answer', 'clarification', 'error'];
const MODELS = ['gemini-1.5-flash', 'gemini-1.5-pro', 'gpt-4o-mini'];

export interface TrackBody {
  business_id: string;
  response_time_ms: number;
  tokens_used: number;
  [field: string]: unknown;
}

export function makeEvents(count: number, seed: number, businesses: string[]): TrackBody[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  return Array.from({ length: count }, (_, i) => {
    const requested = r() < 0.3;
    const prompt = Math.floor(r() * 400) + 20;
    const completion = Math.floor(r() * 300) + 10;
    return {
      business_id: pick(businesses),
      conversation_id: `conv-${Math.floor(r() * count / 3)}`,
      session_id: `sess-${i % 7}`,
      event_id: randomUUID(),
      response_time_ms: Math.round((50 + r() * 3000) * 10) / 10,
      tokens_used: prompt + completion,
      prompt_tokens: prompt,
      completion_tokens: completion,
      api_cost_usd: Math.round(r() * 0.01 * 1e6) / 1e6,
      success_rate: Math.round(r() * 10000) / 10000,
      model_name: pick(MODELS),
      intent_detected: pick(INTENTS),
      response_type: pick(TYPES),
      appointment_requested: requested,
      appointment_booked: requested && r() < 0.5,
      human_handoff_requested: r() < 0.1,
      user_message_length: Math.floor(r() * 200),
      ai_response_length: Math.floor(r() * 800),
    };
  });
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
