/**
 * Realistic POST /track bodies (what the Next.js receptionist sends after every chat reply) from
 * a seeded generator: tests and benchmarks get reproducible, statistically alike traffic.
 */
import { randomUUID } from 'node:crypto';

/** Mulberry32: small, seedable, fast enough not to show in measurements. */
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
const TYPES = ['answer', 'answer', 'answer', 'clarification', 'error'];
const MODELS = ['gemini-1.5-flash', 'gemini-1.5-pro', 'gpt-4o-mini'];

export interface TrackBody {
  business_id: string;
  response_time_ms: number;
  tokens_used: number;
  [field: string]: unknown;
}

export interface SampleOptions {
  businesses: readonly string[];
  /** How many distinct conversation ids to draw from. */
  conversations: number;
  /** Prefix of generated conversation and session ids. */
  idPrefix?: string;
}

/** An endless generator; every event gets a fresh event_id, so none is a duplicate. */
export function sampleEvents(seed: number, options: SampleOptions): () => TrackBody {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const prefix = options.idPrefix ?? '';
  let i = 0;
  return () => {
    i++;
    const requested = r() < 0.3;
    const prompt = Math.floor(r() * 400) + 20;
    const completion = Math.floor(r() * 300) + 10;
    return {
      business_id: pick(options.businesses),
      conversation_id: `${prefix}conv-${Math.floor(r() * options.conversations)}`,
      session_id: `${prefix}sess-${i % 97}`,
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

/** `count` events spread over `businesses`, about three per conversation. */
export function makeEvents(count: number, seed: number, businesses: readonly string[]): TrackBody[] {
  const next = sampleEvents(seed, { businesses, conversations: Math.max(1, Math.floor(count / 3)) });
  return Array.from({ length: count }, next);
}
