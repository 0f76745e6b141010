/**
 * Priced tokens and the label cap, black-box against a real server on each store:
 * - an event without `api_cost_usd` is priced from the table (`cost_source` price_table) or left
 *   unpriced (its tokens in `unpriced_tokens` and `ai_unpriced_tokens_total`, never $0 of cost);
 * - 1,500 distinct intents and models of one business make at most the cap's series plus `other`,
 *   `ai_label_overflow_events_total` counts the folded events, and the raw events keep their values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call } from './helpers/http.ts';
import { promtoolCheck, skipPromtool } from './helpers/promtool.ts';
import { BACKENDS, serverOn } from './helpers/stores.ts';

const KEY = 'pricing-key-0123456789abc';
const CAP = 20;
const headers = { 'x-api-key': KEY };

const series = (text: string, name: string, business: string) =>
  text.split('\n').filter((l) => l.startsWith(`${name}{`) && l.includes(`business_id="${business}"`));

for (const backend of BACKENDS) {
  describe(`prices at ingest and the label cap, on ${backend.name}`, { skip: backend.skip }, () => {
    const server = serverOn(backend, { MLOPS_API_KEY: KEY, METRICS_MAX_LABEL_VALUES: String(CAP) });

    it('prices a known model from the table, keeps a client cost, and shows an unknown model as unpriced tokens', async () => {
      const base = { business_id: 'priced', response_time_ms: 300 };
      const events = [
        { ...base, tokens_used: 1500, prompt_tokens: 1000, completion_tokens: 500, model_name: 'gpt-4o-mini-2024-07-18' }, // pattern match
        { ...base, tokens_used: 10, prompt_tokens: 5, completion_tokens: 5, model_name: 'gpt-4o-mini', api_cost_usd: 0.25 }, // client
        { ...base, tokens_used: 70, prompt_tokens: 30, completion_tokens: 40, model_name: 'house-model-7' }, // unknown model
        { ...base, tokens_used: 900, model_name: 'gpt-4o-mini' }, // no split: unpriced, not guessed
      ];
      const r = await call(`${server().url}/track/batch`, { method: 'POST', headers, json: { events } });
      assert.equal(r.status, 200, r.text);
      // gpt-4o-mini's table rates, $0.15 / $0.60 per 1M input / output tokens: 150 + 300 micro-dollars.
      const tableCost = 0.00045;

      const a = await call(`${server().url}/analytics/priced`, { headers });
      assert.equal(a.status, 200, a.text);
      assert.deepEqual(a.body.cost_by_source, { client_usd: 0.25, price_table_usd: tableCost, unpriced_requests: 2, unpriced_tokens: 970 });
      assert.equal(a.body.metrics.unpriced_tokens, 970);
      assert.equal(a.body.metrics.total_api_cost_usd, Math.round((0.25 + tableCost) * 1e6) / 1e6);

      const m = await call(`${server().url}/metrics`, { headers });
      assert.deepEqual(series(m.text, 'ai_unpriced_tokens_total', 'priced').sort(), [
        'ai_unpriced_tokens_total{business_id="priced",model_name="gpt-4o-mini"} 900',
        'ai_unpriced_tokens_total{business_id="priced",model_name="gpt-4o-mini-2024-07-18"} 0',
        'ai_unpriced_tokens_total{business_id="priced",model_name="house-model-7"} 70',
      ]);
      assert.ok(m.text.includes('ai_api_cost_usd_total{business_id="priced",model_name="house-model-7"} 0'), `an unpriced model adds no cost: ${series(m.text, 'ai_api_cost_usd_total', 'priced').join(' | ')}`);
    });

    it('1,500 distinct intents and models of one business: at most the cap plus other per label, overflow counted, promtool-clean', async () => {
      const N = 1500;
      const events = Array.from({ length: N }, (_, i) => ({
        business_id: 'chatty',
        response_time_ms: 100 + i,
        tokens_used: 10,
        api_cost_usd: 0.001,
        intent_detected: `intent-${String(i).padStart(4, '0')}`,
        model_name: `model-${String(i).padStart(4, '0')}`,
        response_type: i % 2 ? 'answer' : 'question',
      }));
      // The first CAP values in one batch, the rest after it: those CAP appeared first. (Within a
      // batch, rows are stored in event-id order, so "first" there follows the ids.)
      const chunks = [events.slice(0, CAP), events.slice(CAP, 500), events.slice(500, 1000), events.slice(1000)];
      for (const chunk of chunks) {
        const r = await call(`${server().url}/track/batch`, { method: 'POST', headers, json: { events: chunk } });
        assert.equal(r.status, 200, r.text);
      }
      const m = await call(`${server().url}/metrics`, { headers });
      assert.equal(m.status, 200);
      const requests = series(m.text, 'ai_requests_total', 'chatty');
      const intents = new Set(requests.map((l) => /intent="([^"]*)"/.exec(l)![1]));
      assert.equal(intents.size, CAP + 1, `intents printed: ${intents.size}`);
      assert.ok(intents.has('other') && intents.has('intent-0000') && intents.has(`intent-${String(CAP - 1).padStart(4, '0')}`), [...intents].join(','));
      assert.ok(!intents.has(`intent-${String(CAP).padStart(4, '0')}`), 'the 21st value to appear is summed under other');
      assert.ok(requests.length <= 2 * (CAP + 1), `ai_requests_total series: ${requests.length}`);
      assert.equal(series(m.text, 'ai_tokens_used_total', 'chatty').length, CAP + 1);
      const total = requests.reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      assert.equal(total, N, 'no event lost by the cap');
      const overflow = (label: string) => Number(series(m.text, 'ai_label_overflow_events_total', 'chatty').find((l) => l.includes(`label="${label}"`))?.split(' ').pop());
      assert.equal(overflow('intent'), N - CAP);
      assert.equal(overflow('model_name'), N - CAP);
      // Every GenAI series of the business: ≤ (CAP + 1) models × one operation × (2 token types + duration).
      const genaiCount = m.text.split('\n').filter((l) => l.startsWith('gen_ai_client_operation_duration_seconds_count{') && l.includes('business_id="chatty"')).length;
      assert.equal(genaiCount, CAP + 1);
      // The raw events keep every value: /analytics lists them all.
      const a = await call(`${server().url}/analytics/chatty`, { headers });
      assert.equal(a.body.by_intent.length, N);
      if (!skipPromtool) await promtoolCheck(m.text);
    });
  });
}
