/** The label cap of `/metrics` (src/core/label-cap.ts), on hand-made snapshots. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capLabels, OTHER } from '../../src/core/label-cap.ts';
import type { GenAiSeries, MetricsSnapshot, ModelSeries, RequestSeries } from '../../src/storage/types.ts';

const req = (business_id: string, response_type: string, intent: string, requests: number, first_id: number | null): RequestSeries => ({
  business_id, response_type, intent, requests, first_id,
});
const model = (business_id: string, model_name: string, requests: number, first_id: number | null): ModelSeries => ({
  business_id, model_name, requests, tokens_used: requests * 10, api_cost_usd: requests / 100, first_id, unpriced_tokens: requests,
});
const hist = (n: number) => ({ count: n, sum: n * 100, cumulative: [0, n] });
const genai = (business_id: string, model_name: string, operation_name: string, n: number, first_id: number): GenAiSeries => ({
  business_id, model_name, operation_name, first_id, duration: hist(n), input: hist(n), output: hist(0),
});
const snapshot = (parts: Partial<MetricsSnapshot>): MetricsSnapshot => ({
  requests: [], businesses: [], models: [], genai: [], latency: { count: 0, sum_ms: 0, cumulative: [] }, ...parts,
});

describe('capLabels', () => {
  it('keeps the values that appeared first (not the most frequent), sums the rest under other, and counts them', () => {
    const s = snapshot({
      requests: [
        req('a', 'answer', 'booking', 5, 1),
        req('a', 'answer', 'pricing', 1, 2),
        req('a', 'answer', 'zzz-late', 100, 30),
        req('a', 'error', 'late-too', 7, 40),
      ],
    });
    const capped = capLabels(s, 2);
    const rows = capped.requests.map((r) => [r.response_type, r.intent, r.requests]);
    assert.deepEqual(rows, [['answer', 'booking', 5], ['answer', 'pricing', 1], ['answer', OTHER, 100], ['error', OTHER, 7]]);
    assert.deepEqual(capped.overflow, [{ business_id: 'a', label: 'intent', events: 107 }]);
    // The sum over series is unchanged.
    assert.equal(capped.requests.reduce((n, r) => n + r.requests, 0), 113);
  });

  it('caps each business on its own; a business under the cap is untouched', () => {
    const s = snapshot({
      requests: [req('a', 't', 'x', 1, 1), req('a', 't', 'y', 1, 2), req('b', 't', 'x', 1, 3), req('b', 't', 'y', 1, 4), req('b', 't', 'z', 1, 5)],
    });
    const capped = capLabels(s, 2);
    assert.deepEqual(capped.requests.map((r) => `${r.business_id}:${r.intent}`), ['a:x', 'a:y', 'b:x', 'b:y', `b:${OTHER}`]);
  });

  it('null first ids (purged before they were recorded) count as oldest', () => {
    const capped = capLabels(snapshot({ requests: [req('a', 't', 'new', 1, 10), req('a', 't', 'ancient', 1, null)] }), 1);
    assert.deepEqual(capped.requests.map((r) => r.intent), [OTHER, 'ancient']);
  });

  it('caps model_name in the model and GenAI series with one ranking, and sums their values and histograms', () => {
    const s = snapshot({
      models: [model('a', 'm1', 3, 1), model('a', 'm2', 4, 2), model('a', 'm3', 5, 3)],
      genai: [genai('a', 'm1', 'chat', 3, 1), genai('a', 'm2', 'chat', 4, 2), genai('a', 'm3', 'chat', 5, 3), genai('a', 'm3', 'embeddings', 2, 9)],
    });
    const capped = capLabels(s, 1);
    assert.deepEqual(capped.models.map((m) => [m.model_name, m.requests, m.tokens_used, m.unpriced_tokens]), [['m1', 3, 30, 3], [OTHER, 9, 90, 9]]);
    assert.deepEqual(capped.genai.map((g) => [g.model_name, g.operation_name, g.duration.count, g.duration.cumulative]), [
      ['m1', 'chat', 3, [0, 3]],
      [OTHER, 'chat', 9, [0, 9]],
      [OTHER, OTHER, 2, [0, 2]],
    ]);
    assert.deepEqual(capped.overflow.map((o) => [o.label, o.events]), [['model_name', 9], ['operation_name', 2]]);
    // The snapshot itself is not modified.
    assert.equal(s.genai[1]!.duration.count, 4);
  });
});
