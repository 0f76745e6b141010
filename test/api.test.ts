/**
 * The contract over real HTTP against the real server process, on PGlite and on PostgreSQL:
 * every route, every error row, idempotency, batches, analytics checked against numbers computed
 * here from the events sent, the Prometheus exposition (promtool), and a restart.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as z from 'zod/mini';
import * as schemas from '../src/core/response-schemas.ts';
import { LATENCY_RELATIVE_ACCURACY } from '../src/storage/latency-buckets.ts';
import { exactPercentile, expectedTotals, makeEvents, type TrackBody } from './helpers/events.ts';
import { businessSeries, call, parseExposition } from './helpers/http.ts';
import { promtoolCheck, skipPromtool } from './helpers/promtool.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { BACKENDS } from './helpers/stores.ts';

const KEY_A = 'test-key-aaaaaaaaaaaaaaaa';
const KEY_B = 'test-key-bbbbbbbbbbbbbbbb';
const auth = { 'x-api-key': KEY_A };

function conforms(schema: z.ZodMiniType, body: unknown) {
  const r = schema.safeParse(body);
  assert.ok(r.success, `response does not match its OpenAPI schema: ${JSON.stringify(r.error?.issues)}\n${JSON.stringify(body)}`);
}

const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) <= eps, `${a} ≠ ${b}`);

for (const backend of BACKENDS) {
  describe(`HTTP API on ${backend.name}`, { skip: backend.skip }, () => {
    let server: ServerProcess;
    let env: Record<string, string>;
    let cleanup: () => Promise<void>;
    const url = (path: string) => `${server.url}${path}`;
    const track = (body: unknown, headers: Record<string, string> = auth) => call(url('/track'), { method: 'POST', headers, json: body });
    const totalsOf = async (business: string) =>
      (await call(url(`/analytics/${business}`), { headers: auth })).body.metrics.total_requests as number;

    before(async () => {
      const p = await backend.provision();
      cleanup = p.cleanup;
      env = { ...p.env, MLOPS_API_KEYS: `${KEY_A},${KEY_B}`, ENVIRONMENT: 'test', REFRESH_MIN_INTERVAL_SECONDS: '60' };
      server = await startServerProcess(env);
    });
    after(async () => {
      await server?.stop();
      await cleanup?.();
    });

    it('GET /health answers the contract fields', async () => {
      const r = await call(url('/health'));
      assert.equal(r.status, 200);
      conforms(schemas.healthSchema, r.body);
      assert.equal(r.body.environment, 'test');
      assert.deepEqual(r.body.security, { api_key_required: true, metrics_token_required: true });
      assert.equal(r.body.runtime.name, 'server');
      assert.match(r.body.timestamp, /Z$/);
      assert.equal(r.headers.get('x-cold-start'), 'false');
      assert.ok(r.headers.get('x-request-id'));
    });

    it('GET /health/detailed checks the database', async () => {
      const r = await call(url('/health/detailed'));
      assert.equal(r.status, 200);
      conforms(schemas.healthDetailedSchema, r.body);
      assert.equal(r.body.database.status, 'up');
      assert.equal(r.body.database.kind, backend.name);
      assert.equal(typeof r.body.database.latency_ms, 'number');
    });

    it('GET / lists the endpoints; GET /openapi.json documents every route', async () => {
      const r = await call(url('/'));
      conforms(schemas.indexSchema, r.body);
      assert.equal(r.body.endpoints.track, 'POST /track');
      const doc = await call(url('/openapi.json'));
      assert.equal(doc.body.openapi, '3.1.0');
      for (const [path, method] of [['/track', 'post'], ['/track/batch', 'post'], ['/analytics/{business_id}', 'get'], ['/metrics', 'get']]) {
        assert.ok(doc.body.paths[path!][method!], `${method} ${path}`);
      }
      assert.deepEqual(doc.body.components.schemas.TrackEvent.required, ['business_id', 'response_time_ms', 'tokens_used']);
    });

    it('POST /track stores an event and answers after the commit', async () => {
      const r = await track({ business_id: 'api-one', response_time_ms: 250, tokens_used: 100 });
      assert.equal(r.status, 200);
      conforms(schemas.trackResponseSchema, r.body);
      assert.equal(r.body.duplicate, false);
      assert.equal(await totalsOf('api-one'), 1);
    });

    it('accepts the key as Authorization: Bearer and any configured key', async () => {
      assert.equal((await track({ business_id: 'api-auth', response_time_ms: 1, tokens_used: 1 }, { authorization: `Bearer ${KEY_B}` })).status, 200);
    });

    describe('error rows of the contract: clear answer, nothing stored', () => {
      const business = 'api-errors';
      const rows: [string, () => Promise<{ status: number; body: any; headers: Headers }>, number, RegExp, string?][] = [
        ['malformed JSON', () => call(url('/track'), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: `{"business_id":"${business}",` }), 400, /^Malformed JSON/],
        ['empty body', () => call(url('/track'), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '' }), 400, /^No metrics data provided$/],
        ['empty object', () => track({}), 400, /^No metrics data provided$/],
        ['array body', () => track([{ business_id: business }]), 400, /must be a JSON object/],
        ['missing field', () => track({ business_id: business, tokens_used: 3 }), 400, /^Missing required field: response_time_ms$/, 'response_time_ms'],
        ['mistyped fields', () => track({ business_id: business, response_time_ms: 'fast', tokens_used: -1 }), 400, /fields are invalid/, 'tokens_used'],
        ['non-JSON content type', () => call(url('/track'), { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: '{}' }), 415, /application\/json/],
        ['body over the limit', () => track({ business_id: business, response_time_ms: 1, tokens_used: 1, pad: 'x'.repeat(1_100_000) }), 413, /exceeds the limit/],
        ['missing key', () => track({ business_id: business, response_time_ms: 1, tokens_used: 1 }, {}), 401, /API key required/],
        ['wrong key', () => track({ business_id: business, response_time_ms: 1, tokens_used: 1 }, { 'x-api-key': 'x'.repeat(24) }), 403, /Invalid API key/],
        ['wrong bearer', () => track({ business_id: business, response_time_ms: 1, tokens_used: 1 }, { authorization: 'Bearer nope' }), 403, /Invalid API key/],
      ];
      for (const [name, send, status, message, field] of rows) {
        it(`${name} → ${status}`, async () => {
          const r = await send();
          assert.equal(r.status, status, JSON.stringify(r.body));
          conforms(schemas.errorSchema, r.body);
          assert.match(r.body.message, message);
          if (field) assert.ok(r.body.details.some((d: { field: string }) => d.field === field), JSON.stringify(r.body.details));
          assert.equal(await totalsOf(business), 0);
        });
      }
    });

    it('unknown paths give JSON 404; wrong methods 405 with Allow; HEAD and a trailing slash work', async () => {
      const nf = await call(url('/nope'));
      assert.equal(nf.status, 404);
      conforms(schemas.errorSchema, nf.body);
      const na = await call(url('/track'), { method: 'GET', headers: auth });
      assert.equal(na.status, 405);
      assert.equal(na.headers.get('allow'), 'POST, OPTIONS');
      const head = await fetch(url('/health'), { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      assert.equal((await call(url('/health/'))).status, 200);
    });

    it('stores a repeated event once (event_id or Idempotency-Key) and answers duplicate:true', async () => {
      const body = { business_id: 'api-idem', response_time_ms: 10, tokens_used: 5, event_id: randomUUID() };
      const [a, b] = await Promise.all([track(body), track(body)]);
      assert.equal(a.body.id, b.body.id);
      assert.deepEqual([a.body.duplicate, b.body.duplicate].sort(), [false, true]);
      const key = randomUUID();
      const h1 = await track({ business_id: 'api-idem', response_time_ms: 10, tokens_used: 5 }, { ...auth, 'idempotency-key': key });
      const h2 = await track({ business_id: 'api-idem', response_time_ms: 10, tokens_used: 5 }, { ...auth, 'idempotency-key': key });
      assert.equal(h2.body.duplicate, true);
      assert.equal(h2.body.event_id, key);
      assert.equal(h1.body.id, h2.body.id);
      const clash = await track({ ...body, event_id: 'other' }, { ...auth, 'idempotency-key': key });
      assert.equal(clash.status, 400);
      assert.equal(await totalsOf('api-idem'), 2);
    });

    it('POST /track/batch is all or nothing', async () => {
      const events = makeEvents(20, 11, ['api-batch']);
      const bad = [...events.slice(0, 10), { ...events[10]!, tokens_used: 'lots' }, ...events.slice(11)];
      const rejected = await call(url('/track/batch'), { method: 'POST', headers: auth, json: { events: bad } });
      assert.equal(rejected.status, 400);
      assert.equal(rejected.body.details[0].field, 'events[10].tokens_used');
      assert.equal(await totalsOf('api-batch'), 0);
      const tooMany = await call(url('/track/batch'), { method: 'POST', headers: auth, json: { events: makeEvents(501, 12, ['api-batch']) } });
      assert.equal(tooMany.status, 400);
      const ok = await call(url('/track/batch'), { method: 'POST', headers: auth, json: { events } });
      assert.equal(ok.status, 200);
      conforms(schemas.batchResponseSchema, ok.body);
      assert.equal(ok.body.stored, 20);
      const repeat = await call(url('/track/batch'), { method: 'POST', headers: auth, json: { events } });
      assert.equal(repeat.body.stored, 0);
      assert.equal(repeat.body.duplicates, 20);
      assert.equal(await totalsOf('api-batch'), 20);
    });

    describe('analytics and metrics against numbers computed from the events sent', () => {
      const businesses = ['calc-dental', 'calc-law', 'calc-repair'];
      let sent: TrackBody[];
      before(async () => {
        sent = makeEvents(90, 21, businesses);
        await call(url('/track/batch'), { method: 'POST', headers: auth, json: { events: sent.slice(0, 60) } });
        await Promise.all(sent.slice(60).map((e) => track(e)));
      });

      it('GET /analytics/{id} matches counts, sums, means, rates and the per-day series', async () => {
        for (const business of businesses) {
          const mine = sent.filter((e) => e.business_id === business);
          const want = expectedTotals(mine);
          const r = await call(url(`/analytics/${business}?days=7`), { headers: auth });
          assert.equal(r.status, 200);
          conforms(schemas.analyticsSchema, r.body);
          const m = r.body.metrics;
          assert.equal(r.body.period, '7_days');
          assert.equal(m.total_requests, want.total_requests);
          assert.equal(m.total_conversations, want.total_conversations);
          assert.equal(m.total_tokens_used, want.total_tokens_used);
          assert.equal(m.appointment_requests, want.appointment_requests);
          assert.equal(m.appointments_booked, want.appointments_booked);
          assert.equal(m.human_handoffs, want.human_handoffs);
          close(m.avg_response_time_ms, want.avg_response_time_ms, 0.005);
          close(m.avg_tokens_used, want.avg_tokens_used, 0.005);
          close(m.total_api_cost_usd, want.total_api_cost_usd, 1e-6);
          close(m.appointment_conversion_rate, want.appointment_conversion_rate, 5e-5);
          close(m.success_rate, want.success_rate, 5e-5);
          close(m.error_rate, want.error_rate, 5e-5);
          for (const [q, key] of [[0.5, 'p50_response_time_ms'], [0.95, 'p95_response_time_ms']] as const) {
            const truth = exactPercentile(want.sorted_response_times, q);
            // The stated bound, plus the answer's rounding to 0.01 ms.
            const error = Math.abs(m[key] - truth);
            assert.ok(error <= truth * LATENCY_RELATIVE_ACCURACY + 0.01, `${business} ${key} ${m[key]} vs exact ${truth}: ${((error / truth) * 100).toFixed(2)} %`);
          }
          const intents = new Map<string, number>();
          for (const e of mine) intents.set(e.intent_detected as string, (intents.get(e.intent_detected as string) ?? 0) + 1);
          assert.deepEqual(new Map(r.body.by_intent.map((i: { intent: string; requests: number }) => [i.intent, i.requests])), intents);
          const modelTokens = new Map<string, number>();
          for (const e of mine) modelTokens.set(e.model_name as string, (modelTokens.get(e.model_name as string) ?? 0) + e.tokens_used);
          assert.deepEqual(new Map(r.body.by_model.map((x: { model_name: string; tokens_used: number }) => [x.model_name, x.tokens_used])), modelTokens);
          assert.equal(r.body.daily.length, 7);
          const today = r.body.daily.at(-1);
          assert.equal(today.date, new Date().toISOString().slice(0, 10));
          assert.equal(today.requests, want.total_requests);
          close(today.avg_response_time_ms, want.avg_response_time_ms, 0.005);
          close(today.cost_usd, want.total_api_cost_usd, 1e-6);
          assert.ok(r.body.daily.slice(0, -1).every((d: { requests: number }) => d.requests === 0));
        }
      });

      it('a business with no events gets zeros; a bad days value a 400', async () => {
        const r = await call(url('/analytics/nobody-here'), { headers: auth });
        assert.equal(r.status, 200);
        assert.equal(r.body.metrics.total_requests, 0);
        assert.equal(r.body.metrics.p95_response_time_ms, 0);
        assert.equal(r.body.daily.length, 30);
        for (const days of ['abc', '0', '400', '1.5']) {
          const bad = await call(url(`/analytics/x?days=${days}`), { headers: auth });
          assert.equal(bad.status, 400, days);
          assert.match(bad.body.message, /days must be an integer/);
        }
        assert.equal((await call(url('/analytics/x'))).status, 401);
      });

      it('GET /analytics has one summary row per business', async () => {
        const r = await call(url('/analytics'), { headers: auth });
        conforms(schemas.summarySchema, r.body);
        for (const business of businesses) {
          const row = r.body.businesses.find((b: { business_id: string }) => b.business_id === business);
          const want = expectedTotals(sent.filter((e) => e.business_id === business));
          assert.equal(row.total_requests, want.total_requests);
          close(row.total_api_cost_usd, want.total_api_cost_usd);
          close(row.avg_response_time_ms, want.avg_response_time_ms, 0.005);
        }
      });

      it('GET /metrics prints the business series from stored events and passes promtool', async () => {
        const r = await call(url('/metrics'), { headers: auth });
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
        const series = parseExposition(r.text);
        for (const business of businesses) {
          const mine = sent.filter((e) => e.business_id === business);
          const byLabels = new Map<string, number>();
          for (const e of mine) {
            const key = `ai_requests_total{business_id="${business}",intent="${e.intent_detected}",response_type="${e.response_type}"}`;
            byLabels.set(key, (byLabels.get(key) ?? 0) + 1);
          }
          for (const [key, n] of byLabels) assert.equal(series.get(key), n, key);
          const handoff = (reason: string) => mine.filter((e) => e.human_handoff_requested && (e.response_type === 'error') === (reason === 'error')).length;
          assert.equal(series.get(`human_handoffs_total{business_id="${business}",reason="error"}`), handoff('error'));
          assert.equal(series.get(`human_handoffs_total{business_id="${business}",reason="complex_query"}`), handoff('complex_query'));
          assert.equal(series.get(`appointments_booked_total{business_id="${business}"}`), mine.filter((e) => e.appointment_booked).length);
          const flash = mine.filter((e) => e.model_name === 'gemini-1.5-flash');
          close(series.get(`ai_api_cost_usd_total{business_id="${business}",model_name="gemini-1.5-flash"}`) ?? 0, flash.reduce((a, e) => a + (e.api_cost_usd as number), 0));
          close(series.get(`ai_success_rate{business_id="${business}"}`)!, expectedTotals(mine).success_rate, 1e-9);
        }
        assert.equal(series.get('ai_system_info{monitoring="prometheus",service="mlops-service-prometheus",version="1.0.0"}'), 1);
        const count = series.get('ai_response_time_seconds_count')!;
        assert.equal(series.get('ai_response_time_seconds_bucket{le="+Inf"}'), count);
        assert.ok(series.get('ai_response_time_seconds_bucket{le="0.5"}')! <= series.get('ai_response_time_seconds_bucket{le="1"}')!);
        assert.ok([...series.keys()].some((k) => k.startsWith('mlops_instance_requests_total{') && k.includes('runtime="server"')));
      });

      it('the exposition passes promtool check metrics', { skip: skipPromtool }, async () => {
        await promtoolCheck((await call(url('/metrics'), { headers: auth })).text);
      });

      it('POST /refresh-metrics re-derives the aggregates (no drift) and then rate-limits itself', async () => {
        const before = businessSeries((await call(url('/metrics'), { headers: auth })).text);
        const first = await call(url('/refresh-metrics?force=true'), { method: 'POST', headers: auth });
        assert.equal(first.status, 200);
        conforms(schemas.refreshResponseSchema, first.body);
        assert.equal(first.body.status, 'success');
        assert.deepEqual(first.body.report.drift, []);
        const second = await call(url('/refresh-metrics'), { method: 'POST', headers: auth });
        assert.equal(second.body.status, 'skipped');
        assert.equal(businessSeries((await call(url('/metrics'), { headers: auth })).text), before);
      });

      it('a restart changes nothing', async () => {
        const before = businessSeries((await call(url('/metrics'), { headers: auth })).text);
        const analyticsBefore = (await call(url('/analytics'), { headers: auth })).body.businesses;
        assert.equal(await server.stop(), 0, 'clean exit on SIGTERM');
        server = await startServerProcess(env);
        assert.equal(businessSeries((await call(url('/metrics'), { headers: auth })).text), before);
        assert.deepEqual((await call(url('/analytics'), { headers: auth })).body.businesses, analyticsBefore);
      });
    });
  });
}
