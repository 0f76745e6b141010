/**
 * Spans → tracked events, as the contract's "OTLP ingest" section says: one model call, one event.
 *
 * Whether a span is a model call is decided from the span alone, never from other spans of the
 * batch, so an exporter that splits or repeats batches differently still gets the same events:
 * - AI SDK spans (`ai.operationId`): only the provider calls `*.doGenerate`, `*.doStream` and
 *   `*.doEmbed`; the wrappers (`ai.generateText`, `ai.streamText`, …) and tool calls never count.
 * - Other spans: a `gen_ai.operation.name` other than the non-model operations below, or else a
 *   model name or token usage under `gen_ai.*`.
 *
 * The span's own measurements (duration, tokens, model, error status, conversation) win; every
 * other `/track` field comes from `mlops.<field>` or `ai.telemetry.metadata.<field>` on the span,
 * else `mlops.<field>` on the resource (`service.name` for a missing business id). Each event then
 * passes the same validation as `POST /track`. Prompt and reply attributes are never read.
 */
import { trackEventSchema, validateEvent, type TrackEventInput } from '../event-schema.ts';
import type { AttributeValue, Attributes, TraceSpan } from './decode.ts';

export interface MappedCall {
  /** Validated, with `event_id` = `<traceId>-<spanId>`. */
  input: TrackEventInput & { event_id: string };
  /** `gen_ai.operation.name`, else what the AI SDK span was (`embeddings`), else `chat`. */
  operationName: string;
  cachedInputTokens?: number;
}

export type SpanOutcome = { kind: 'ignored' } | { kind: 'call'; call: MappedCall } | { kind: 'rejected'; reason: string };

export interface MappedBatch {
  calls: MappedCall[];
  /** Spans that were model calls but could not become events, and why (reason → count). */
  rejected: number;
  reasons: Map<string, number>;
}

/** Agent, tool and setup spans: they may carry a model name or summed usage, but call nothing. */
const NOT_MODEL_CALLS = new Set(['execute_tool', 'create_agent', 'invoke_agent', 'invoke_workflow']);
const AI_SDK_CALL = /\.do(Generate|Stream|Embed)$/;

/** Every `/track` field a span may state explicitly; `event_id` is always the span's own. */
const TRACK_FIELDS = Object.keys(trackEventSchema.shape).filter((f) => f !== 'event_id');

const first = <T>(values: readonly (T | undefined)[]): T | undefined => values.find((v) => v !== undefined);
const text = (attrs: Attributes, key: string): string | undefined => {
  const v = attrs.get(key);
  return typeof v === 'string' && v !== '' ? v : undefined;
};
const count = (attrs: Attributes, key: string): number | undefined => {
  const v = attrs.get(key);
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
};
const counts = (attrs: Attributes, keys: readonly string[]) => first(keys.map((k) => count(attrs, k)));

const INPUT_TOKENS = ['gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens', 'ai.usage.inputTokens', 'ai.usage.promptTokens', 'ai.usage.tokens'];
const OUTPUT_TOKENS = ['gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens', 'ai.usage.outputTokens', 'ai.usage.completionTokens'];
const TOTAL_TOKENS = ['gen_ai.usage.total_tokens', 'ai.usage.totalTokens'];
const CACHED_INPUT_TOKENS = [
  'gen_ai.usage.cache_read.input_tokens',
  'gen_ai.usage.cache_read_input_tokens',
  'ai.usage.cachedInputTokens',
  'ai.usage.inputTokenDetails.cacheReadTokens',
];
const MODEL = ['gen_ai.response.model', 'gen_ai.request.model', 'ai.model.id'];

/** The operation name when the span is a model call, undefined when it is not one. */
export function modelCallOperation(attrs: Attributes): string | undefined {
  const operation = text(attrs, 'gen_ai.operation.name');
  const aiSdkOperation = text(attrs, 'ai.operationId');
  if (aiSdkOperation !== undefined) {
    if (!AI_SDK_CALL.test(aiSdkOperation)) return undefined;
    return operation ?? (aiSdkOperation.endsWith('.doEmbed') ? 'embeddings' : 'chat');
  }
  if (operation !== undefined) return NOT_MODEL_CALLS.has(operation) ? undefined : operation;
  const looksLikeCall =
    text(attrs, 'gen_ai.request.model') !== undefined ||
    text(attrs, 'gen_ai.response.model') !== undefined ||
    counts(attrs, ['gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens', 'gen_ai.usage.prompt_tokens', 'gen_ai.usage.completion_tokens']) !== undefined;
  return looksLikeCall ? 'chat' : undefined;
}

/** A field the span states explicitly, from the most specific place that has it. */
function stated(span: TraceSpan, field: string): AttributeValue | undefined {
  const found = first([span.attributes.get(`mlops.${field}`), span.attributes.get(`ai.telemetry.metadata.${field}`), span.resource.get(`mlops.${field}`)]);
  return found === null ? undefined : found;
}

/** What the span itself measured; undefined entries are left to the stated fields. */
function measured(span: TraceSpan): Record<string, unknown> {
  const a = span.attributes;
  const input = counts(a, INPUT_TOKENS);
  const output = counts(a, OUTPUT_TOKENS);
  const failed = span.statusCode === 2 || text(a, 'error.type') !== undefined;
  const { startTimeUnixNano: start, endTimeUnixNano: end } = span;
  return {
    response_time_ms: start !== undefined && end !== undefined ? Number(end - start) / 1e6 : undefined,
    tokens_used: input !== undefined || output !== undefined ? (input ?? 0) + (output ?? 0) : counts(a, TOTAL_TOKENS),
    prompt_tokens: input,
    completion_tokens: output,
    model_name: first(MODEL.map((k) => text(a, k))),
    conversation_id: text(a, 'gen_ai.conversation.id'),
    ...(failed ? { response_type: 'error', success_rate: 0 } : {}),
  };
}

const VALID_TRACE_ID = /^(?!0+$)[0-9a-f]{32}$/;
const VALID_SPAN_ID = /^(?!0+$)[0-9a-f]{16}$/;

export function spanToEvent(span: TraceSpan): SpanOutcome {
  const operationName = modelCallOperation(span.attributes);
  if (operationName === undefined) return { kind: 'ignored' };
  if (!VALID_TRACE_ID.test(span.traceId) || !VALID_SPAN_ID.test(span.spanId)) {
    return { kind: 'rejected', reason: 'the span has no valid trace id and span id (16 and 8 bytes, not all zero), which make its event_id' };
  }
  const candidate: Record<string, unknown> = {};
  for (const field of TRACK_FIELDS) {
    const value = stated(span, field);
    if (value !== undefined) candidate[field] = value;
  }
  for (const [field, value] of Object.entries(measured(span))) if (value !== undefined) candidate[field] = value;
  if (candidate.business_id === undefined) {
    const service = text(span.resource, 'service.name');
    if (service !== undefined) candidate.business_id = service;
  }
  const eventId = `${span.traceId}-${span.spanId}`;
  candidate.event_id = eventId;
  if (candidate.tokens_used === undefined) candidate.tokens_used = 0;

  const result = validateEvent(candidate);
  if (!result.ok) {
    const hint = result.details.some((d) => d.field === 'business_id' && d.message.startsWith('Missing'))
      ? ' (set mlops.business_id or ai.telemetry.metadata.business_id on the span, or mlops.business_id / service.name on the resource)'
      : '';
    // Every field's own message (the summary of several names the fields but not what is wrong).
    return { kind: 'rejected', reason: `${[...new Set(result.details.map((d) => d.message))].join('; ')}${hint}` };
  }
  const cachedInputTokens = counts(span.attributes, CACHED_INPUT_TOKENS);
  return {
    kind: 'call',
    call: {
      input: { ...result.value, event_id: eventId },
      operationName,
      ...(cachedInputTokens !== undefined ? { cachedInputTokens } : {}),
    },
  };
}

/** Maps every span of a request; a span sent twice in one request becomes one event. */
export function spansToEvents(spans: readonly TraceSpan[]): MappedBatch {
  const batch: MappedBatch = { calls: [], rejected: 0, reasons: new Map() };
  const seen = new Set<string>();
  for (const span of spans) {
    const outcome = spanToEvent(span);
    if (outcome.kind === 'rejected') {
      batch.rejected++;
      batch.reasons.set(outcome.reason, (batch.reasons.get(outcome.reason) ?? 0) + 1);
    } else if (outcome.kind === 'call' && !seen.has(outcome.call.input.event_id)) {
      seen.add(outcome.call.input.event_id);
      batch.calls.push(outcome.call);
    }
  }
  return batch;
}
