/**
 * `POST /v1/traces` through the packaged Lambda zip in the local emulator, behind the base path a
 * console-made HTTP API gives (stage `default`, route prefix `/mlops-service-lambda`), as an app
 * would reach it with OTEL_EXPORTER_OTLP_ENDPOINT set to that URL: the AI SDK's spans, shipped by
 * the real OTLP exporters (protobuf with gzip, and JSON), become events in PostgreSQL; binary bodies
 * survive the base64 round trips both ways; and the OTLP code is a chunk a cold `/health` never loads.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { generateText } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import postgres from 'postgres';
import { startEmulator, type EmulatorHandle } from '../tools/lambda-emulator/emulator.ts';
import { buildLambdaPackage } from './helpers/package.ts';
import { createMigratedTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';

const KEY = 'otlp-lambda-key-0123456789';
const SECRET = 'SECRET-PROMPT-9d2e';

const model = (input: number, output: number) =>
  new MockLanguageModelV3({
    modelId: 'gpt-4o-mini',
    doGenerate: async () => ({
      content: [{ type: 'text', text: `reply ${SECRET}` }],
      finishReason: { unified: 'stop', raw: 'stop' },
      usage: {
        inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
        outputTokens: { total: output, text: output, reasoning: undefined },
      },
      response: { id: 'r', modelId: 'gpt-4o-mini-2024-07-18', timestamp: new Date() },
      warnings: [],
    }),
  });

function exportSpans(exporter: SpanExporter, spans: ReadableSpan[]): Promise<void> {
  return new Promise((resolve, reject) =>
    exporter.export(spans, (result) => (result.code === 0 ? resolve() : reject(result.error ?? new Error(`export failed (${result.code})`)))),
  );
}

/** Files `file` imports statically (not `import()`), transitively: what loading it loads. */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const m of readFileSync(file, 'utf8').matchAll(/\bfrom\s*"(\.{1,2}\/[^"]+)"|\bimport\s*"(\.{1,2}\/[^"]+)"/g)) {
    staticClosure(join(dirname(file), m[1] ?? m[2]!), seen);
  }
  return seen;
}

describe('OTLP ingest in the packaged Lambda, behind an API Gateway stage', { skip: skipPostgres }, () => {
  let packageDir: string;
  let db: TestDatabase;
  let emulator: EmulatorHandle;
  let sql: postgres.Sql;
  const logs: string[] = [];
  const warnings: string[] = [];
  const endpoint = () => `${emulator.baseUrl}/v1/traces`;

  before(async () => {
    const built = buildLambdaPackage();
    packageDir = join(built.dir, 'lambda');
    db = await createMigratedTestDatabase('otlpemu');
    emulator = await startEmulator({
      artifact: built.zip,
      maxConcurrency: 2,
      idleReapMs: 600_000,
      environment: { DATABASE_URL: db.url, MLOPS_API_KEY: KEY, LOG_LEVEL: 'debug', POWERTOOLS_METRICS_DISABLED: 'true' },
      log: (line) => logs.push(line),
    });
    sql = postgres(db.url, { max: 1, onnotice: () => {} });
    diag.setLogger({ error: (...a) => warnings.push(a.join(' ')), warn: (...a) => warnings.push(a.join(' ')), info() {}, debug() {}, verbose() {} }, DiagLogLevel.WARN);
  });
  after(async () => {
    diag.disable();
    await sql?.end();
    await emulator?.stop();
    await db?.drop();
  });

  it('keeps the OTLP code in a chunk that only a /v1/traces request loads', () => {
    const entry = join(packageDir, 'index.mjs');
    const loadedAtInit = staticClosure(entry);
    const files = readdirSync(join(packageDir, 'chunks')).filter((f) => f.endsWith('.mjs')).map((f) => join(packageDir, 'chunks', f));
    const otlp = files.filter((f) => readFileSync(f, 'utf8').includes('resourceSpans'));
    assert.equal(otlp.length, 1, 'one chunk holds the OTLP code');
    assert.ok(!loadedAtInit.has(otlp[0]!), `${relative(packageDir, otlp[0]!)} is not loaded by index.mjs at init`);
    assert.ok([...loadedAtInit].some((f) => readFileSync(f, 'utf8').includes(`import("./${relative(dirname(f), otlp[0]!)}")`)), 'it is imported on demand');
  });

  it('stores one event per AI SDK call, from protobuf+gzip and JSON exports to the stage URL; a retry stores nothing twice; no prompt is logged', async () => {
    assert.match(emulator.baseUrl, /\/default\/mlops-service-lambda$/);
    const memory = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] }).getTracer('otlp-lambda');
    const call = (business: string, intent: string, input: number, output: number) =>
      generateText({
        model: model(input, output),
        prompt: `question ${SECRET}`,
        experimental_telemetry: { isEnabled: true, tracer, metadata: { business_id: business, intent_detected: intent } },
      });

    await call('emu-otlp', 'booking', 10, 4);
    await call('emu-otlp', 'pricing', 20, 6);
    // A model call whose metadata fails validation: reported back in partial_success.
    await call('emu-otlp', 'x'.repeat(51), 1, 1);
    const protobufBatch = memory.getFinishedSpans();
    memory.reset();
    await call('emu-otlp', 'faq', 30, 8);
    const jsonBatch = memory.getFinishedSpans();

    const protobuf = new ProtobufExporter({ url: endpoint(), headers: { 'x-api-key': KEY }, compression: 'gzip' as never });
    warnings.length = 0;
    await exportSpans(protobuf, protobufBatch);
    const partial = warnings.find((w) => w.includes('Partial Success'));
    assert.ok(partial, `the protobuf answer reached the exporter intact: ${warnings.join(' | ')}`);
    assert.match(partial, /"rejectedSpans":1\b.*intent_detected must be at most 50 characters/);
    await exportSpans(new JsonExporter({ url: endpoint(), headers: { 'x-api-key': KEY } }), jsonBatch);

    const rows = () =>
      sql<{ intent_detected: string; tokens_used: number; model_name: string }[]>`
        SELECT intent_detected, tokens_used, model_name FROM mlops.ai_metrics WHERE business_id = 'emu-otlp' ORDER BY tokens_used`;
    const expected = [
      { intent_detected: 'booking', tokens_used: 14, model_name: 'gpt-4o-mini-2024-07-18' },
      { intent_detected: 'pricing', tokens_used: 26, model_name: 'gpt-4o-mini-2024-07-18' },
      { intent_detected: 'faq', tokens_used: 38, model_name: 'gpt-4o-mini-2024-07-18' },
    ];
    assert.deepEqual([...(await rows())], expected);

    await exportSpans(protobuf, protobufBatch);
    await exportSpans(new ProtobufExporter({ url: endpoint(), headers: { 'x-api-key': KEY } }), jsonBatch);
    assert.deepEqual([...(await rows())], expected, 'retries are duplicates');

    await emulator.settled();
    assert.ok(logs.some((l) => l.includes('otlp spans rejected')), 'the function log was captured');
    assert.ok(!logs.some((l) => l.includes(SECRET)), 'no prompt or reply in the function log');
  });

  it('answers bad bodies and missing keys as on a server', async () => {
    const post = (body: BodyInit, headers: Record<string, string>) => fetch(endpoint(), { method: 'POST', body, headers });
    const garbage = await post(new Uint8Array([0x0a, 0xff, 0xff]), { 'x-api-key': KEY, 'content-type': 'application/x-protobuf' });
    assert.equal(garbage.status, 400);
    assert.match(((await garbage.json()) as { message: string }).message, /not a valid OTLP\/protobuf/);
    assert.equal((await post('{}', { 'x-api-key': KEY, 'content-type': 'text/plain' })).status, 415);
    assert.equal((await post('{}', { 'content-type': 'application/json' })).status, 401);
  });
});
