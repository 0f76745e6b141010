/**
 * `POST /v1/traces` with the real OpenTelemetry clients: the Vercel AI SDK 6 (`generateText` /
 * `streamText` with `experimental_telemetry`, on its mock model) traced by the OpenTelemetry SDK
 * and shipped by the real OTLP exporters (JSON and protobuf, with and without gzip) to the real
 * server process on a real PostgreSQL. Checked in the database: one event per model call with
 * the span's tokens, model, duration and metadata; an exporter's retry stores nothing twice; a
 * prompt or reply never reaches the database or the log; bad bodies are refused and store nothing.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { diag, DiagLogLevel, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { generateText, streamText } from 'ai';
import { convertArrayToReadableStream, MockLanguageModelV3 } from 'ai/test';
import postgres from 'postgres';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { createTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';

const KEY = 'otlp-test-key-0123456789';
const MAX_BODY_BYTES = 65_536;
/** Put in every prompt and reply: it must never be stored or logged. */
const SECRET = 'SECRET-PROMPT-4f1c';

/** The AI SDK's mock model answering with the given usage (and a reply that holds SECRET). */
function mockModel(modelId: string, usage: { input: number; output: number; cached?: number }, responseModel = `${modelId}-2024-07-18`) {
  const result = {
    content: [{ type: 'text' as const, text: `reply ${SECRET}` }],
    finishReason: { unified: 'stop' as const, raw: 'stop' },
    usage: {
      inputTokens: { total: usage.input, noCache: usage.input - (usage.cached ?? 0), cacheRead: usage.cached, cacheWrite: undefined },
      outputTokens: { total: usage.output, text: usage.output, reasoning: undefined },
    },
    response: { id: 'resp-1', modelId: responseModel, timestamp: new Date() },
    warnings: [],
  };
  return new MockLanguageModelV3({
    modelId,
    doGenerate: async () => result,
    doStream: async () => ({
      stream: convertArrayToReadableStream([
        { type: 'stream-start' as const, warnings: [] },
        { type: 'response-metadata' as const, id: 'resp-2', modelId: responseModel, timestamp: new Date() },
        { type: 'text-start' as const, id: 't1' },
        { type: 'text-delta' as const, id: 't1', delta: `streamed ${SECRET}` },
        { type: 'text-end' as const, id: 't1' },
        { type: 'finish' as const, finishReason: result.finishReason, usage: result.usage },
      ]),
    }),
  });
}

/** A tracer whose finished spans are collected, to be exported by hand (and exported again). */
function tracing(): { tracer: Tracer; takeSpans(): ReadableSpan[] } {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
  return {
    tracer: provider.getTracer('otlp-test'),
    takeSpans() {
      const spans = memory.getFinishedSpans();
      memory.reset();
      return spans;
    },
  };
}

function exportSpans(exporter: SpanExporter, spans: ReadableSpan[]): Promise<void> {
  return new Promise((resolve, reject) =>
    exporter.export(spans, (result) => (result.code === 0 ? resolve() : reject(result.error ?? new Error(`export failed (${result.code})`)))),
  );
}

/** The span's own duration in ms (what response_time_ms must be, rounded). */
const durationMs = (span: ReadableSpan) => span.duration[0] * 1000 + span.duration[1] / 1e6;

describe('POST /v1/traces with the real OpenTelemetry exporters and the AI SDK', { skip: skipPostgres }, () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let sql: postgres.Sql;
  const endpoint = () => `${server.url}/v1/traces`;
  const warnings: string[] = [];

  const rows = (business: string) =>
    sql<
      {
        event_id: string;
        model_name: string;
        tokens_used: number;
        prompt_tokens: number | null;
        completion_tokens: number | null;
        response_time_ms: number;
        intent_detected: string;
        response_type: string;
        success_rate: number;
        conversation_id: string | null;
        api_cost_usd: number;
        cost_source: string;
        operation_name: string;
      }[]
    >`SELECT event_id, model_name, tokens_used, prompt_tokens, completion_tokens, response_time_ms, intent_detected,
             response_type, success_rate::float8 AS success_rate, conversation_id,
             api_cost_usd::float8 AS api_cost_usd, cost_source, operation_name
        FROM mlops.ai_metrics WHERE business_id = ${business} ORDER BY id`;
  const totalRows = async () => Number((await sql`SELECT count(*)::int AS n FROM mlops.ai_metrics`)[0]!.n);

  before(async () => {
    db = await createTestDatabase('otlp');
    server = await startServerProcess({ DATABASE_URL: db.url, MLOPS_API_KEY: KEY, MAX_BODY_BYTES: String(MAX_BODY_BYTES), LOG_LEVEL: 'debug' });
    sql = postgres(db.url, { max: 1, onnotice: () => {} });
    // The exporters report a partial success through the OpenTelemetry diagnostic logger.
    diag.setLogger(
      { error: (...a) => warnings.push(a.join(' ')), warn: (...a) => warnings.push(a.join(' ')), info() {}, debug() {}, verbose() {} },
      DiagLogLevel.WARN,
    );
  });
  after(async () => {
    diag.disable();
    await sql?.end();
    await server?.stop();
    await db?.drop();
  });

  it('stores one event per generateText call (JSON exporter): tokens, model, duration, business and intent from the spans', async () => {
    const { tracer, takeSpans } = tracing();
    const calls = [
      { business: 'otlp-json-a', intent: 'booking', input: 11, output: 7 },
      { business: 'otlp-json-a', intent: 'pricing', input: 23, output: 5 },
      { business: 'otlp-json-b', intent: 'booking', input: 40, output: 2 },
    ];
    for (const c of calls) {
      await generateText({
        model: mockModel('gpt-4o-mini', { input: c.input, output: c.output }),
        prompt: `question ${SECRET}`,
        experimental_telemetry: { isEnabled: true, tracer, metadata: { business_id: c.business, intent_detected: c.intent } },
      });
    }
    const spans = takeSpans();
    const inner = spans.filter((s) => s.name === 'ai.generateText.doGenerate');
    assert.equal(inner.length, 3);
    assert.equal(spans.filter((s) => s.name === 'ai.generateText').length, 3, 'the wrappers are exported too');

    await exportSpans(new JsonExporter({ url: endpoint(), headers: { 'x-api-key': KEY } }), spans);

    const a = await rows('otlp-json-a');
    const b = await rows('otlp-json-b');
    assert.equal(a.length + b.length, 3, 'three calls, three events: the ai.generateText wrappers are not counted');
    for (const [i, c] of calls.entries()) {
      const span = inner[i]!;
      const row = [...a, ...b].find((r) => r.event_id === `${span.spanContext().traceId}-${span.spanContext().spanId}`);
      assert.ok(row, `event of call ${i}`);
      assert.equal(row.tokens_used, c.input + c.output);
      assert.equal(row.prompt_tokens, c.input);
      assert.equal(row.completion_tokens, c.output);
      assert.equal(row.model_name, 'gpt-4o-mini-2024-07-18', 'gen_ai.response.model first');
      assert.equal(row.intent_detected, c.intent);
      assert.ok(Math.abs(row.response_time_ms - durationMs(span)) <= 1, `${row.response_time_ms} ms vs span ${durationMs(span)} ms`);
      assert.equal(row.success_rate, 1);
      // Priced from the table (the dated snapshot matches gpt-4o-mini's pattern), as a chat call.
      const rates = { input_per_1m: 0.15, output_per_1m: 0.6 }; // gpt-4o-mini's table entry, by hand
      assert.equal(row.cost_source, 'price_table');
      assert.equal(row.api_cost_usd, Math.round(c.input * rates.input_per_1m + c.output * rates.output_per_1m) / 1e6);
      assert.equal(row.operation_name, 'chat');
    }
  });

  it('stores streamText and failed calls sent as gzip protobuf; an error is response_type error with success_rate 0', async () => {
    const { tracer, takeSpans } = tracing();
    const telemetry = { isEnabled: true, tracer, metadata: { business_id: 'otlp-proto', intent_detected: 'faq' } };
    const stream = streamText({ model: mockModel('claude-x', { input: 30, output: 9 }), prompt: `stream ${SECRET}`, experimental_telemetry: telemetry });
    assert.match(await stream.text, /streamed/);
    const failing = new MockLanguageModelV3({
      modelId: 'flaky-model',
      doGenerate: async () => {
        throw new Error('provider down');
      },
    });
    await assert.rejects(generateText({ model: failing, maxRetries: 0, prompt: `fails ${SECRET}`, experimental_telemetry: telemetry }));
    const spans = takeSpans();

    await exportSpans(new ProtobufExporter({ url: endpoint(), headers: { 'x-api-key': KEY }, compression: 'gzip' as never }), spans);

    const stored = await rows('otlp-proto');
    assert.equal(stored.length, 2, 'one streamText call and one failed call');
    const streamed = stored.find((r) => r.model_name === 'claude-x-2024-07-18');
    assert.ok(streamed, JSON.stringify(stored));
    assert.deepEqual([streamed.tokens_used, streamed.prompt_tokens, streamed.completion_tokens, streamed.response_type], [39, 30, 9, 'unknown']);
    // A model the price table does not know: unpriced, no cost, its tokens visible as such.
    assert.deepEqual([streamed.cost_source, streamed.api_cost_usd], ['unpriced', 0]);
    const analytics = await fetch(`${server.url}/analytics/otlp-proto`, { headers: { 'x-api-key': KEY } }).then((r) => r.json() as Promise<any>);
    assert.equal(analytics.metrics.unpriced_tokens, 39);
    const failed = stored.find((r) => r.model_name === 'flaky-model');
    assert.ok(failed, JSON.stringify(stored));
    assert.deepEqual([failed.response_type, failed.success_rate, failed.tokens_used], ['error', 0, 0]);
  });

  it("stores nothing twice when an exporter retries a batch, in the same or the other encoding", async () => {
    const { tracer, takeSpans } = tracing();
    await generateText({
      model: mockModel('gpt-4o', { input: 5, output: 5 }),
      prompt: `retry ${SECRET}`,
      experimental_telemetry: { isEnabled: true, tracer, metadata: { business_id: 'otlp-retry' } },
    });
    const spans = takeSpans();
    const json = new JsonExporter({ url: endpoint(), headers: { 'x-api-key': KEY } });
    await exportSpans(json, spans);
    const before = await totalRows();
    await exportSpans(json, spans);
    await exportSpans(new ProtobufExporter({ url: endpoint(), headers: { 'x-api-key': KEY } }), spans);
    await exportSpans(new JsonExporter({ url: endpoint(), headers: { 'x-api-key': KEY }, compression: 'gzip' as never }), spans);
    assert.equal(await totalRows(), before);
    assert.equal((await rows('otlp-retry')).length, 1);
  });

  it('answers a partial success for model-call spans that fail validation, which the exporter reports; the valid ones are stored', async () => {
    const { tracer, takeSpans } = tracing();
    await generateText({
      model: mockModel('gpt-4o', { input: 1, output: 1 }),
      prompt: `ok ${SECRET}`,
      experimental_telemetry: { isEnabled: true, tracer, metadata: { business_id: 'otlp-partial', intent_detected: 'short' } },
    });
    await generateText({
      model: mockModel('gpt-4o', { input: 1, output: 1 }),
      prompt: `too long an intent ${SECRET}`,
      experimental_telemetry: { isEnabled: true, tracer, metadata: { business_id: 'otlp-partial', intent_detected: 'x'.repeat(51) } },
    });
    warnings.length = 0;
    await exportSpans(new ProtobufExporter({ url: endpoint(), headers: { 'x-api-key': KEY } }), takeSpans());
    const partial = warnings.find((w) => w.includes('Partial Success'));
    assert.ok(partial, `the exporter logged: ${warnings.join(' | ')}`);
    assert.match(partial, /"rejectedSpans":1\b/);
    assert.match(partial, /intent_detected must be at most 50 characters/);
    assert.deepEqual((await rows('otlp-partial')).map((r) => r.intent_detected), ['short']);

    // The same answer in OTLP/JSON (int64 as a decimal string), to a hand-written request.
    const span = (id: string, intent: string) => ({
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: id,
      name: 'chat gpt-4o',
      startTimeUnixNano: '1733000000000000000',
      endTimeUnixNano: '1733000000250000000',
      attributes: [
        { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
        { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o' } },
        { key: 'gen_ai.usage.input_tokens', value: { intValue: '12' } },
        { key: 'mlops.intent_detected', value: { stringValue: intent } },
      ],
    });
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'otlp-json-partial' } }] },
          scopeSpans: [{ spans: [span('eee19b7ec3c1b174', 'ok'), span('eee19b7ec3c1b175', 'y'.repeat(60))] }],
        },
      ],
    };
    const r = await fetch(endpoint(), { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    const answer = (await r.json()) as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
    assert.equal(answer.partialSuccess.rejectedSpans, '1');
    assert.match(answer.partialSuccess.errorMessage, /^1 model-call span was not stored: intent_detected must be at most 50 characters/);
    const stored = await rows('otlp-json-partial');
    assert.deepEqual(
      stored.map((s) => [s.event_id, s.response_time_ms, s.tokens_used, s.model_name]),
      [['5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174', 250, 12, 'gpt-4o']],
      'business from service.name; duration from the span times',
    );
  });

  it('refuses bad bodies and keys with the OTLP/HTTP statuses, storing nothing', async () => {
    const before = await totalRows();
    const post = (body: BodyInit, headers: Record<string, string>) => fetch(endpoint(), { method: 'POST', body, headers: { 'x-api-key': KEY, ...headers } });
    const protobuf = { 'content-type': 'application/x-protobuf' };
    const json = { 'content-type': 'application/json' };
    const cases: [string, () => Promise<Response>, number, RegExp][] = [
      ['not protobuf', () => post(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]), protobuf), 400, /not a valid OTLP\/protobuf/],
      ['malformed JSON', () => post(`{"resourceSpans":[{"x":"${SECRET}"`, json), 400, /not valid JSON/],
      ['JSON of the wrong shape', () => post('{"resourceSpans":5}', json), 400, /resourceSpans must be an array/],
      ['another content type', () => post('x', { 'content-type': 'text/plain' }), 415, /application\/x-protobuf or application\/json/],
      ['another content coding', () => post('x', { ...json, 'content-encoding': 'br' }), 415, /Content-Encoding/],
      ['corrupt gzip', () => post(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]), { ...json, 'content-encoding': 'gzip' }), 400, /not valid gzip/],
      ['a body over the limit', () => post(new Uint8Array(MAX_BODY_BYTES + 1), protobuf), 413, /limit of 65536 bytes/],
      [
        'a gzip body over the limit once decompressed',
        () => post(gzipSync(new Uint8Array(MAX_BODY_BYTES * 16)), { ...protobuf, 'content-encoding': 'gzip' }),
        413,
        /once decompressed/,
      ],
      ['no API key', () => fetch(endpoint(), { method: 'POST', body: '{}', headers: json }), 401, /API key required/],
      ['a wrong API key', () => fetch(endpoint(), { method: 'POST', body: '{}', headers: { ...json, 'x-api-key': 'nope' } }), 403, /Invalid API key/],
    ];
    for (const [name, send, status, message] of cases) {
      const r = await send();
      const text = await r.text();
      assert.equal(r.status, status, `${name}: ${text}`);
      assert.match(JSON.parse(text).message, message, name);
      assert.ok(!text.includes(SECRET), `${name}: the answer does not echo the body`);
    }
    // An empty request is a valid export of nothing.
    const empty = await post(new Uint8Array(0), protobuf);
    assert.equal(empty.status, 200);
    assert.equal((await empty.arrayBuffer()).byteLength, 0, 'an empty ExportTraceServiceResponse');
    assert.equal(await totalRows(), before);
  });

  it('never stores or logs a prompt or a reply', async () => {
    const tables = await sql<{ schema: string; name: string }[]>`
      SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
       WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`;
    assert.ok(tables.some((t) => t.name === 'ai_metrics'));
    for (const t of tables) {
      const [dump] = await sql.unsafe(`SELECT coalesce(string_agg(t::text, E'\\n'), '') AS text FROM "${t.schema}"."${t.name}" t`);
      assert.ok(!String(dump!.text).includes(SECRET), `${t.schema}.${t.name} holds no prompt or reply`);
    }
    assert.match(server.output(), /"path":"\/v1\/traces"/, 'the log was captured');
    assert.match(server.output(), /otlp spans rejected/, 'rejections are logged (without span attributes)');
    assert.ok(!server.output().includes(SECRET), 'the log holds no prompt or reply');
  });
});
