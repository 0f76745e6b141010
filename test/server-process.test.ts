/**
 * The server as a process: configuration errors, the embedded folder lock, two processes on one
 * PostgreSQL agreeing on every business series, graceful shutdown, CORS and the metrics token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makeEvents } from './helpers/events.ts';
import { businessSeries, call } from './helpers/http.ts';
import { freshPgliteDir } from './helpers/pglite-template.ts';
import { createTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';
import { runServerExpectingExit, startServerProcess, type ServerProcess } from './helpers/server-process.ts';

describe('server process', () => {
  it('refuses bad configuration, naming each variable, with exit code 1', async () => {
    const r = await runServerExpectingExit({ PORT: 'abc', LOG_LEVEL: 'chatty', DATABASE_URL: 'http://user:hunter2@db/x' });
    assert.equal(r.code, 1);
    assert.match(r.output, /PORT must be an integer/);
    assert.match(r.output, /LOG_LEVEL must be one of/);
    assert.match(r.output, /DATABASE_URL must be a postgres:\/\//);
    assert.doesNotMatch(r.output, /hunter2/, 'never echoes a password');
  });

  it('refuses a second process on the same DATA_DIR with a message that says so', async () => {
    const dir = await freshPgliteDir();
    const first = await startServerProcess({ DATA_DIR: dir });
    try {
      const second = await runServerExpectingExit({ DATA_DIR: dir });
      assert.equal(second.code, 1);
      assert.match(second.output, new RegExp(`already in use by process ${first.child.pid}`));
      assert.equal((await call(`${first.url}/health`)).status, 200, 'the first one is unharmed');
    } finally {
      await first.stop();
    }
    const third = await startServerProcess({ DATA_DIR: dir });
    await third.stop();
  });

  it('finishes in-flight requests on SIGTERM, then exits 0', async () => {
    const server = await startServerProcess({ DATA_DIR: await freshPgliteDir() });
    const events = makeEvents(500, 5, ['shutdown']);
    const pending = call(`${server.url}/track/batch`, { method: 'POST', json: { events } });
    await new Promise((r) => setTimeout(r, 20)); // let the request reach the server before the signal
    server.child.kill('SIGTERM');
    const answer = await pending;
    assert.equal(answer.status, 200);
    assert.equal(answer.body.stored, 500);
    const code = await server.stop();
    assert.equal(code, 0);
    assert.match(server.output(), /"msg":"shutting down"/);
    assert.match(server.output(), /"msg":"stopped"/);
  });

  it('protects /metrics with METRICS_TOKEN and applies CORS_ORIGINS', async () => {
    const server = await startServerProcess({
      DATA_DIR: await freshPgliteDir(),
      METRICS_TOKEN: 'metrics-token-123456',
      CORS_ORIGINS: 'https://app.example.com',
    });
    try {
      assert.equal((await call(`${server.url}/metrics`)).status, 401);
      assert.equal((await call(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 403);
      assert.equal((await call(`${server.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-123456' } })).status, 200);
      const allowed = await fetch(`${server.url}/track`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-api-key' },
      });
      assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com');
      assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /X-API-Key/i);
      const other = await fetch(`${server.url}/health`, { headers: { origin: 'https://evil.example.com' } });
      assert.equal(other.headers.get('access-control-allow-origin'), null);
      // Without keys configured, writes are open (a laptop default), as the health answer says.
      const health = await call(`${server.url}/health`);
      assert.equal(health.body.security.api_key_required, false);
      assert.equal(health.body.security.metrics_token_required, true);
    } finally {
      await server.stop();
    }
  });

  describe('two processes on one PostgreSQL', { skip: skipPostgres }, () => {
    let db: TestDatabase;
    let a: ServerProcess;
    let b: ServerProcess;
    before(async () => {
      db = await createTestDatabase('twin');
      [a, b] = await Promise.all([startServerProcess({ DATABASE_URL: db.url }), startServerProcess({ DATABASE_URL: db.url })]);
    });
    after(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await db?.drop();
    });

    it('print identical business series after writes through both', async () => {
      const events = makeEvents(80, 9, ['twin-a', 'twin-b']);
      await Promise.all(events.map((e, i) => call(`${i % 2 ? a.url : b.url}/track`, { method: 'POST', json: e })));
      const [ma, mb] = await Promise.all([call(`${a.url}/metrics`), call(`${b.url}/metrics`)]);
      assert.equal(businessSeries(ma.text), businessSeries(mb.text));
      assert.match(ma.text, /ai_requests_total\{business_id="twin-a"/);
      const total = [...ma.text.matchAll(/^ai_requests_total\{.*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      assert.equal(total, 80);
      const instanceA = /mlops_instance_requests_total\{instance_id="([^"]+)"/.exec(ma.text)![1];
      const instanceB = /mlops_instance_requests_total\{instance_id="([^"]+)"/.exec(mb.text)![1];
      assert.notEqual(instanceA, instanceB, 'per-process series are labelled by instance');
    });
  });
});
