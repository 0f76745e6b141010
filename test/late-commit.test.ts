/**
 * event_id idempotency where it is hardest to keep:
 * - the late commit: PostgreSQL's backend is frozen on the insert (another session holds a lock
 *   the insert needs), the request answers 503 `write_outcome_unknown` at its deadline with the
 *   commit still in flight, the lock is released, and the same event sent again is a duplicate if
 *   the late commit landed, or stored now if it did not: exactly one row in the end, either way;
 * - the key's scope: the same event_id in two businesses is two events, on both stores.
 *
 * Real server processes; the lock is taken on the suite's own throwaway database. Waits are
 * bounded polls on what PostgreSQL reports (pg_stat_activity), never sleeps.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { call } from './helpers/http.ts';
import { createTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { BACKENDS, serverOn } from './helpers/stores.ts';

/** Polls `check` until it returns a truthy value; fails after `timeoutMs`. */
async function waitFor<T>(what: string, check: () => Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const REQUEST_DEADLINE_MS = 400;

describe('late commit on a frozen PostgreSQL write', { skip: skipPostgres }, () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let sql: postgres.Sql;

  before(async () => {
    db = await createTestDatabase('late_commit');
    server = await startServerProcess({
      DATABASE_URL: db.url,
      DB_REQUEST_TIMEOUT_MS: String(REQUEST_DEADLINE_MS),
      // Far beyond the test: the frozen insert must outlive its request, not hit a statement timeout.
      DB_STATEMENT_TIMEOUT_MS: '120000',
      FOLD_INTERVAL_MS: '0',
    });
    sql = postgres(db.url, { max: 2, onnotice: () => {} });
  });
  after(async () => {
    await sql?.end({ timeout: 5 });
    await server?.stop();
    await db?.drop();
  });

  const rowsOf = async (eventId: string) =>
    (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM mlops.ai_metrics WHERE event_id = ${eventId}`)[0]!.n;
  /** Backends of the service (not ours) in the test database that wait for a lock on an insert. */
  const insertsWaitingOnLock = async () =>
    (await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
        AND query ILIKE '%INSERT INTO mlops.ai_metrics%'`)[0]!.n;

  it('503 write_outcome_unknown at the deadline while the commit waits; after the thaw it lands, and a resend is a duplicate; one row', async () => {
    const event = { business_id: 'late', response_time_ms: 42, tokens_used: 7, event_id: 'late-commit-1' };
    const send = () => call(`${server.url}/track`, { method: 'POST', json: event, signal: AbortSignal.timeout(30_000) });
    // Schema migrated and a connection open before the freeze.
    assert.equal((await call(`${server.url}/track`, { method: 'POST', json: { ...event, event_id: 'warm-up' } })).status, 200);

    const locker = await sql.reserve();
    let locked = true;
    try {
      await locker`BEGIN`;
      // EXCLUSIVE conflicts with the ROW EXCLUSIVE lock every INSERT takes, and with nothing a read takes.
      await locker`LOCK TABLE mlops.ai_metrics IN EXCLUSIVE MODE`;

      const frozen = await send();
      assert.equal(frozen.status, 503, frozen.text);
      assert.equal(frozen.body.error, 'service_unavailable');
      assert.equal(frozen.body.reason, 'write_outcome_unknown', 'the commit had started: the answer may not claim nothing was stored');
      assert.match(frozen.headers.get('retry-after') ?? '', /^\d+$/);
      // The insert really is in flight and frozen behind the lock, not failed or dropped.
      await waitFor('the insert waiting on the table lock', async () => (await insertsWaitingOnLock()) === 1);
      assert.equal(await rowsOf(event.event_id), 0, 'nothing committed while frozen');

      await locker`ROLLBACK`; // the thaw
      locked = false;
    } finally {
      if (locked) await locker`ROLLBACK`.catch(() => {});
      locker.release();
    }

    await waitFor('the frozen insert to finish', async () => (await insertsWaitingOnLock()) === 0);
    // The late commit, if the service let it run on, is in by now: a finished statement holds no
    // lock wait, and its transaction commits before the connection is free again.
    const landed = await waitFor('the insert to commit or give up', async () => {
      const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle' AND query ILIKE '%mlops.ai_metrics%'`;
      return row!.n === 0 ? { rows: await rowsOf(event.event_id) } : undefined;
    });

    // The retired pool lets a statement already sent finish (postgres.ts), so the commit lands.
    assert.equal(landed.rows, 1, 'the insert answered 503 committed once the database thawed');
    const again = await send();
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.duplicate, true, 'the resend finds the late commit');
    assert.equal(await rowsOf(event.event_id), 1, 'exactly one row for the event_id');
    const third = await send();
    assert.equal(third.body.duplicate, true);
    assert.equal(third.body.id, again.body.id);
    assert.equal(await rowsOf(event.event_id), 1);
  });
});

for (const backend of BACKENDS) {
  describe(`event_id is scoped to its business on ${backend.name}`, { skip: backend.skip }, () => {
    const server = serverOn(backend, { FOLD_INTERVAL_MS: '0' });

    const post = (path: string, json: unknown, headers: Record<string, string> = {}) => call(`${server().url}${path}`, { method: 'POST', json, headers });
    const total = async (business: string) => (await call(`${server().url}/analytics/${business}?days=1`)).body.metrics.total_requests as number;

    it('the same event_id in two businesses is stored twice; a repeat in either is a duplicate of its own', async () => {
      const one = await post('/track', { business_id: 'scope-one', response_time_ms: 10, tokens_used: 1, event_id: 'shared-id' });
      const two = await post('/track', { business_id: 'scope-two', response_time_ms: 20, tokens_used: 2, event_id: 'shared-id' });
      assert.equal(one.status, 200, one.text);
      assert.equal(two.status, 200, two.text);
      assert.deepEqual([one.body.duplicate, two.body.duplicate], [false, false]);
      assert.notEqual(one.body.id, two.body.id);
      const repeatOne = await post('/track', { business_id: 'scope-one', response_time_ms: 10, tokens_used: 1, event_id: 'shared-id' });
      const repeatTwo = await post('/track', { business_id: 'scope-two', response_time_ms: 20, tokens_used: 2 }, { 'idempotency-key': 'shared-id' });
      assert.deepEqual([repeatOne.body.duplicate, repeatOne.body.id], [true, one.body.id]);
      assert.deepEqual([repeatTwo.body.duplicate, repeatTwo.body.id], [true, two.body.id]);
      assert.deepEqual([await total('scope-one'), await total('scope-two')], [1, 1]);
    });

    it('in one batch too: the shared event_id in three businesses is three events', async () => {
      const events = ['batch-a', 'batch-b', 'batch-c'].map((business_id, i) => ({ business_id, response_time_ms: 5 + i, tokens_used: 1, event_id: 'batch-shared' }));
      const r = await post('/track/batch', { events });
      assert.equal(r.status, 200, r.text);
      const results = r.body.results as { id: number; duplicate: boolean }[];
      assert.deepEqual(results.map((x) => x.duplicate), [false, false, false]);
      assert.equal(new Set(results.map((x) => x.id)).size, 3);
      assert.deepEqual([await total('batch-a'), await total('batch-b'), await total('batch-c')], [1, 1, 1]);
    });
  });
}
