/**
 * The store itself, on both backends: group commit, idempotency, the per-day series, refresh
 * repairing drift, retention keeping totals monotonic, concurrent migrations.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { toNewEvent, validateEvent } from '../src/core/event-schema.ts';
import { MIGRATIONS } from '../src/storage/migrations/index.ts';
import { openPostgresStore } from '../src/storage/postgres.ts';
import type { SqlStore } from '../src/storage/sql-store.ts';
import type { NewEvent } from '../src/storage/types.ts';
import { BACKENDS, openTestStore, type TestStore } from './helpers/stores.ts';
import { makeEvents } from './helpers/events.ts';
import { createTestDatabase } from './helpers/postgres.ts';

function toEvents(bodies: ReturnType<typeof makeEvents>): NewEvent[] {
  return bodies.map((b) => {
    const r = validateEvent(b);
    assert.ok(r.ok);
    return toNewEvent(r.value, (b.event_id as string) ?? randomUUID());
  });
}

const dayOffset = (days: number, hour = 12) => {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() - days);
  d.setUTCHours(hour, 0, 0, 0);
  return d.toISOString();
};

for (const backend of BACKENDS) {
  describe(`store on ${backend.name}`, { skip: backend.skip }, () => {
    let t: TestStore;
    let store: SqlStore;

    before(async () => {
      t = await openTestStore(backend);
      store = t.store;
    });
    after(() => t?.close());

    it('shares commits between concurrent writers and answers each after its commit', async () => {
      const events = toEvents(makeEvents(120, 1, ['group-commit']));
      const before = store.writeStats.commits;
      const outcomes = await Promise.all(events.map((e) => store.insertEvents([e])));
      const commits = store.writeStats.commits - before;
      assert.ok(commits < events.length / 2, `120 concurrent events took ${commits} commits`);
      const ids = new Set(outcomes.map(([o]) => o!.id));
      assert.equal(ids.size, 120);
      assert.ok(outcomes.every(([o]) => o!.duplicate === false));
      const totals = (await store.businessTotals()).find((b) => b.business_id === 'group-commit');
      assert.equal(totals?.requests, 120);
    });

    it('stores a repeated event_id once, also within one commit', async () => {
      const [e] = toEvents(makeEvents(1, 2, ['idem']));
      const [a, b] = await Promise.all([store.insertEvents([e!]), store.insertEvents([{ ...e! }])]);
      const [c] = await store.insertEvents([e!]);
      assert.equal(a[0]!.id, b[0]!.id);
      assert.equal(c!.id, a[0]!.id);
      assert.deepEqual([a[0]!.duplicate, b[0]!.duplicate].sort(), [false, true]);
      assert.equal(c!.duplicate, true);
      const inOne = await store.insertEvents([{ ...e!, event_id: 'same' }, { ...e!, event_id: 'same' }]);
      assert.equal(inOne[0]!.id, inOne[1]!.id);
      assert.deepEqual(inOne.map((o) => o.duplicate), [false, true]);
      const totals = (await store.businessTotals()).find((t) => t.business_id === 'idem');
      assert.equal(totals?.requests, 2);
    });

    it('builds the per-day series of a window from event times', async () => {
      const events = toEvents(makeEvents(30, 3, ['daily'])).map((e, i) => ({ ...e, created_at: dayOffset(i % 5) }));
      await store.insertEvents(events);
      const w = await store.analyticsWindow('daily', 7);
      assert.equal(w.daily.length, 7);
      for (let d = 0; d < 7; d++) {
        const date = dayOffset(d).slice(0, 10);
        const mine = events.filter((e) => e.created_at!.startsWith(date));
        const row = w.daily.find((r) => r.date === date)!;
        assert.equal(row.requests, mine.length, date);
        assert.equal(row.response_time_ms_sum, mine.reduce((a, e) => a + e.response_time_ms, 0));
        assert.ok(Math.abs(row.api_cost_usd - mine.reduce((a, e) => a + e.api_cost_usd, 0)) < 1e-9);
      }
      const narrow = await store.analyticsWindow('daily', 2);
      assert.equal(narrow.totals.requests, events.filter((e) => e.created_at! >= dayOffset(1, 0)).length);
    });

    it('repairs drifted aggregates on refresh and reports the drift', async () => {
      const events = toEvents(makeEvents(10, 4, ['drift']));
      await store.insertEvents(events);
      await store.foldPending();
      const before = await store.metricsSnapshot();
      // Corrupt the totals behind the service's back.
      await t.raw.query(`UPDATE mlops.agg_business SET requests = requests + 5 WHERE business_id = 'drift' AND NOT archived`);
      const result = await store.refreshAggregates({ force: true });
      assert.equal(result.status, 'done');
      assert.ok(result.status === 'done');
      assert.deepEqual(result.report.drift, [{ business_id: 'drift', before: 15, after: 10 }]);
      assert.deepEqual(await store.metricsSnapshot(), before);
      const again = await store.refreshAggregates({ minIntervalMs: 60_000 });
      assert.equal(again.status, 'skipped');
    });

    it('purges old raw events while every total stays the same', async () => {
      const old = toEvents(makeEvents(12, 5, ['retention'])).map((e) => ({ ...e, created_at: dayOffset(40) }));
      const recent = toEvents(makeEvents(8, 6, ['retention'])).map((e) => ({ ...e, created_at: dayOffset(1) }));
      await store.insertEvents([...old, ...recent]);
      const before = await store.metricsSnapshot();
      const report = await store.purgeBefore(dayOffset(30).slice(0, 10));
      assert.ok(report.events_deleted >= 12);
      assert.deepEqual(await store.metricsSnapshot(), before, 'totals unchanged by the purge');
      const refreshed = await store.refreshAggregates({ force: true });
      assert.equal(refreshed.status, 'done');
      assert.deepEqual(await store.metricsSnapshot(), before, 'and unchanged by a refresh after it');
      const again = await store.purgeBefore(dayOffset(30).slice(0, 10));
      assert.equal(again.events_deleted, 0);
      const window = await store.analyticsWindow('retention', 60);
      assert.equal(window.totals.requests, 20, 'daily rollups keep the purged days');
    });

    // PGlite allows one process per folder: there is no start-up race to test.
    if (backend.name === 'postgres') it('applies migrations once when several instances start together', async () => {
      const db = await createTestDatabase('migrate');
      const stores = [1, 2, 3, 4].map(() =>
        openPostgresStore({ url: db.url, poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 10000 }),
      );
      try {
        const results = await Promise.all(stores.map((s) => s.migrate()));
        assert.deepEqual(results.map((r) => r.applied.length).sort(), [0, 0, 0, MIGRATIONS.length]);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await db.drop();
      }
    });
  });
}
