/**
 * The append-only write path: ingest touches no aggregate row, reads add the unfolded tail,
 * folds move each event into the aggregates exactly once (racing folders, a folder killed
 * mid-fold), refresh and purge never block writers, the bigint migration from the first
 * schema, and the 503 rule of the write queue. On both stores where the behaviour exists.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { toNewEvent, validateEvent } from '../src/core/event-schema.ts';
import { sql as initialSchema } from '../src/storage/migrations/0001_initial.ts';
import { openPostgresStore } from '../src/storage/postgres.ts';
import type { SqlStore } from '../src/storage/sql-store.ts';
import type { MetricsSnapshot, NewEvent } from '../src/storage/types.ts';
import { WriteNotStartedError } from '../src/storage/write-batcher.ts';
import { makeEvents } from './helpers/events.ts';
import { createTestDatabase, skipPostgres } from './helpers/postgres.ts';
import { BACKENDS, openTestStore, type TestStore } from './helpers/stores.ts';

let seed = 100;
function events(n: number, businesses: string[]): NewEvent[] {
  return makeEvents(n, seed++, businesses).map((b) => {
    const r = validateEvent(b);
    assert.ok(r.ok);
    return toNewEvent(r.value, randomUUID());
  });
}

const dayOffset = (days: number) => {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() - days);
  d.setUTCHours(12, 0, 0, 0);
  return d.toISOString();
};

/** Requests per business as the aggregates + tail say, and as the raw events say. */
async function requestsByBusiness(store: SqlStore): Promise<Map<string, number>> {
  return new Map((await store.businessTotals()).map((b) => [b.business_id, b.requests]));
}

function countBy(list: NewEvent[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of list) m.set(e.business_id, (m.get(e.business_id) ?? 0) + 1);
  return m;
}

/** Refresh recounts the folded events from scratch: no drift and no change means the folds were exact. */
async function assertEqualsFreshRecount(store: SqlStore, message: string): Promise<void> {
  await store.foldPending();
  const before: MetricsSnapshot = await store.metricsSnapshot();
  const refreshed = await store.refreshAggregates({ force: true });
  assert.ok(refreshed.status === 'done');
  assert.deepEqual(refreshed.report.drift, [], `${message}: drift against a fresh recount`);
  assert.deepEqual(await store.metricsSnapshot(), before, `${message}: totals changed by a fresh recount`);
}

/** Promise.withResolvers is Node 22+; the suite runs on Node 20 too. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const NO_AUTO_FOLD = { fold: { every: 1e9 } };

for (const backend of BACKENDS) {
  describe(`append-only write path on ${backend.name}`, { skip: backend.skip }, () => {
    let t: TestStore;
    let store: SqlStore;

    before(async () => {
      t = await openTestStore(backend, { ...NO_AUTO_FOLD, purgeChunk: 7 });
      store = t.store;
    });
    after(() => t?.close());

    it('stores events without touching an aggregate, and reads count them at once from the tail', async () => {
      const aggregateRows = async () =>
        JSON.stringify(await t.raw.query(`SELECT * FROM mlops.agg_business ORDER BY business_id, archived`));
      const rowsBefore = await aggregateRows();
      const sent = events(40, ['tail-a', 'tail-b']);
      await Promise.all(sent.map((e) => store.insertEvents([e])));
      assert.equal(await aggregateRows(), rowsBefore, 'the write path updated an aggregate row');
      assert.equal(await store.unfoldedCount(), 40);
      const totals = await requestsByBusiness(store);
      for (const [business, n] of countBy(sent)) assert.equal(totals.get(business), n);

      const metrics = await store.metricsSnapshot();
      const analytics = await store.analyticsWindow('tail-a', 30);
      assert.equal(analytics.unfolded, countBy(sent).get('tail-a'));
      const report = await store.foldPending();
      assert.equal(report.folded, 40);
      assert.equal(report.drained, true);
      assert.equal(await store.unfoldedCount(), 0);
      assert.deepEqual(await store.metricsSnapshot(), metrics, 'folding changed what /metrics reads');
      assert.deepEqual({ ...(await store.analyticsWindow('tail-a', 30)), unfolded: 0 }, { ...analytics, unfolded: 0 });
      assert.notEqual(await aggregateRows(), rowsBefore);
    });

    it('folds every event exactly once while folds race each other and writers', async () => {
      const sent = events(300, ['race-a', 'race-b', 'race-c']);
      const writes: Promise<unknown>[] = [];
      const folds: Promise<unknown>[] = [];
      for (let i = 0; i < sent.length; i += 10) {
        writes.push(store.insertEvents(sent.slice(i, i + 10)));
        if (i % 30 === 0) folds.push(store.foldPending({ maxChunks: 1 }));
      }
      await Promise.all([...writes, ...folds]);
      await store.foldPending();
      const totals = await requestsByBusiness(store);
      for (const [business, n] of countBy(sent)) assert.equal(totals.get(business), n, business);
      await assertEqualsFreshRecount(store, 'after racing folds');
    });

    it('keeps refresh exact with events still queued, and leaves them queued', async () => {
      const sent = events(25, ['refresh-tail']);
      await store.insertEvents(sent);
      const before = await store.metricsSnapshot();
      const refreshed = await store.refreshAggregates({ force: true });
      assert.ok(refreshed.status === 'done');
      assert.ok(refreshed.report.unfolded_events >= 25);
      assert.deepEqual(await store.metricsSnapshot(), before);
      assert.equal((await requestsByBusiness(store)).get('refresh-tail'), 25);
    });

    it('purges in chunks within any statement timeout, totals unchanged, conversations counted past retention', async () => {
      const old = events(30, ['purge-chunks']).map((e, i) => ({ ...e, created_at: dayOffset(40), conversation_id: `old-${i % 6}` }));
      const recent = events(5, ['purge-chunks']).map((e, i) => ({ ...e, created_at: dayOffset(1), conversation_id: `new-${i}` }));
      await store.insertEvents([...old, ...recent]);
      const metrics = await store.metricsSnapshot();
      const window = await store.analyticsWindow('purge-chunks', 60);
      assert.equal(window.totals.conversations, 11);
      const report = await store.purgeBefore(dayOffset(30).slice(0, 10));
      assert.equal(report.events_deleted, 30);
      assert.ok(report.chunks >= Math.ceil(30 / 7), `${report.chunks} chunks of at most 7 events`);
      assert.deepEqual(await store.metricsSnapshot(), metrics, 'purge changed the lifetime totals');
      const afterPurge = await store.analyticsWindow('purge-chunks', 60);
      assert.equal(afterPurge.totals.requests, 35, 'daily rollups keep the purged days');
      assert.equal(afterPurge.totals.conversations, 11, 'conversations of purged days still counted');
      const [row] = await t.raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM mlops.ai_metrics WHERE business_id = 'purge-chunks'`);
      const n = row!.n;
      assert.equal(n, 5);
      await assertEqualsFreshRecount(store, 'after a chunked purge');
      assert.equal((await store.analyticsWindow('purge-chunks', 60)).totals.conversations, 11, 'and after a refresh');
    });

    it('keeps the daily history when a purge dies between chunks and a refresh runs', async () => {
      const old = events(20, ['purge-dies']).map((e, i) => ({ ...e, created_at: dayOffset(45 - (i % 2)) }));
      const poison = { ...events(1, ['purge-dies'])[0]!, created_at: dayOffset(43), event_id: 'poison' };
      await store.insertEvents([...old, poison]);
      await store.foldPending();
      const before = await store.analyticsWindow('purge-dies', 60);
      // The later chunk that would delete 'poison' fails: the purge stops after committing some chunks.
      await t.raw.exec(`CREATE FUNCTION mlops.test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF OLD.event_id = 'poison' THEN RAISE EXCEPTION 'purge interrupted'; END IF; RETURN OLD; END $$;
        CREATE TRIGGER refuse_poison BEFORE DELETE ON mlops.ai_metrics FOR EACH ROW EXECUTE FUNCTION mlops.test_refuse();`);
      try {
        await assert.rejects(store.purgeBefore(dayOffset(30).slice(0, 10)), /purge interrupted/);
      } finally {
        await t.raw.exec(`DROP TRIGGER refuse_poison ON mlops.ai_metrics; DROP FUNCTION mlops.test_refuse()`);
      }
      const [row] = await t.raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM mlops.ai_metrics WHERE business_id = 'purge-dies'`);
      assert.ok(row!.n > 0 && row!.n < 21, `some chunks committed (${row!.n} of 21 events left)`);
      const refreshed = await store.refreshAggregates({ force: true });
      assert.ok(refreshed.status === 'done');
      const after = await store.analyticsWindow('purge-dies', 60);
      assert.equal(after.totals.requests, before.totals.requests, 'refresh erased the purged days');
      assert.deepEqual(after.daily, before.daily);
    });
  });
}

describe('append-only write path on PostgreSQL, several processes', { skip: skipPostgres }, () => {
  let t: TestStore;
  let admin: postgres.Sql;
  const open = (name: string, fold = { every: 5 }) =>
    openPostgresStore({ url: t.url!, poolMax: 2, connectTimeoutMs: 3000, statementTimeoutMs: 10000, applicationName: name, fold });

  before(async () => {
    t = await openTestStore(BACKENDS.find((b) => b.name === 'postgres')!, NO_AUTO_FOLD);
    admin = postgres(t.url!, { max: 2, onnotice: () => {} });
  });
  after(async () => {
    await admin?.end();
    await t?.close();
  });

  it('never makes a writer wait for a row held by folds, refreshes or other writers', async () => {
    await t.store.insertEvents(events(10, ['held']));
    await t.store.foldPending();
    // Hold the fold lock and every aggregate row, as a long fold or refresh would.
    const release = deferred();
    const held = admin.begin(async (tx) => {
      await tx.unsafe(`SELECT pg_advisory_xact_lock(hashtext('mlops-service:fold'))`);
      for (const table of ['agg_requests', 'agg_business', 'agg_model', 'agg_latency', 'daily_business', 'daily_latency_buckets', 'daily_intent', 'daily_model', 'conversation_days']) {
        await tx.unsafe(`SELECT * FROM mlops.${table} FOR UPDATE`);
      }
      await release.promise;
    });
    const writer = openPostgresStore({ url: t.url!, poolMax: 2, connectTimeoutMs: 3000, statementTimeoutMs: 10000, requestTimeoutMs: 3000, fold: { every: 1e9 } });
    try {
      const outcomes = await writer.insertEvents(events(20, ['held']));
      assert.equal(outcomes.filter((o) => !o.duplicate).length, 20);
      assert.equal((await requestsByBusiness(writer)).get('held'), 30);
      const fold = await writer.foldPending();
      assert.equal(fold.busy, true, 'a fold must skip, not wait, while another holds the fold lock');
    } finally {
      release.resolve();
      await held;
      await writer.close();
    }
  });

  it('folds exactly once with four processes writing and folding at once', async () => {
    const stores = [1, 2, 3, 4].map((i) => open(`folder-${i}`));
    const sent: NewEvent[] = [];
    try {
      await Promise.all(stores.map(async (s, i) => {
        for (let round = 0; round < 15; round++) {
          const batch = events(8, [`multi-${i % 2}`, 'multi-shared']);
          sent.push(...batch);
          await s.insertEvents(batch.slice(0, 4));
          await Promise.all([s.insertEvents(batch.slice(4)), s.foldPending({ maxChunks: 1 })]);
        }
      }));
      await Promise.all(stores.map((s) => s.foldPending()));
      const totals = await requestsByBusiness(t.store);
      for (const [business, n] of countBy(sent)) assert.equal(totals.get(business), n, business);
      assert.ok(stores.some((s) => (s.writeStats.fold?.folds ?? 0) > 0));
      await assertEqualsFreshRecount(t.store, 'after four folding processes');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('loses nothing and counts nothing twice when a folder dies mid-fold', async () => {
    const sent = events(50, ['killed']);
    await t.store.insertEvents(sent);
    await t.store.foldPending();
    const more = events(30, ['killed']);
    await t.store.insertEvents(more);
    const expected = await t.store.metricsSnapshot();
    // Block the fold inside its statement (after it dequeued) on a row lock, then kill its backend.
    const release = deferred();
    const blocker = admin.begin(async (tx) => {
      await tx.unsafe(`SELECT * FROM mlops.agg_latency FOR UPDATE`);
      await release.promise;
    });
    const victim = open('fold-victim', { every: 1e9 });
    const dying = victim.foldPending().then(() => 'finished', (error: unknown) => (error as Error).message);
    for (let i = 0; ; i++) {
      const [row] = await admin<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = 'fold-victim' AND wait_event_type = 'Lock'`;
      if (row!.n > 0) break;
      assert.ok(i < 500, 'the fold never reached the locked row');
      await new Promise((r) => setTimeout(r, 10));
    }
    await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fold-victim'`;
    assert.notEqual(await dying, 'finished');
    release.resolve();
    await blocker;
    await victim.close().catch(() => {});
    assert.equal(await t.store.unfoldedCount(), 30, 'the killed fold dequeued nothing');
    assert.deepEqual(await t.store.metricsSnapshot(), expected);
    await assertEqualsFreshRecount(t.store, 'after a killed fold');
    assert.equal((await requestsByBusiness(t.store)).get('killed'), 80);
  });

  it('acknowledges writes while a refresh rebuilds (no lock that blocks inserts)', async () => {
    // Enough folded events that the rebuild takes far longer than one insert.
    for (let i = 0; i < 6; i++) await t.store.insertEvents(events(5000, ['bulk-a', 'bulk-b']));
    await t.store.foldPending();
    let refreshing = true;
    const refresh = t.store.refreshAggregates({ force: true }).finally(() => {
      refreshing = false;
    });
    const writer = open('refresh-writer', { every: 1e9 });
    let duringRefresh = 0;
    try {
      for (let i = 0; i < 200 && refreshing; i++) {
        await writer.insertEvents(events(1, ['during-refresh']));
        if (refreshing) duringRefresh++;
      }
      const result = await refresh;
      assert.ok(result.status === 'done');
      assert.ok(duringRefresh > 0, 'no insert was acknowledged while the refresh ran');
    } finally {
      await writer.close();
    }
    await assertEqualsFreshRecount(t.store, 'after a refresh under writes');
  });

  it('never commits a write its deadline took out of the queue (503 = not stored)', async () => {
    const writer = openPostgresStore({ url: t.url!, poolMax: 2, connectTimeoutMs: 3000, statementTimeoutMs: 10000, requestTimeoutMs: 300, fold: { every: 1e9 } });
    const [first] = events(1, ['deadline']);
    const [second] = events(1, ['deadline']);
    // A row lock on the first event's key holds its commit in flight (maxConcurrentCommits is 1 on a pool of 2).
    const release = deferred();
    const holding = deferred();
    const blocker = admin.begin(async (tx) => {
      await tx.unsafe(`INSERT INTO mlops.ai_metrics (business_id, event_id, session_id, response_time_ms, success_rate, tokens_used,
        api_cost_usd, model_name, intent_detected, user_message_length, ai_response_length, response_type)
        VALUES ('deadline', $1, 's', 1, 1, 1, 0, 'm', 'i', 0, 0, 'r')`, [first!.event_id]);
      holding.resolve();
      await release.promise;
      throw new Error('rollback');
    }).catch(() => undefined);
    await holding.promise;
    try {
      const inFlight = writer.insertEvents([first!]).then(() => 'stored', (e: unknown) => (e as Error).name);
      const queued = await writer.insertEvents([second!]).then(() => undefined, (e: unknown) => e);
      assert.ok(queued instanceof WriteNotStartedError, `queued write: ${String(queued)}`);
      release.resolve();
      await blocker;
      await inFlight;
      await writer.foldPending();
      const rows = await admin<{ event_id: string }[]>`SELECT event_id FROM mlops.ai_metrics WHERE business_id = 'deadline'`;
      assert.ok(!rows.some((r) => r.event_id === second!.event_id), 'the write answered "not started" was committed later');
    } finally {
      release.resolve();
      await writer.close();
    }
  });
});

describe('migrations from the first schema: bigint ids, the log-spaced histogram, priced tokens and GenAI series', { skip: skipPostgres }, () => {
  it('upgrades a database created by 0001 with data in it', async () => {
    const db = await createTestDatabase('migrate_0001');
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`CREATE SCHEMA mlops;
        CREATE TABLE mlops.schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
        ${initialSchema}
        INSERT INTO mlops.schema_migrations (version, name) VALUES (1, 'initial');`);
      // An old deployment: ids near the 32-bit limit, raw events today, and an old purged day
      // whose only trace is the 0001 latency ladder (b25 = 900–1000 ms, b26 = 1000–1200 ms).
      await sql.unsafe(`SELECT setval('mlops.ai_metrics_id_seq', 2147483640)`);
      for (const [i, ms] of [800, 900, 1000, 1100, 1200].entries()) {
        await sql.unsafe(`INSERT INTO mlops.ai_metrics (business_id, event_id, session_id, response_time_ms, success_rate, tokens_used,
          api_cost_usd, model_name, intent_detected, user_message_length, ai_response_length, response_type)
          VALUES ('old', 'e${i}', 's', ${ms}, 1, 10, 0, 'm', 'i', 0, 0, 'r')`);
      }
      await sql.unsafe(`INSERT INTO mlops.daily_latency (business_id, day, b25, b26) VALUES ('old', current_date - 100, 3, 1);
        INSERT INTO mlops.daily_business (business_id, day, requests, response_time_ms_sum, success_rate_sum, tokens_used, api_cost_usd,
          appointments_requested, appointments_booked, human_handoffs, errors) VALUES ('old', current_date - 100, 4, 4000, 4, 40, 0, 0, 0, 0, 0);
        INSERT INTO mlops.service_state (key, value) VALUES ('purged_before', to_char(current_date - 50, 'YYYY-MM-DD'));`);

      const store = openPostgresStore({ url: db.url, poolMax: 2, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
      try {
        const { applied } = await store.migrate();
        assert.deepEqual(applied, ['0002_append_only_ingest', '0003_priced_tokens_genai']);
        // 0003: first appearances and the GenAI histograms come from the events still stored; the
        // old events keep their cost as the client's.
        const before = await store.metricsSnapshot();
        const [oldest] = await sql<{ id: string }[]>`SELECT min(id)::text AS id FROM mlops.ai_metrics WHERE business_id = 'old'`;
        assert.equal(before.genai.length, 1);
        assert.deepEqual([before.genai[0]!.operation_name, before.genai[0]!.duration.count, before.genai[0]!.input.count], ['chat', 5, 0]);
        const [sources] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM mlops.ai_metrics WHERE cost_source = 'client'`;
        assert.equal(sources!.n, 5);
        const [column] = await sql<{ data_type: string }[]>`SELECT data_type FROM information_schema.columns
          WHERE table_schema = 'mlops' AND table_name = 'ai_metrics' AND column_name = 'id'`;
        assert.equal(column!.data_type, 'bigint');
        // The events of 0001 were already in its aggregates: nothing is queued to be counted again.
        assert.equal(await store.unfoldedCount(), 0);
        const created = await store.insertEvents(events(20, ['old']));
        assert.ok(created.some((o) => o.id > 2 ** 31 - 1), 'ids continue past the 32-bit limit');
        assert.equal(new Set(created.map((o) => o.id)).size, 20);
        await store.foldPending();
        const today = await store.analyticsWindow('old', 1);
        assert.equal(today.totals.requests, 20, 'the new events (0001 rows are counted by refresh below)');
        const refreshed = await store.refreshAggregates({ force: true });
        assert.ok(refreshed.status === 'done');
        const after = await store.metricsSnapshot();
        assert.deepEqual(after.requests.filter((r) => r.intent === 'i').map((r) => String(r.first_id)), [oldest!.id], 'first appearance of a label value');
        assert.deepEqual(after.models.filter((m) => m.model_name === 'm').map((m) => [String(m.first_id), m.unpriced_tokens]), [[oldest!.id, 0]]);
        const window = await store.analyticsWindow('old', 200);
        assert.equal(window.totals.requests, 4 + 5 + 20);
        // The converted purged day keeps its 4 observations, the raw events their own buckets.
        assert.equal(window.latency_buckets.reduce((a, b) => a + b.count, 0), 4 + 5 + 20);
      } finally {
        await store.close();
      }
    } finally {
      await sql.end();
      await db.drop();
    }
  });
});
