/**
 * Dead database connections, as a Lambda environment meets them: a TCP proxy between the handler
 * and PostgreSQL (tools/shared/tcp-proxy.ts) black-holes a flow (a NAT gateway that forgot it
 * while the environment was frozen), resets a connection attempt, and carries the close of a
 * backend killed with pg_terminate_backend. Each request must answer within the request deadline
 * (a clean 503, or 200 after a retry) and the next one must be 200 — not after the kernel's
 * ~15 minutes of retransmissions. The proxy's state is driven explicitly; nothing sleeps.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { toNewEvent, validateEvent } from '../src/core/event-schema.ts';
import { openPostgresStore } from '../src/storage/postgres.ts';
import type { SqlStore } from '../src/storage/sql-store.ts';
import { TcpProxy } from '../tools/shared/tcp-proxy.ts';
import { v2Event } from './helpers/lambda-events.ts';
import { ADMIN_URL, createMigratedTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';

type Handler = (event: unknown, context?: unknown) => Promise<{ statusCode: number; body: string }>;

/** The request deadline (DB_REQUEST_TIMEOUT_MS) of the environment under test. */
const DEADLINE_MS = 1000;
/** "Within the deadline", with room for a loaded machine; the kernel would take ~15 minutes. */
const ANSWERED_WITHIN_MS = 5 * DEADLINE_MS;
const TARGET = (() => {
  const u = new URL(ADMIN_URL);
  return { host: u.hostname, port: Number(u.port || 5432) };
})();

const validated = (e: unknown) => {
  const v = validateEvent(e);
  assert.ok(v.ok);
  return v.value;
};
const event = (id = randomUUID()) => ({ business_id: 'blackhole', response_time_ms: 10, tokens_used: 1, event_id: id });

describe('Lambda: database connections that die silently', { skip: skipPostgres }, () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let admin: postgres.Sql;
  let handler: Handler;

  const track = async (body = event()) => {
    const started = performance.now();
    const result = await handler(v2Event('POST', '/track', { body: JSON.stringify(body) }));
    return { status: result.statusCode, body: result.body, ms: performance.now() - started };
  };
  const stored = async (eventId: string) => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      return (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM mlops.ai_metrics WHERE event_id = ${eventId}`)[0]!.n;
    } finally {
      await sql.end();
    }
  };
  /** The handler's backends (the admin connection is on another database). */
  const appBackends = async () =>
    (await admin<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = ${db.name}`).map((r) => r.pid);

  before(async () => {
    db = await createMigratedTestDatabase('blackhole');
    proxy = await TcpProxy.start(TARGET);
    admin = postgres(ADMIN_URL, { max: 2, onnotice: () => {} });
    delete process.env.DATABASE_URL_SECRET_ID;
    delete process.env.MLOPS_API_KEYS_SECRET_ID;
    Object.assign(process.env, {
      DATABASE_URL: proxy.rewrite(db.url),
      DB_REQUEST_TIMEOUT_MS: String(DEADLINE_MS),
      DB_CONNECT_TIMEOUT_MS: String(DEADLINE_MS),
      DB_STATEMENT_TIMEOUT_MS: String(2 * DEADLINE_MS),
      LOG_LEVEL: 'silent',
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    ({ handler } = (await import('../src/adapter/lambda/handler.ts')) as { handler: Handler });
    assert.equal((await track()).status, 200, 'the environment is warm, its connection open');
  });
  after(async () => {
    await proxy?.close();
    await admin?.end();
    await db?.drop();
  });

  it('a connection black-holed while idle: the request answers within the deadline, the next is 200', async () => {
    assert.equal(proxy.blackholeOpenFlows(), 1, 'the warm connection');
    const lost = event();
    const first = await track(lost);
    assert.ok(first.status === 503 || first.status === 200, `first request: ${first.status} ${first.body}`);
    assert.ok(first.ms < ANSWERED_WITHIN_MS, `answered after ${Math.round(first.ms)} ms`);
    const next = await track();
    assert.equal(next.status, 200, `the next request gets a fresh connection: ${next.body}`);
    const again = await track();
    assert.equal(again.status, 200, again.body);
    console.log(`black hole: first answer ${first.status} after ${Math.round(first.ms)} ms, next 200 after ${Math.round(next.ms)} ms`);
  });

  it('a backend killed mid-statement: a clean 503 at once, the next request is 200', async () => {
    assert.equal((await track()).status, 200);
    // Another transaction holds the event's key, so the handler's insert waits on it, in flight.
    const contested = event();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let holding!: () => void;
    const isHolding = new Promise<void>((r) => (holding = r));
    // The key is held from the handler's own database: a second connection straight to it.
    const direct = postgres(db.url, { max: 1, onnotice: () => {} });
    const held = direct.begin(async (tx) => {
      await tx.unsafe(
        `INSERT INTO mlops.ai_metrics (business_id, event_id, session_id, response_time_ms, success_rate, tokens_used, api_cost_usd,
          model_name, intent_detected, user_message_length, ai_response_length, response_type)
         VALUES ('blackhole', $1, 's', 1, 1, 1, 0, 'm', 'i', 0, 0, 'r')`,
        [contested.event_id],
      );
      holding();
      await released;
      throw new Error('roll back');
    }).catch(() => {});
    await isHolding;
    const pending = track(contested);
    for (let i = 0; ; i++) {
      const [row] = await admin<{ pid: number }[]>`SELECT pid FROM pg_stat_activity
        WHERE datname = ${db.name} AND wait_event_type = 'Lock' AND application_name = 'mlops-service-lambda'`;
      if (row) {
        await admin`SELECT pg_terminate_backend(${row.pid})`;
        break;
      }
      assert.ok(i < 500, 'the insert never waited on the held key');
      await new Promise((r) => setTimeout(r, 10));
    }
    const killed = await pending;
    release();
    await held;
    await direct.end();
    assert.equal(killed.status, 503, killed.body);
    assert.ok(killed.ms < ANSWERED_WITHIN_MS, `answered after ${Math.round(killed.ms)} ms`);
    const next = await track();
    assert.equal(next.status, 200, next.body);
  });

  it('a connection attempt that fails before the statement is sent is retried once, on a fresh connection', async () => {
    assert.equal((await track()).status, 200);
    // The backend is killed while idle: the environment must connect again for its next request.
    for (const pid of await appBackends()) await admin`SELECT pg_terminate_backend(${pid})`;
    await proxy.until(() => proxy.liveFlows.length === 0);
    proxy.resetNextConnections(1);
    const acceptedBefore = proxy.accepted;
    const e = event();
    const answer = await track(e);
    assert.equal(answer.status, 200, `the insert never reached the server, so it was retried: ${answer.body}`);
    assert.equal(proxy.accepted - acceptedBefore, 2, 'one failed connection attempt, one that worked');
    assert.equal(await stored(e.event_id), 1);
  });
});

describe('a connection idle past the idle timeout while the process was frozen', { skip: skipPostgres }, () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let store: SqlStore;
  before(async () => {
    db = await createMigratedTestDatabase('idle_freeze');
    proxy = await TcpProxy.start(TARGET);
  });
  after(async () => {
    await store?.close();
    await proxy?.close();
    await db?.drop();
  });

  it('is not used again: the statement goes to a new connection', async () => {
    const IDLE_MS = 200;
    store = openPostgresStore({
      url: proxy.rewrite(db.url), poolMax: 1, connectTimeoutMs: DEADLINE_MS, statementTimeoutMs: 2 * DEADLINE_MS,
      requestTimeoutMs: DEADLINE_MS, idleTimeoutMs: IDLE_MS,
    });
    await store.ping(DEADLINE_MS);
    assert.equal(proxy.blackholeOpenFlows(), 1);
    // A freeze: the event loop stops (no timer runs) for longer than the idle timeout, and the next
    // statement is issued right after the thaw, before postgres.js's idle timer could close anything.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, IDLE_MS + 50);
    const e = event();
    const [outcome] = await store.insertEvents([toNewEvent(validated(e), e.event_id)]);
    assert.equal(outcome?.duplicate, false);
    assert.equal(proxy.liveFlows.length, 1, 'a new connection carried it');
  });
});
