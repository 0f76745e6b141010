// Realistic POST /track bodies: what the Next.js receptionist sends after every chat reply (the
// same fields and ranges as the test fixtures in test/helpers/events.ts), from a seeded generator
// so two targets receive statistically identical traffic.
import { randomUUID } from 'node:crypto';

/** Mulberry32: tiny, seedable, fast enough not to show up in the measurements. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTENTS = ['booking', 'pricing', 'hours', 'emergency', 'general', 'insurance'];
const TYPES = ['answer', 'answer', 'answer', 'answer', 'clarification', 'error'];
const MODELS = ['gemini-1.5-flash', 'gemini-1.5-flash', 'gemini-1.5-pro', 'gpt-4o-mini'];
/** A fixed set of businesses: every target sees the same label space, so /metrics has the same size on each. */
export const BENCH_BUSINESSES = ['bench-dental-1', 'bench-dental-2', 'bench-law-1', 'bench-repair-1', 'bench-vet-1'];

export interface TrackPayload {
  business_id: string;
  response_time_ms: number;
  tokens_used: number;
  [field: string]: unknown;
}

/** One generator per target and endpoint; event ids are fresh UUIDs so no request is a duplicate. */
export function trackPayloads(seed: number): () => TrackPayload {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  let i = 0;
  return () => {
    i++;
    const requested = r() < 0.3;
    const prompt = Math.floor(r() * 400) + 20;
    const completion = Math.floor(r() * 300) + 10;
    return {
      business_id: pick(BENCH_BUSINESSES),
      conversation_id: `bench-conv-${Math.floor(r() * 500)}`,
      session_id: `bench-sess-${i % 97}`,
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
  };
}
