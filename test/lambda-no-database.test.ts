/**
 * A Lambda deployment without DATABASE_URL: the embedded database is refused, `/health` says so,
 * routes that need data answer 503 naming DATABASE_URL, warm-ups report it. Also BASE_PATH for a
 * custom-domain mapping.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { fixture, v2Event } from './helpers/lambda-events.ts';

type Handler = (event: unknown, context?: unknown) => Promise<any>;

describe('Lambda without a database', () => {
  let handler: Handler;
  before(async () => {
    delete process.env.DATABASE_URL;
    process.env.LOG_LEVEL = 'silent';
    process.env.BASE_PATH = '/mlops';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    ({ handler } = (await import('../src/adapter/lambda/handler.ts')) as { handler: Handler });
  });

  it('/health answers and says the database is not configured', async () => {
    const r = await handler(v2Event('GET', '/health'));
    assert.equal(r.statusCode, 200);
    const body = JSON.parse(r.body);
    assert.equal(body.database.configured, false);
    assert.match(body.database.message, /DATABASE_URL is not set/);
  });

  it('write and read routes answer 503 naming DATABASE_URL; nothing crashes', async () => {
    const track = await handler(v2Event('POST', '/track', { body: JSON.stringify({ business_id: 'b', response_time_ms: 1, tokens_used: 1 }) }));
    assert.equal(track.statusCode, 503);
    assert.match(JSON.parse(track.body).message, /DATABASE_URL/);
    for (const path of ['/metrics', '/analytics', '/health/detailed']) {
      const r = await handler(v2Event('GET', path));
      assert.equal(r.statusCode, 503, path);
    }
    const detailed = JSON.parse((await handler(v2Event('GET', '/health/detailed'))).body);
    assert.equal(detailed.status, 'degraded');
    assert.equal(detailed.database.status, 'not_configured');
  });

  it('still validates first: a bad event is a 400, not a 503', async () => {
    const r = await handler(v2Event('POST', '/track', { body: '{"business_id":' }));
    assert.equal(r.statusCode, 400);
  });

  it('warm-ups report the missing database', async () => {
    const r = await handler(fixture('eventbridge-scheduled-event-aws-docs.json'));
    assert.equal(r.status, 'warm');
    assert.equal(r.database, 'not_configured');
  });

  it('strips BASE_PATH of a custom-domain mapping (REST event path includes it)', async () => {
    const e = fixture('synthetic-v1-rest-prod-stage-post-track.json');
    e.httpMethod = 'GET';
    e.path = '/mlops/health';
    e.requestContext.path = '/mlops/health';
    e.body = null;
    const r = await handler(e);
    assert.equal(r.statusCode, 200, r.body);
    const index = fixture('synthetic-v1-rest-prod-stage-post-track.json');
    Object.assign(index, { httpMethod: 'GET', path: '/mlops', body: null });
    index.requestContext.path = '/mlops';
    const listed = JSON.parse((await handler(index)).body);
    assert.equal(listed.endpoints.health, 'GET /mlops/health');
  });
});
