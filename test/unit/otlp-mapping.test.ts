/**
 * The OTLP → event mapping rules of the contract, span by span, and the decoding edge cases the
 * real exporters do not produce (OTLP/JSON by hand, base64 ids, bad shapes, gzip bombs).
 * The AI SDK attribute sets below are the ones `ai@6` emits (seen with its mock model).
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { ApiError } from '../../src/core/http-errors.ts';
import protobuf from 'protobufjs';
import { decodedBody, gunzip, requestEncoding } from '../../src/core/otlp/body.ts';
import { decodeExportRequest, flattenSpans, type AttributeValue, type TraceSpan } from '../../src/core/otlp/decode.ts';
import { exportResponse, rejectionMessage } from '../../src/core/otlp/response.ts';
import { decodeTraceRequest, encodeExportResponse } from '../../src/core/otlp/trace-proto.ts';
import { modelCallOperation, spansToEvents, spanToEvent } from '../../src/core/otlp/spans-to-events.ts';

const TRACE = '5b8efff798038103d269b633813fc60c';
let nextSpan = 0x1000;

function span(attributes: Record<string, AttributeValue>, extra: Partial<TraceSpan> & { resourceAttributes?: Record<string, AttributeValue> } = {}): TraceSpan {
  const { resourceAttributes, ...rest } = extra;
  return {
    traceId: TRACE,
    spanId: (nextSpan++).toString(16).padStart(16, '0'),
    name: 'span',
    startTimeUnixNano: 1_733_000_000_000_000_000n,
    endTimeUnixNano: 1_733_000_000_812_345_678n,
    statusCode: 0,
    attributes: new Map(Object.entries(attributes)),
    resource: new Map(Object.entries(resourceAttributes ?? { 'service.name': 'svc' })),
    ...rest,
  };
}

/** What `ai@6` puts on `ai.generateText.doGenerate` (prompt and reply included). */
const aiSdkDoGenerate = {
  'operation.name': 'ai.generateText.doGenerate',
  'ai.operationId': 'ai.generateText.doGenerate',
  'ai.model.provider': 'openai.chat',
  'ai.model.id': 'gpt-4o-mini',
  'ai.telemetry.metadata.business_id': 'dental-1',
  'ai.telemetry.metadata.intent_detected': 'booking',
  'ai.prompt.messages': '[{"role":"user","content":[{"type":"text","text":"SECRET prompt"}]}]',
  'gen_ai.system': 'openai.chat',
  'gen_ai.request.model': 'gpt-4o-mini',
  'ai.response.text': 'SECRET reply',
  'ai.response.model': 'gpt-4o-mini-2024-07-18',
  'ai.usage.inputTokens': 11,
  'ai.usage.outputTokens': 7,
  'ai.usage.totalTokens': 18,
  'ai.usage.cachedInputTokens': 3,
  'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
  'gen_ai.usage.input_tokens': 11,
  'gen_ai.usage.output_tokens': 7,
};
/** And on the outer `ai.generateText` wrapper: only `ai.*`, with the same usage and metadata. */
const aiSdkGenerateText = {
  'operation.name': 'ai.generateText',
  'ai.operationId': 'ai.generateText',
  'ai.model.id': 'gpt-4o-mini',
  'ai.telemetry.metadata.business_id': 'dental-1',
  'ai.prompt': '{"prompt":"SECRET prompt"}',
  'ai.response.text': 'SECRET reply',
  'ai.usage.inputTokens': 11,
  'ai.usage.outputTokens': 7,
};

const attrs = (o: Record<string, AttributeValue>) => new Map(Object.entries(o));

function mapped(s: TraceSpan) {
  const outcome = spanToEvent(s);
  assert.equal(outcome.kind, 'call', JSON.stringify(outcome));
  return (outcome as Extract<typeof outcome, { kind: 'call' }>).call;
}
function rejection(s: TraceSpan): string {
  const outcome = spanToEvent(s);
  assert.equal(outcome.kind, 'rejected', JSON.stringify(outcome));
  return (outcome as Extract<typeof outcome, { kind: 'rejected' }>).reason;
}

describe('which spans are model calls', () => {
  it('the AI SDK: the provider call counts, its generateText/streamText wrapper and tool calls never do', () => {
    assert.equal(modelCallOperation(attrs(aiSdkDoGenerate)), 'chat');
    assert.equal(modelCallOperation(attrs({ ...aiSdkDoGenerate, 'ai.operationId': 'ai.streamText.doStream' })), 'chat');
    assert.equal(modelCallOperation(attrs({ 'ai.operationId': 'ai.embed.doEmbed', 'ai.usage.tokens': 4 })), 'embeddings');
    assert.equal(modelCallOperation(attrs(aiSdkGenerateText)), undefined);
    assert.equal(modelCallOperation(attrs({ ...aiSdkGenerateText, 'ai.operationId': 'ai.streamText' })), undefined);
    assert.equal(modelCallOperation(attrs({ 'ai.operationId': 'ai.toolCall', 'ai.toolCall.name': 'book' })), undefined);
    const batch = spansToEvents([span(aiSdkGenerateText), span(aiSdkDoGenerate)]);
    assert.equal(batch.calls.length, 1, 'one generateText call with one step is one event');
    assert.equal(batch.rejected, 0);
  });

  it('OTel GenAI spans: by operation name, model or usage; agent and tool operations are not calls', () => {
    assert.equal(modelCallOperation(attrs({ 'gen_ai.operation.name': 'text_completion' })), 'text_completion');
    assert.equal(modelCallOperation(attrs({ 'gen_ai.request.model': 'gpt-4o' })), 'chat');
    assert.equal(modelCallOperation(attrs({ 'gen_ai.usage.prompt_tokens': 3 })), 'chat');
    for (const op of ['invoke_agent', 'execute_tool', 'create_agent']) {
      assert.equal(modelCallOperation(attrs({ 'gen_ai.operation.name': op, 'gen_ai.request.model': 'gpt-4o' })), undefined, op);
    }
    assert.equal(modelCallOperation(attrs({ 'http.method': 'POST' })), undefined);
    assert.deepEqual(spansToEvents([span({ 'http.route': '/chat' })]), { calls: [], rejected: 0, reasons: new Map() }, 'other spans are ignored, not rejected');
  });
});

describe('span → event', () => {
  it('maps an AI SDK call: id, duration, tokens, model, metadata, operation and cached tokens; no prompt or reply', () => {
    const s = span(aiSdkDoGenerate);
    const call = mapped(s);
    assert.deepEqual(call.input, {
      event_id: `${TRACE}-${s.spanId}`,
      business_id: 'dental-1',
      intent_detected: 'booking',
      response_time_ms: 812.345678,
      tokens_used: 18,
      prompt_tokens: 11,
      completion_tokens: 7,
      model_name: 'gpt-4o-mini-2024-07-18',
    });
    assert.equal(call.operationName, 'chat');
    assert.equal(call.cachedInputTokens, 3);
    assert.ok(!JSON.stringify(call).includes('SECRET'));
  });

  it('reads tokens from the current, the older and the AI SDK names, and the model by precedence', () => {
    const older = mapped(span({ 'gen_ai.request.model': 'req-model', 'gen_ai.usage.prompt_tokens': 5, 'gen_ai.usage.completion_tokens': 2 }));
    assert.deepEqual([older.input.tokens_used, older.input.prompt_tokens, older.input.completion_tokens, older.input.model_name], [7, 5, 2, 'req-model']);
    const sdk = mapped(span({ 'ai.operationId': 'ai.generateText.doGenerate', 'ai.model.id': 'sdk-model', 'ai.usage.inputTokens': 4, 'ai.usage.outputTokens': 6 }));
    assert.deepEqual([sdk.input.tokens_used, sdk.input.model_name], [10, 'sdk-model']);
    const embed = mapped(span({ 'ai.operationId': 'ai.embed.doEmbed', 'ai.model.id': 'text-embedding-3-small', 'ai.usage.tokens': 9 }));
    assert.deepEqual([embed.input.tokens_used, embed.input.completion_tokens, embed.operationName], [9, undefined, 'embeddings']);
    const onlyInput = mapped(span({ 'gen_ai.operation.name': 'embeddings', 'gen_ai.usage.input_tokens': 8 }));
    assert.equal(onlyInput.input.tokens_used, 8);
    const noUsage = mapped(span({ 'gen_ai.operation.name': 'chat' }));
    assert.equal(noUsage.input.tokens_used, 0, 'a call without usage still counts, with 0 tokens');
    const cached = mapped(span({ 'gen_ai.request.model': 'm', 'gen_ai.usage.cache_read.input_tokens': 40 }));
    assert.equal(cached.cachedInputTokens, 40);
    assert.ok(!('cachedInputTokens' in noUsage));
  });

  it('an error status or error.type is response_type error with success_rate 0', () => {
    for (const s of [span({ 'gen_ai.request.model': 'm' }, { statusCode: 2 }), span({ 'gen_ai.request.model': 'm', 'error.type': 'timeout' })]) {
      const { input } = mapped(s);
      assert.deepEqual([input.response_type, input.success_rate], ['error', 0]);
    }
    const stated = mapped(span({ 'gen_ai.request.model': 'm', 'mlops.response_type': 'answer', 'mlops.success_rate': 0.5 }, { statusCode: 2 }));
    assert.deepEqual([stated.input.response_type, stated.input.success_rate], ['error', 0], 'the span status wins over stated fields');
    const ok = mapped(span({ 'gen_ai.request.model': 'm', 'mlops.response_type': 'answer' }, { statusCode: 1 }));
    assert.deepEqual([ok.input.response_type, ok.input.success_rate], ['answer', undefined]);
  });

  it('gen_ai.conversation.id is the conversation', () => {
    assert.equal(mapped(span({ 'gen_ai.request.model': 'm', 'gen_ai.conversation.id': 'conv-9' })).input.conversation_id, 'conv-9');
  });

  it('business_id and other /track fields: span mlops.*, then AI SDK metadata, then resource mlops.*, then service.name', () => {
    const base = { 'gen_ai.request.model': 'm' };
    const resource = { 'service.name': 'svc-name', 'mlops.business_id': 'from-resource', 'mlops.intent_detected': 'resource-intent' };
    const all = mapped(span({ ...base, 'mlops.business_id': 'from-span', 'ai.telemetry.metadata.business_id': 'from-metadata' }, { resourceAttributes: resource }));
    assert.equal(all.input.business_id, 'from-span');
    assert.equal(all.input.intent_detected, 'resource-intent');
    assert.equal(mapped(span({ ...base, 'ai.telemetry.metadata.business_id': 'from-metadata' }, { resourceAttributes: resource })).input.business_id, 'from-metadata');
    assert.equal(mapped(span(base, { resourceAttributes: resource })).input.business_id, 'from-resource');
    assert.equal(mapped(span(base, { resourceAttributes: { 'service.name': 'svc-name' } })).input.business_id, 'svc-name');
    const fields = mapped(
      span({
        ...base,
        'mlops.api_cost_usd': 0.0042,
        'mlops.appointment_booked': true,
        'mlops.session_id': 's-1',
        'ai.telemetry.metadata.human_handoff_requested': true,
        'mlops.event_id': 'ignored',
      }),
    ).input;
    assert.deepEqual([fields.api_cost_usd, fields.appointment_booked, fields.session_id, fields.human_handoff_requested], [0.0042, true, 's-1', true]);
    assert.match(fields.event_id, /^[0-9a-f]{32}-[0-9a-f]{16}$/, 'the event id is always the span\'s');
  });

  it("the span's own measurements win over stated fields, which fill what the span lacks", () => {
    const input = mapped(span({ 'gen_ai.request.model': 'measured', 'gen_ai.usage.input_tokens': 3, 'mlops.model_name': 'stated', 'mlops.tokens_used': 99 })).input;
    assert.deepEqual([input.model_name, input.tokens_used], ['measured', 3]);
    assert.equal(mapped(span({ 'gen_ai.operation.name': 'chat', 'mlops.tokens_used': 99 })).input.tokens_used, 99);
  });

  it('a call that fails /track validation is rejected with the field named; so is one without usable ids', () => {
    assert.match(rejection(span({ 'gen_ai.request.model': 'm' }, { resourceAttributes: {} })), /^Missing required field: business_id \(set mlops\.business_id/);
    assert.equal(rejection(span({ 'gen_ai.request.model': 'm', 'mlops.intent_detected': 'x'.repeat(51) })), 'intent_detected must be at most 50 characters');
    assert.equal(rejection(span({ 'gen_ai.request.model': 'm', 'mlops.appointment_booked': 'yes' })), 'appointment_booked must be true or false');
    assert.equal(rejection(span({ 'gen_ai.request.model': 'm', 'mlops.business_id': 'a\u0000b' })), 'business_id must not contain a NUL character (U+0000)');
    assert.equal(rejection(span({ 'gen_ai.request.model': 'm' }, { endTimeUnixNano: 1_000n })), 'response_time_ms must be ≥ 0');
    assert.equal(rejection(span({ 'gen_ai.request.model': 'm', 'gen_ai.usage.input_tokens': 2 ** 31 })), 'tokens_used must be ≤ 2147483647; prompt_tokens must be ≤ 2147483647');
    assert.match(rejection(span({ 'gen_ai.request.model': 'm' }, { spanId: '0000000000000000' })), /no valid trace id and span id/);
    assert.match(rejection(span({ 'gen_ai.request.model': 'm' }, { traceId: '' })), /no valid trace id and span id/);
  });

  it('a batch: calls kept once each, rejections counted by reason', () => {
    const call = span({ 'gen_ai.request.model': 'm' });
    const long = { 'gen_ai.request.model': 'm', 'mlops.intent_detected': 'x'.repeat(51) };
    const batch = spansToEvents([call, { ...call }, span(long), span(long), span({ 'gen_ai.request.model': 'm' }, { resourceAttributes: {} }), span({ other: 1 })]);
    assert.equal(batch.calls.length, 1, 'the same span twice in one request is one event');
    assert.equal(batch.rejected, 3);
    assert.equal(batch.reasons.get('intent_detected must be at most 50 characters'), 2);
    assert.match(rejectionMessage(batch), /^3 model-call spans were not stored: intent_detected must be at most 50 characters \(2 spans\); Missing required field: business_id .*\(1 span\)$/);
  });
});

describe('decoding', () => {
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const request = (spans: unknown[], resource: unknown = { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] }) => ({
    resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 'x' }, spans }] }],
  });

  it('reads OTLP/JSON: hex ids, int64 as strings or numbers, enum integers or names, every AnyValue kind', () => {
    const [s] = decodeExportRequest(
      json(
        request([
          {
            traceId: TRACE.toUpperCase(),
            spanId: 'EEE19B7EC3C1B174',
            name: 'chat',
            startTimeUnixNano: '1733000000000000001',
            endTimeUnixNano: 1733000000250000000,
            status: { code: 'STATUS_CODE_ERROR' },
            attributes: [
              { key: 's', value: { stringValue: 'text' } },
              { key: 'i', value: { intValue: '42' } },
              { key: 'n', value: { intValue: 7 } },
              { key: 'd', value: { doubleValue: 0.5 } },
              { key: 'b', value: { boolValue: false } },
              { key: 'a', value: { arrayValue: { values: [{ stringValue: 'x' }, { intValue: '1' }] } } },
              { key: 'k', value: { kvlistValue: { values: [{ key: 'inner', value: { boolValue: true } }] } } },
              { key: 'empty', value: {} },
            ],
          },
        ]),
      ),
      'json',
    );
    assert.ok(s);
    assert.equal(s.traceId, TRACE);
    assert.equal(s.spanId, 'eee19b7ec3c1b174');
    assert.equal(s.startTimeUnixNano, 1733000000000000001n, 'exact from a string');
    assert.equal(s.statusCode, 2);
    assert.deepEqual(Object.fromEntries(s.attributes), { s: 'text', i: 42, n: 7, d: 0.5, b: false, a: ['x', 1], k: { inner: true }, empty: null });
    assert.equal(s.resource.get('service.name'), 'svc');
  });

  it('accepts base64 ids (protobuf JSON mapping, which some exporters send) and an empty request', () => {
    const [s] = flattenSpans(request([{ traceId: Buffer.from(TRACE, 'hex').toString('base64'), spanId: Buffer.from('eee19b7ec3c1b174', 'hex').toString('base64') }]));
    assert.deepEqual([s!.traceId, s!.spanId], [TRACE, 'eee19b7ec3c1b174']);
    assert.deepEqual(decodeExportRequest(json({}), 'json'), []);
  });

  it('is a 400 for bodies that are not an ExportTraceServiceRequest, naming where', () => {
    const bad = (body: Uint8Array, encoding: 'json' | 'protobuf', message: RegExp) => {
      assert.throws(() => decodeExportRequest(body, encoding), (e: unknown) => e instanceof ApiError && e.status === 400 && message.test(e.message));
    };
    bad(new TextEncoder().encode('{"resourceSpans": [SECRET'), 'json', /^Body is not valid JSON \(OTLP\/JSON expected\)$/);
    bad(json([1]), 'json', /body must be an object/);
    bad(json({ resourceSpans: [{ scopeSpans: [{ spans: {} }] }] }), 'json', /resourceSpans\[0\]\.scopeSpans\[0\]\.spans must be an array/);
    bad(json(request([{ attributes: 'x' }])), 'json', /spans\[0\]\.attributes must be an array/);
    bad(new Uint8Array([0x0a, 0x05, 0x01]), 'protobuf', /not a valid OTLP\/protobuf/);
    const nested = (levels: number) =>
      new TextEncoder().encode(
        `{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"deep","value":${'{"arrayValue":{"values":['.repeat(levels)}{"stringValue":"x"}${']}}'.repeat(levels)}}]}]}]}]}`,
      );
    bad(nested(100), 'json', /nest deeper than 16 levels/);
    bad(nested(200_000), 'json', /./);

  });
});

/**
 * The complete OTLP trace messages (opentelemetry-proto 1.x, fields the service skips included),
 * for protobufjs to encode requests and decode answers independently of the service's own code.
 */
const OTLP_PROTO = `syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
  ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; fixed32 flags = 16; string name = 5;
  int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
  repeated Event events = 11; uint32 dropped_events_count = 12;
  message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; uint32 dropped_attributes_count = 5; fixed32 flags = 6; }
  repeated Link links = 13; uint32 dropped_links_count = 14; Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
message ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }`;
const oracle = protobuf.parse(OTLP_PROTO).root;
const RequestType = oracle.lookupType('ExportTraceServiceRequest');
const ResponseType = oracle.lookupType('ExportTraceServiceResponse');
const hexBytes = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));

describe('OTLP/protobuf decoding, against protobufjs encoding the full messages', () => {
  const attributes = [
    { key: 's', value: { stringValue: 'text é' } },
    { key: 'i', value: { intValue: 42 } },
    { key: 'neg', value: { intValue: -3 } },
    { key: 'd', value: { doubleValue: 0.25 } },
    { key: 'b', value: { boolValue: true } },
    { key: 'a', value: { arrayValue: { values: [{ stringValue: 'x' }, { arrayValue: { values: [{ intValue: 1 }] } }] } } },
    { key: 'k', value: { kvlistValue: { values: [{ key: 'inner', value: { boolValue: false } }] } } },
    { key: 'raw', value: { bytesValue: hexBytes('00ff') } },
    { key: 'empty', value: {} },
  ];
  const message = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }], droppedAttributesCount: 1 },
        schemaUrl: 'https://opentelemetry.io/schemas/1.30.0',
        scopeSpans: [
          {
            scope: { name: 'ai', version: '6', attributes: [{ key: 'scope.attr', value: { stringValue: 'skipped' } }] },
            spans: [
              {
                traceId: hexBytes(TRACE),
                spanId: hexBytes('eee19b7ec3c1b174'),
                parentSpanId: hexBytes('00f067aa0ba902b7'),
                traceState: 'k=v',
                flags: 1,
                name: 'ai.generateText.doGenerate',
                kind: 3,
                startTimeUnixNano: '1733000000000000001',
                endTimeUnixNano: '1733000000812345679',
                attributes,
                droppedAttributesCount: 2,
                events: [{ timeUnixNano: '1733000000000000005', name: 'exception', attributes: [{ key: 'exception.message', value: { stringValue: 'SECRET' } }] }],
                links: [{ traceId: hexBytes(TRACE), spanId: hexBytes('00f067aa0ba902b8'), attributes }],
                status: { code: 2, message: 'boom' },
              },
              { traceId: hexBytes(TRACE), spanId: hexBytes('eee19b7ec3c1b175') },
            ],
          },
        ],
      },
    ],
  };
  // As a plain Uint8Array, what the route hands over (protobufjs would give a Node Buffer).
  const encoded = Uint8Array.from(RequestType.encode(RequestType.fromObject(message)).finish());

  it('decodes what protobufjs encodes, skipping the fields it does not read, exactly as the same request in OTLP/JSON', () => {
    const spans = decodeExportRequest(encoded, 'protobuf');
    assert.equal(spans.length, 2);
    const [s] = spans;
    assert.deepEqual(
      { ...s, attributes: Object.fromEntries(s!.attributes), resource: Object.fromEntries(s!.resource) },
      {
        traceId: TRACE,
        spanId: 'eee19b7ec3c1b174',
        name: 'ai.generateText.doGenerate',
        startTimeUnixNano: 1733000000000000001n,
        endTimeUnixNano: 1733000000812345679n,
        statusCode: 2,
        attributes: { s: 'text é', i: 42, neg: -3, d: 0.25, b: true, a: ['x', [1]], k: { inner: false }, raw: hexBytes('00ff'), empty: null },
        resource: { 'service.name': 'svc' },
      },
    );
    assert.equal(spans[1]!.statusCode, 0);
    assert.equal(spans[1]!.attributes.size, 0);
    // The same request as OTLP/JSON (what protobufjs's JSON form becomes with hex ids).
    const asJson = JSON.stringify(RequestType.toObject(RequestType.decode(encoded), { longs: String, bytes: String }), (key, value) =>
      ['traceId', 'spanId', 'parentSpanId'].includes(key) ? Buffer.from(value as string, 'base64').toString('hex') : value,
    );
    const fromJson = decodeExportRequest(new TextEncoder().encode(asJson), 'json');
    assert.deepEqual(
      fromJson.map((x) => ({ ...x, attributes: [...x.attributes.keys()] })),
      spans.map((x) => ({ ...x, attributes: [...x.attributes.keys()] })),
    );
  });

  it('refuses truncated and malformed protobuf with a 400', () => {
    const refused = (bytes: Uint8Array) =>
      assert.throws(() => decodeExportRequest(bytes, 'protobuf'), (e: unknown) => e instanceof ApiError && e.status === 400, Buffer.from(bytes).toString('hex'));
    for (const cut of [1, 5, 40, encoded.length - 1]) refused(encoded.subarray(0, cut));
    refused(new Uint8Array([0x0a, 0x80])); // a length varint that never ends
    refused(new Uint8Array([0x0b])); // a group (wire type 3)
    refused(new Uint8Array([0x0a, 0x03, 0x12, 0x05, 0x0a])); // an inner length past its message
    assert.deepEqual(decodeTraceRequest(new Uint8Array([0x08, 0x01, 0x15, 1, 2, 3, 4])), { resourceSpans: [] }, 'unknown fields are skipped');
    // An attribute value nested 50,000 arrays deep (AnyValue.array_value → ArrayValue.values → …).
    const varint = (n: number): number[] => (n < 0x80 ? [n] : [(n % 0x80) | 0x80, ...varint(Math.floor(n / 0x80))]);
    const levels = 50_000;
    const sizes = [3]; // the innermost AnyValue: string_value "x"
    for (let i = 0; i < levels; i++) {
      const inner = sizes[0]!;
      const arrayValue = 1 + varint(inner).length + inner;
      sizes.unshift(1 + varint(arrayValue).length + arrayValue);
    }
    const deep: number[] = [];
    for (let i = 0; i < levels; i++) {
      const inner = sizes[i + 1]!;
      deep.push(0x2a, ...varint(1 + varint(inner).length + inner), 0x0a, ...varint(inner));
    }
    deep.push(0x0a, 0x01, 0x78);
    const kv = [0x0a, 0x01, 0x6b, 0x12, ...varint(deep.length), ...deep];
    const spanBytes = [0x4a, ...varint(kv.length), ...kv];
    const scopeBytes = [0x12, ...varint(spanBytes.length), ...spanBytes];
    refused(Uint8Array.from([0x0a, ...varint(scopeBytes.length + 1 + varint(scopeBytes.length).length), 0x12, ...varint(scopeBytes.length), ...scopeBytes]));
  });

  it('encodes an ExportTraceServiceResponse protobufjs reads back', () => {
    assert.deepEqual(ResponseType.toObject(ResponseType.decode(encodeExportResponse()), { longs: Number }), {});
    const message = 'é'.repeat(100);
    assert.deepEqual(ResponseType.toObject(ResponseType.decode(encodeExportResponse({ rejectedSpans: 300, errorMessage: message })), { longs: Number }), {
      partialSuccess: { rejectedSpans: 300, errorMessage: message },
    });
  });
});

describe('body and answer', () => {
  it('knows the two OTLP content types and refuses others with 415', () => {
    assert.equal(requestEncoding('application/x-protobuf'), 'protobuf');
    assert.equal(requestEncoding('application/json; charset=utf-8'), 'json');
    for (const type of [undefined, 'text/plain', 'application/grpc']) {
      assert.throws(() => requestEncoding(type), (e: unknown) => e instanceof ApiError && e.status === 415);
    }
  });

  it('gunzips within the limit, and stops at the limit for a bomb (413) or corrupt data (400)', async () => {
    const text = 'x'.repeat(10_000);
    assert.equal(new TextDecoder().decode(await decodedBody(gzipSync(text), 'gzip', 10_000)), text);
    const raw = new Uint8Array([1]);
    assert.equal(await decodedBody(raw, undefined, 10), raw, 'no content coding: the body as sent');
    assert.equal(await decodedBody(raw, 'identity', 10), raw);
    // 16 MiB of zeros is ~16 KiB of gzip: refused after reading just past the limit.
    const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024));
    await assert.rejects(gunzip(bomb, 1_000_000), (e: unknown) => e instanceof ApiError && e.status === 413 && /once decompressed/.test(e.message));
    await assert.rejects(gunzip(gzipSync(text).subarray(0, 20), 1_000_000), (e: unknown) => e instanceof ApiError && e.status === 400);
    await assert.rejects(decodedBody(new Uint8Array([1]), 'deflate', 10), (e: unknown) => e instanceof ApiError && e.status === 415);
  });

  it('answers an empty ExportTraceServiceResponse, or a partial_success, in the request encoding', () => {
    assert.deepEqual(exportResponse('json', { rejected: 0, reasons: new Map() }), { body: '{}', contentType: 'application/json' });
    const partial = exportResponse('json', { rejected: 2, reasons: new Map([['why', 2]]) });
    assert.deepEqual(JSON.parse(partial.body as string), { partialSuccess: { rejectedSpans: '2', errorMessage: '2 model-call spans were not stored: why (2 spans)' } });
    assert.equal(((exportResponse('protobuf', { rejected: 0, reasons: new Map() })).body as Uint8Array).length, 0);
    const proto = exportResponse('protobuf', { rejected: 1, reasons: new Map([['why', 1]]) });
    assert.deepEqual(ResponseType.toObject(ResponseType.decode(proto.body as Uint8Array), { longs: Number }), {
      partialSuccess: { rejectedSpans: 1, errorMessage: '1 model-call span was not stored: why (1 span)' },
    });
    assert.equal(proto.contentType, 'application/x-protobuf');
  });
});
