/**
 * The tracked event: the one schema that validates `POST /track` and `/track/batch` and that the
 * OpenAPI document is generated from. zod/mini rather than classic zod: same validation, a
 * fraction of the start-up cost (the whole service's Lambda cold start is a benchmark target).
 */
import * as z from 'zod/mini';
import type { NewEvent } from '../storage/types.ts';
import { builtInPriceTable, priceTokens, type PriceTable } from './pricing/prices.ts';
import { isStorableText, textProblem } from './text.ts';

const INT4_MAX = 2_147_483_647;

/** Messages the contract spells out: `Missing required field: <name>` and typed complaints. */
function typeError(field: string, expected: string, required: boolean) {
  return (issue: { input?: unknown }) =>
    issue.input === undefined && required ? `Missing required field: ${field}` : `${field} must be ${expected}`;
}

const text = (field: string, min: number, max: number, description: string, required = false) =>
  z.string({ error: typeError(field, 'a string', required) }).check(
    z.minLength(min, `${field} must be at least ${min} character${min === 1 ? '' : 's'}`),
    z.maxLength(max, `${field} must be at most ${max} characters`),
    z.refine(isStorableText, { error: (issue) => `${field} ${textProblem(String(issue.input))}` }),
    z.describe(description),
  );

const count = (field: string, description: string, required = false) =>
  z.int({ error: typeError(field, 'an integer', required) }).check(
    z.minimum(0, `${field} must be ≥ 0`),
    z.maximum(INT4_MAX, `${field} must be ≤ ${INT4_MAX}`),
    z.describe(description),
  );

const flag = (field: string, description: string) =>
  z.optional(z.nullable(z.boolean({ error: `${field} must be true or false` }).check(z.describe(description))));

/** Optional fields also accept `null`, which clients often send for "not known". */
const opt = <T extends z.ZodMiniType>(schema: T) => z.optional(z.nullable(schema));

export const trackEventSchema = z.object({
  business_id: text('business_id', 1, 255, 'The business (tenant) the chat reply belongs to.', true),
  response_time_ms: z
    .number({ error: typeError('response_time_ms', 'a number', true) })
    .check(
      z.minimum(0, 'response_time_ms must be ≥ 0'),
      z.maximum(INT4_MAX, `response_time_ms must be ≤ ${INT4_MAX}`),
      z.describe('Time to produce the reply, in milliseconds. Stored rounded to a whole millisecond.'),
    ),
  tokens_used: count('tokens_used', 'Total tokens of the model call.', true),
  conversation_id: opt(text('conversation_id', 0, 255, 'Conversation the reply belongs to.')),
  session_id: opt(text('session_id', 0, 255, 'Browser session of the chat.')),
  event_id: opt(
    text('event_id', 1, 255, 'Idempotency key: a repeat with the same key (per business) is stored once. Same as the Idempotency-Key header.'),
  ),
  success_rate: opt(
    z.number({ error: 'success_rate must be a number' }).check(
      z.minimum(0, 'success_rate must be between 0 and 1'),
      z.maximum(1, 'success_rate must be between 0 and 1'),
      z.describe('Success of the reply from 0 to 1 (default 1). Stored with 4 decimals.'),
    ),
  ),
  prompt_tokens: opt(count('prompt_tokens', 'Input tokens.')),
  completion_tokens: opt(count('completion_tokens', 'Output tokens.')),
  api_cost_usd: opt(
    z.number({ error: 'api_cost_usd must be a number' }).check(
      z.minimum(0, 'api_cost_usd must be ≥ 0'),
      z.maximum(9999.999999, 'api_cost_usd must be below 10000'),
      z.describe('Cost of the model call in US dollars (default 0). Stored with 6 decimals.'),
    ),
  ),
  model_name: opt(text('model_name', 1, 100, 'Model that produced the reply (default gemini-1.5-flash).')),
  intent_detected: opt(text('intent_detected', 1, 50, 'Detected intent, e.g. booking, pricing (default unknown).')),
  response_type: opt(text('response_type', 1, 50, 'Kind of reply, e.g. answer, error (default unknown). `error` counts as an error.')),
  appointment_requested: flag('appointment_requested', 'The user asked for an appointment.'),
  appointment_booked: flag('appointment_booked', 'An appointment was booked.'),
  human_handoff_requested: flag('human_handoff_requested', 'The conversation was handed to a human.'),
  user_message_length: opt(count('user_message_length', 'Characters in the user message.')),
  ai_response_length: opt(count('ai_response_length', 'Characters in the reply.')),
  user_satisfaction: opt(
    z.number({ error: 'user_satisfaction must be a number' }).check(z.describe('Satisfaction score as the client measures it.')),
  ),
});

export type TrackEventInput = z.infer<typeof trackEventSchema>;

export const MAX_BATCH_EVENTS = 500;

export const trackBatchSchema = z.object({
  events: z
    .array(trackEventSchema, { error: (i) => (i.input === undefined ? 'Missing required field: events' : 'events must be an array') })
    .check(
      z.minLength(1, 'events must hold at least one event'),
      z.maxLength(MAX_BATCH_EVENTS, `events must hold at most ${MAX_BATCH_EVENTS} events`),
    ),
});

export interface FieldProblem {
  field: string;
  message: string;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; message: string; details: FieldProblem[] };

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

function summarise(details: FieldProblem[]): string {
  const missing = details.find((d) => d.message.startsWith('Missing required field'));
  if (missing) return missing.message;
  return details.length === 1 ? details[0]!.message : `${details.length} fields are invalid: ${details.map((d) => d.field).join(', ')}`;
}

function validate<T>(schema: z.ZodMiniType<T>, body: unknown): Validation<T> {
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, value: result.data };
  const details = result.error.issues.map((i) => ({ field: formatPath(i.path) || '(body)', message: i.message }));
  return { ok: false, message: summarise(details), details };
}

export const validateEvent = (body: unknown) => validate(trackEventSchema, body);
export const validateBatch = (body: unknown) => validate(trackBatchSchema, body);

/** What an event gets beyond its `/track` fields (OTLP spans know these). */
export interface EventExtras {
  operation_name?: string;
  cached_input_tokens?: number | null;
}

/**
 * Applies the contract's defaults and the storage column types (integers, fixed decimals), and
 * the cost: the client's `api_cost_usd` when sent, else the price table's, else `unpriced` (no
 * cost at all, rather than a $0 nobody measured). `prices` undefined: the built-in table.
 */
export function toNewEvent(input: TrackEventInput, eventId: string, prices: PriceTable = builtInPriceTable(), extras: EventExtras = {}): NewEvent {
  const model = input.model_name ?? 'gemini-1.5-flash';
  const prompt = input.prompt_tokens ?? null;
  const completion = input.completion_tokens ?? null;
  const cached = extras.cached_input_tokens ?? null;
  let cost: Pick<NewEvent, 'api_cost_usd' | 'cost_source'>;
  if (input.api_cost_usd !== undefined && input.api_cost_usd !== null) cost = { api_cost_usd: input.api_cost_usd, cost_source: 'client' };
  else {
    const priced = priceTokens({ model, promptTokens: prompt, completionTokens: completion, cachedTokens: cached, totalTokens: input.tokens_used }, prices);
    cost = priced.source === 'price_table' ? { api_cost_usd: priced.costUsd, cost_source: 'price_table' } : { api_cost_usd: 0, cost_source: 'unpriced' };
  }
  return {
    business_id: input.business_id,
    event_id: eventId,
    conversation_id: input.conversation_id || null,
    session_id: input.session_id ?? '',
    response_time_ms: Math.round(input.response_time_ms),
    success_rate: input.success_rate ?? 1,
    tokens_used: input.tokens_used,
    prompt_tokens: prompt,
    completion_tokens: completion,
    ...cost,
    model_name: model,
    intent_detected: input.intent_detected ?? 'unknown',
    response_type: input.response_type ?? 'unknown',
    appointment_requested: input.appointment_requested ?? false,
    appointment_booked: input.appointment_booked ?? false,
    human_handoff_requested: input.human_handoff_requested ?? false,
    user_message_length: input.user_message_length ?? 0,
    ai_response_length: input.ai_response_length ?? 0,
    user_satisfaction: input.user_satisfaction ?? null,
    operation_name: extras.operation_name ?? 'chat',
    cached_input_tokens: cached,
  };
}
