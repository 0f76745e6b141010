/**
 * The Lambda handler (source, in this process) against every recorded AWS event: each HTTP event
 * gets the right route, status and response shape for its source, warm-ups the short answer.
 * Runs against a throwaway PostgreSQL database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, fixtureNames, v2Event } from './helpers/lambda-events.ts';
import { createMigratedTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';

type Handler = (event: unknown, context?: unknown) => Promise<any>;

/** What each recorded event must produce. `route` is the path the app saw. */
const EXPECTED: Record<string, { status?: number; warm?: true; shape: 'v2' | 'v1' | 'alb-single' | 'alb-multi' | 'lattice' | 'warm'; check?: (r: any, body: any) => void }> = {
  'alb-aws-docs.json': { status: 404, shape: 'alb-single', check: (_, b) => assert.match(b.message, /GET \/lambda/) },
  'alb-multi-fields-powertools.json': { status: 404, shape: 'alb-multi' },
  'alb-multi-value-headers-aws-lambda-go.json': { status: 200, shape: 'alb-multi', check: (_, b) => assert.equal(b.endpoints.health, 'GET /health') },
  'alb-single-value-headers-aws-lambda-go.json': { status: 200, shape: 'alb-single' },
  // A resource or route without a greedy parameter is where the service is mounted: its root.
  'apigw-v1-http-api-aws-docs-format-1.0.json': { status: 200, shape: 'v1', check: (_, b) => assert.equal(b.base_path, '/my/path') },
  'apigw-v1-rest-aws-docs-input-format.json': { status: 200, shape: 'v1', check: (_, b) => assert.equal(b.endpoints.track, 'POST /my/path/track') },
  'apigw-v1-rest-console-test-ui-powertools.json': { status: 405, shape: 'v1', check: (r) => assert.equal(r.multiValueHeaders.allow[0], 'GET, HEAD, OPTIONS') },
  // A browser's Accept: GET / is the dashboard, its links anchored under the stage.
  'apigw-v1-rest-lambda-guide-sample.json': { status: 200, shape: 'v1', check: (r) => assert.match(r.body, /<base href="\/Prod\/">/) },
  'apigw-v1-rest-proxy-aws-lambda-go.json': { status: 404, shape: 'v1', check: (_, b) => assert.match(b.message, /POST \/hello\/world/) },
  'apigw-v2-http-api-aws-docs-format-2.0.json': { status: 404, shape: 'v2', check: (_, b) => assert.match(b.message, /POST \/my\/path/) },
  'apigw-v2-http-api-console-named-stage-default.json': { status: 200, shape: 'v2' },
  'apigw-v2-http-api-default-stage-aws-lambda-go.json': { status: 200, shape: 'v2', check: (_, b) => assert.equal(b.base_path, '/') },
  'eventbridge-scheduled-event-aws-docs.json': { shape: 'warm' },
  'function-url-aws-docs.json': { status: 404, shape: 'v2', check: (_, b) => assert.match(b.message, /POST \/my\/path/) },
  'function-url-aws-lambda-go.json': { status: 404, shape: 'v2' },
  'synthetic-serverless-plugin-warmup.json': { shape: 'warm' },
  'synthetic-v1-rest-prod-stage-post-track.json': { status: 400, shape: 'v1', check: (_, b) => assert.equal(b.message, 'Missing required field: business_id') },
  'synthetic-v2-named-stage-get-analytics-query.json': { status: 200, shape: 'v2', check: (_, b) => assert.ok(Array.isArray(b.businesses)) },
  'synthetic-v2-named-stage-get-health.json': { status: 200, shape: 'v2', check: (_, b) => assert.equal(b.runtime.name, 'lambda') },
  'synthetic-v2-named-stage-get-metrics.json': { status: 200, shape: 'v2', check: (r) => assert.match(r.body, /# TYPE ai_requests_total counter/) },
  'synthetic-v2-named-stage-post-track-base64-no-content-type.json': { status: 400, shape: 'v2', check: (_, b) => assert.equal(b.message, 'Missing required field: business_id') },
  'synthetic-v2-named-stage-post-track-json.json': { status: 400, shape: 'v2', check: (_, b) => assert.deepEqual(b.details.map((d: any) => d.field).sort(), ['business_id', 'response_time_ms', 'tokens_used']) },
  'vpc-lattice-v1-powertools.json': { status: 404, shape: 'lattice', check: (_, b) => assert.match(b.message, /GET \/testpath/) },
  'vpc-lattice-v2-powertools.json': { status: 404, shape: 'lattice' },
};

describe('Lambda handler on every recorded AWS event', { skip: skipPostgres }, () => {
  let db: TestDatabase;
  let handler: Handler;
  const emf: string[] = [];
  const originalWrite = process.stdout.write.bind(process.stdout);

  before(async () => {
    db = await createMigratedTestDatabase('lambda');
    process.env.DATABASE_URL = db.url;
    process.env.LOG_LEVEL = 'warn';
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'mlops-service-lambda';
    // Capture the Embedded Metric Format lines the handler prints.
    process.stdout.write = ((chunk: any, ...rest: any[]) => {
      if (String(chunk).includes('"_aws"')) emf.push(String(chunk));
      return originalWrite(chunk, ...rest);
    }) as typeof process.stdout.write;
    ({ handler } = (await import('../src/adapter/lambda/handler.ts')) as { handler: Handler });
  });
  after(async () => {
    process.stdout.write = originalWrite;
    await db?.drop();
  });

  it('marks the first invocation cold, later ones warm, and emits CloudWatch EMF metrics', async () => {
    const first = await handler(v2Event('GET', '/health'), { awsRequestId: 'a' });
    const second = await handler(v2Event('GET', '/health'), { awsRequestId: 'b' });
    assert.equal(first.headers['x-cold-start'], 'true');
    assert.equal(second.headers['x-cold-start'], 'false');
    assert.equal(first.headers['x-request-id'], 'a');
    const metrics = emf.map((l) => JSON.parse(l));
    assert.ok(metrics.some((m) => m.ColdStart === 1), 'a ColdStart metric');
    assert.ok(metrics.some((m) => m.Requests === 1 && typeof m.Latency === 'number'));
    assert.deepEqual(metrics[0]._aws.CloudWatchMetrics[0].Namespace, 'MlopsService');
  });

  for (const name of fixtureNames()) {
    it(name, async () => {
      const expected = EXPECTED[name];
      assert.ok(expected, `no expectation written for fixture ${name}`);
      const result = await handler(fixture(name), { awsRequestId: `fixture-${name}` });
      if (expected.shape === 'warm') {
        assert.equal(result.status, 'warm');
        assert.equal(result.database, 'connected', 'a warm-up opens the database connection');
        assert.equal(result.statusCode, undefined, 'not an HTTP answer');
        return;
      }
      assert.equal(result.statusCode, expected.status, result.body);
      assert.equal(typeof result.body, 'string');
      assert.equal(result.isBase64Encoded, false);
      if (expected.shape === 'v2') {
        assert.equal(typeof result.headers, 'object');
        assert.equal(result.multiValueHeaders, undefined);
      } else if (expected.shape === 'v1' || expected.shape === 'alb-multi') {
        assert.ok(Array.isArray(result.multiValueHeaders['content-type']));
      } else {
        assert.equal(typeof result.headers['content-type'], 'string');
        assert.match(result.statusDescription, new RegExp(`^${expected.status} `));
      }
      const contentType = (result.headers?.['content-type'] ?? result.multiValueHeaders?.['content-type']?.[0]) as string;
      const body = contentType.includes('json') ? JSON.parse(result.body) : undefined;
      expected.check?.(result, body);
    });
  }

  it('stores an event sent through the console-shaped v2 event, with upper-case header names', async () => {
    const event = v2Event('POST', '/track', {
      body: JSON.stringify({ business_id: 'lambda-biz', response_time_ms: 321, tokens_used: 12, event_id: 'e-1' }),
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'upper-case-id' },
    });
    const stored = await handler(event);
    assert.equal(stored.statusCode, 200, stored.body);
    assert.equal(JSON.parse(stored.body).duplicate, false);
    assert.equal(stored.headers['x-request-id'], 'upper-case-id');
    const repeat = await handler(event);
    assert.equal(JSON.parse(repeat.body).duplicate, true);
    const analytics = await handler(v2Event('GET', '/analytics/lambda-biz', { query: 'days=7&days=7' }));
    assert.equal(JSON.parse(analytics.body).metrics.total_requests, 1);
  });

  it('an Idempotency-Key with a NUL, a line break or a lone surrogate is a 400 naming it, and nothing is stored', async () => {
    const before = JSON.parse((await handler(v2Event('GET', '/analytics/lambda-idem'))).body).metrics.total_requests;
    for (const key of ['a\u0000b', 'a\nb', 'x\ud800', '\udc00y']) {
      const r = await handler(v2Event('POST', '/track', {
        body: JSON.stringify({ business_id: 'lambda-idem', response_time_ms: 5, tokens_used: 1 }),
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
      }));
      assert.equal(r.statusCode, 400, `${JSON.stringify(key)}: ${r.body}`);
      assert.deepEqual(JSON.parse(r.body).details.map((d: { field: string }) => d.field), ['Idempotency-Key']);
    }
    assert.equal(JSON.parse((await handler(v2Event('GET', '/analytics/lambda-idem'))).body).metrics.total_requests, before);
  });

  it('decodes base64 request bodies', async () => {
    const event = v2Event('POST', '/track', {
      body: Buffer.from(JSON.stringify({ business_id: 'lambda-b64', response_time_ms: 5, tokens_used: 1 })).toString('base64'),
    });
    event.isBase64Encoded = true;
    delete event.headers['content-type'];
    const r = await handler(event);
    assert.equal(r.statusCode, 200, r.body);
  });

  it('answers an unknown event shape with a clear error instead of throwing', async () => {
    const r = await handler({ Records: [{ eventSource: 'aws:sqs' }] });
    assert.equal(r.error, 'unsupported_event');
    assert.match(r.message, /keys Records/);
    assert.equal((await handler('just a string')).error, 'unsupported_event');
  });
});
