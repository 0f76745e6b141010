/**
 * Pooled connections: the server and the packaged Lambda handler through a real PgBouncer in
 * transaction mode (as Neon's `-pooler` host, Supabase or RDS Proxy serve them), selected with
 * DB_POOLED=true on a host that does not say `-pooler`. Writes, duplicates, reads, folds and a
 * refresh all go through the pooler; what is acknowledged is what is stored.
 *
 * Without pgbouncer the suite is skipped loudly; under CI it fails instead.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { unzipSync } from 'fflate';
import postgres from 'postgres';
import { openPostgresStore } from '../src/storage/postgres.ts';
import { pgbouncerBinary, startPgBouncer, type PgBouncer } from '../tools/shared/pgbouncer.ts';
import { makeEvents } from './helpers/events.ts';
import { call } from './helpers/http.ts';
import { v2Event } from './helpers/lambda-events.ts';
import { buildLambdaPackage } from './helpers/package.ts';
import { createTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { skipUnlessCi } from './helpers/skip.ts';

const skip: string | false = skipUnlessCi(pgbouncerBinary() ? false : 'pgbouncer is not installed (apt-get install pgbouncer): the pooled-connection tests') || skipPostgres;

const ENVIRONMENTS = 4;
const EVENTS_PER_ENVIRONMENT = 25;

describe('through PgBouncer in transaction mode', { skip }, () => {
  let pooler: PgBouncer;
  let db: TestDatabase;
  let pooledUrl: string;
  let direct: postgres.Sql;

  before(async () => {
    // A small server pool: client transactions keep landing on different server connections.
    pooler = await startPgBouncer({ poolMode: 'transaction', defaultPoolSize: 3 });
    db = await createTestDatabase('pooled');
    pooledUrl = pooler.urlFor(db.url);
    // Migrations through the pooler too: transaction-scoped advisory lock, no session state.
    const store = openPostgresStore({ url: pooledUrl, pooled: true, poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
    try {
      assert.equal((await store.migrate()).applied.length > 0, true);
    } finally {
      await store.close();
    }
    direct = postgres(db.url, { max: 1, onnotice: () => {} });
  });
  after(async () => {
    await direct?.end();
    await pooler?.stop();
    await db?.drop();
  });

  const stored = async (business: string) =>
    Number((await direct`SELECT count(*)::int AS n FROM mlops.ai_metrics WHERE business_id = ${business}`)[0]!.n);

  describe('the server', () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServerProcess({ DATABASE_URL: pooledUrl, DB_POOLED: 'true', LOG_LEVEL: 'info', FOLD_EVERY_EVENTS: '7', DB_POOL_MAX: '4' });
    });
    after(() => server?.stop());

    it('stores, deduplicates, reads, folds and refreshes through the pooler', async () => {
      const bodies = makeEvents(60, 41, ['pooled-server']).map((b, i) => ({ ...b, event_id: `srv-${i}` }));
      const answers = await Promise.all(bodies.map((b) => call(`${server.url}/track`, { method: 'POST', json: b })));
      assert.deepEqual(answers.map((a) => a.status), bodies.map(() => 200));
      const again = await call(`${server.url}/track`, { method: 'POST', json: bodies[3] });
      assert.equal(again.status, 200);
      assert.equal(again.body.duplicate, true);
      const batch = await call(`${server.url}/track/batch`, {
        method: 'POST',
        json: { events: [...bodies.slice(0, 5), ...makeEvents(5, 42, ['pooled-server']).map((b, i) => ({ ...b, event_id: `srv-b${i}` }))] },
      });
      assert.equal(batch.status, 200);
      assert.equal(batch.body.stored, 5);
      assert.equal(batch.body.duplicates, 5);
      assert.equal(await stored('pooled-server'), 65);

      const analytics = await call(`${server.url}/analytics/pooled-server?days=7`);
      assert.equal(analytics.status, 200);
      assert.equal(analytics.body.metrics.total_requests, 65);
      const metrics = await call(`${server.url}/metrics`);
      assert.match(metrics.text, /appointments_requested_total\{business_id="pooled-server"\}/);
      const refresh = await call(`${server.url}/refresh-metrics?force=true`, { method: 'POST' });
      assert.equal(refresh.status, 200);
      assert.equal(refresh.body.status, 'success');
      assert.deepEqual(refresh.body.report.drift, []);
      assert.equal((await call(`${server.url}/analytics/pooled-server?days=7`)).body.metrics.total_requests, 65);
      const health = await call(`${server.url}/health/detailed`);
      assert.equal(health.status, 200);
    });
  });

  describe('the packaged Lambda handler, several environments', () => {
    let root: string;
    before(() => {
      const built = buildLambdaPackage();
      root = mkdtempSync(join(tmpdir(), 'mlops-pooled-task-'));
      for (const [name, data] of Object.entries(unzipSync(readFileSync(built.zip)))) {
        mkdirSync(dirname(join(root, name)), { recursive: true });
        writeFileSync(join(root, name), data);
      }
    });

    /** One execution environment: a fresh process, one connection, invocations one at a time. */
    async function runEnvironment(events: object[]): Promise<{ statusCode: number; body: string }[]> {
      const file = join(root, `events-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(file, JSON.stringify(events));
      const script = `
        const events = JSON.parse(require('node:fs').readFileSync(${JSON.stringify(file)}, 'utf8'));
        (async () => {
          const { handler } = await import(${JSON.stringify(join(root, 'index.mjs'))});
          const out = [];
          for (const e of events) { const r = await handler(e, { awsRequestId: 'x' }); out.push({ statusCode: r.statusCode, body: r.body }); }
          process.stdout.write('RESULT' + JSON.stringify(out) + '\\n');
          process.exit(0);
        })();`;
      const { stdout: out } = await promisify(execFile)(process.execPath, ['-e', script], {
        cwd: root,
        env: {
          PATH: process.env.PATH, LOG_LEVEL: 'silent', POWERTOOLS_METRICS_DISABLED: 'true',
          DATABASE_URL: pooledUrl, DB_POOLED: 'true', FOLD_EVERY_EVENTS: '10',
        },
        encoding: 'utf8',
        timeout: 60_000,
      });
      return JSON.parse(out.split('RESULT')[1]!);
    }

    it('writes, deduplicates, reads and refreshes from every environment with no errors', async () => {
      const bodies = Array.from({ length: ENVIRONMENTS }, (_, env) =>
        makeEvents(EVENTS_PER_ENVIRONMENT, 50 + env, ['pooled-lambda']).map((b, i) => ({ ...b, event_id: `env${env}-${i}` })));
      const ok = (answers: { statusCode: number; body: string }[]) =>
        assert.deepEqual(answers.map((a) => a.statusCode), answers.map(() => 200), answers.filter((a) => a.statusCode !== 200).map((a) => a.body).join('\n'));
      // Every environment in its own process, all at once: writes.
      const written = await Promise.all(bodies.map((mine) => runEnvironment(mine.map((b) => v2Event('POST', '/track', { body: JSON.stringify(b) })))));
      for (const answers of written) {
        ok(answers);
        assert.ok(answers.every((a) => JSON.parse(a.body).duplicate === false));
      }
      // Then, again all at once from new environments: a retry of another environment's event,
      // reads and a refresh.
      const checked = await Promise.all(bodies.map((_, env) => runEnvironment([
        v2Event('POST', '/track', { body: JSON.stringify(bodies[(env + 1) % ENVIRONMENTS]![0]) }),
        v2Event('GET', '/analytics/pooled-lambda', { query: 'days=7' }),
        v2Event('GET', '/metrics'),
        v2Event('POST', '/refresh-metrics', { query: 'force=true' }),
      ])));
      for (const answers of checked) {
        ok(answers);
        assert.equal(JSON.parse(answers[0]!.body).duplicate, true, 'a retry from another environment is a duplicate');
        assert.equal(JSON.parse(answers[1]!.body).metrics.total_requests, ENVIRONMENTS * EVENTS_PER_ENVIRONMENT);
        assert.match(answers[2]!.body, /ai_requests_total\{business_id="pooled-lambda"/);
      }
      assert.equal(await stored('pooled-lambda'), ENVIRONMENTS * EVENTS_PER_ENVIRONMENT, 'acknowledged = stored');
      const check = openPostgresStore({ url: pooledUrl, pooled: true, poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
      try {
        const totals = (await check.businessTotals()).find((b) => b.business_id === 'pooled-lambda');
        assert.equal(totals?.requests, ENVIRONMENTS * EVENTS_PER_ENVIRONMENT);
      } finally {
        await check.close();
      }
    });
  });
});
