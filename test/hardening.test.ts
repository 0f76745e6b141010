/**
 * Input PostgreSQL would refuse or alter (NUL, lone surrogates) and data errors the database
 * raises anyway (SQLSTATE class 22): a 400 naming the field, nothing stored, on both stores; and
 * in a shared commit, one bad job fails alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StoreDataError } from '../src/storage/errors.ts';
import type { NewEvent } from '../src/storage/types.ts';
import { call } from './helpers/http.ts';
import { BACKENDS, openTestStore, serverOn, type TestStore } from './helpers/stores.ts';

const KEY = 'hardening-key-0123456789';
const VALID = { business_id: 'clinic', response_time_ms: 120, tokens_used: 30, intent_detected: 'booking', model_name: 'gpt-4o-mini' };
const HOSTILE = { nul: 'a\u0000b', 'lone high surrogate': 'x\ud800', 'lone low surrogate': '\udc00y', 'reversed pair': '\udc00\ud800' };
const STRING_FIELDS = ['business_id', 'event_id', 'conversation_id', 'session_id', 'model_name', 'intent_detected', 'response_type'];

async function storedCount(base: string): Promise<number> {
  const r = await call(`${base}/analytics`, { headers: { 'x-api-key': KEY } });
  assert.equal(r.status, 200, r.text);
  return (r.body.businesses as { total_requests: number }[]).reduce((n, b) => n + b.total_requests, 0);
}

for (const backend of BACKENDS) {
  describe(`strings PostgreSQL cannot store, on ${backend.name}`, { skip: backend.skip }, () => {
    const server = serverOn(backend, { MLOPS_API_KEY: KEY, DB_MIGRATE_ON_START: 'true' });

    it('a NUL or a lone surrogate in any string field of /track: 400 naming the field, nothing stored', async () => {
      const before = await storedCount(server().url);
      for (const field of STRING_FIELDS) {
        for (const [what, value] of Object.entries(HOSTILE)) {
          const r = await call(`${server().url}/track`, { method: 'POST', headers: { 'x-api-key': KEY }, json: { ...VALID, [field]: value } });
          assert.equal(r.status, 400, `${field} with a ${what}: ${r.text}`);
          assert.equal(r.body.error, 'validation_error');
          assert.deepEqual(r.body.details.map((d: { field: string }) => d.field), [field], `${field} with a ${what}`);
        }
      }
      assert.equal(await storedCount(server().url), before);
    });

    it('one bad item in a batch: 400 naming events[i].field, none of the batch stored', async () => {
      const before = await storedCount(server().url);
      const events = Array.from({ length: 5 }, (_, i) => ({ ...VALID, event_id: `batch-${i}` }));
      events[3] = { ...events[3]!, intent_detected: 'book\u0000ing' };
      const r = await call(`${server().url}/track/batch`, { method: 'POST', headers: { 'x-api-key': KEY }, json: { events } });
      assert.equal(r.status, 400, r.text);
      assert.deepEqual(r.body.details.map((d: { field: string }) => d.field), ['events[3].intent_detected']);
      assert.equal(await storedCount(server().url), before);
    });

    it('a NUL in the path of /analytics/{business_id}: 400 naming business_id', async () => {
      const r = await call(`${server().url}/analytics/a%00b`, { headers: { 'x-api-key': KEY } });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.details[0].field, 'business_id');
      assert.match(r.body.message, /NUL/);
    });

    it('a string that is valid Unicode (astral, combining, RTL) is stored and read back unchanged', async () => {
      const business = 'clinic-💥-é-שלום';
      const r = await call(`${server().url}/track`, { method: 'POST', headers: { 'x-api-key': KEY }, json: { ...VALID, business_id: business } });
      assert.equal(r.status, 200, r.text);
      const a = await call(`${server().url}/analytics/${encodeURIComponent(business)}`, { headers: { 'x-api-key': KEY } });
      assert.equal(a.status, 200, a.text);
      assert.equal(a.body.business_id, business);
      assert.equal(a.body.metrics.total_requests, 1);
    });
  });

  describe(`data errors from the database, on ${backend.name}`, { skip: backend.skip }, () => {
    let t: TestStore;
    before(async () => {
      t = await openTestStore(backend);
    });
    after(() => t?.close());

    const event = (eventId: string, over: Partial<NewEvent> = {}): NewEvent => ({
      business_id: 'data-errors', event_id: eventId, conversation_id: null, session_id: '', response_time_ms: 10, success_rate: 1,
      tokens_used: 1, prompt_tokens: null, completion_tokens: null, api_cost_usd: 0, model_name: 'm', intent_detected: 'i',
      response_type: 'answer', appointment_requested: false, appointment_booked: false, human_handoff_requested: false,
      user_message_length: 0, ai_response_length: 0, user_satisfaction: null, ...over,
    });

    it('SQLSTATE class 22 is a StoreDataError, and a bad job in a shared commit fails alone', async () => {
      // Past validation on purpose: what reaches the store must still never fail its neighbours.
      const jobs = [
        t.store.insertEvents([event('good-1')]),
        t.store.insertEvents([event('bad', { intent_detected: 'x\u0000y' })]),
        t.store.insertEvents([event('good-2'), event('good-3')]),
      ];
      const [good1, bad, good2] = (await Promise.allSettled(jobs)) as [PromiseSettledResult<unknown>, PromiseSettledResult<unknown>, PromiseSettledResult<unknown>];
      assert.equal(good1.status, 'fulfilled');
      assert.equal(good2.status, 'fulfilled');
      assert.equal(bad.status, 'rejected');
      const error = (bad as PromiseRejectedResult).reason;
      assert.ok(error instanceof StoreDataError, `got ${error}`);
      assert.match(error.sqlState, /^22/);
      const rows = await t.raw.query<{ event_id: string }>(`SELECT event_id FROM mlops.ai_metrics WHERE business_id = 'data-errors' ORDER BY event_id`);
      assert.deepEqual(rows.map((r) => r.event_id), ['good-1', 'good-2', 'good-3']);
    });
  });
}
