/**
 * The `/metrics` exposition, sample by sample, against a known set of events: a real server
 * process on each store gets hand-picked events (response times on and around every bucket
 * bound, defaults left out, a repeat, rejected requests, a business id that needs escaping), and
 * every business sample it prints (`ai_*`, `gen_ai_*`, `appointments_*`, `human_handoffs_*`) must equal what
 * the contract's table says for those events: histogram buckets cumulative per `le`, `_sum`,
 * `_count`, every counter and gauge; no sample missing, none extra. The same text then passes
 * `promtool check metrics`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VERSION } from '../src/version.ts';
import { call } from './helpers/http.ts';
import { promtoolCheck, skipPromtool } from './helpers/promtool.ts';
import { skipOrFail } from './helpers/skip.ts';
import { BACKENDS, serverOn } from './helpers/stores.ts';

type Event = {
  business_id: string;
  response_time_ms: number;
  tokens_used: number;
  prompt_tokens?: number;
  completion_tokens?: number;
  event_id?: string;
  success_rate?: number;
  api_cost_usd?: number;
  model_name?: string;
  intent_detected?: string;
  response_type?: string;
  appointment_requested?: boolean;
  appointment_booked?: boolean;
  human_handoff_requested?: boolean;
};

const A = 'expo-a';
const B = 'expo-b';
// Quote, backslash and a newline: label values the exposition must escape.
const ODD = 'expo "odd"\\one\nline';

/**
 * Response times straddle every bucket bound (stored rounded to whole ms: 99.6 and 100.4 are
 * 100, inside le=0.1; 100.5 is 101, outside). Costs and success rates are exact in binary or in
 * whole micro-dollars, so the expected sums are exact too.
 */
const EVENTS: Event[] = [
  { business_id: A, response_time_ms: 0, tokens_used: 10, event_id: 'expo-dup', success_rate: 1, api_cost_usd: 0.000001, model_name: 'gpt-4o-mini', intent_detected: 'booking', response_type: 'answer', appointment_requested: true, appointment_booked: true },
  { business_id: A, response_time_ms: 99.6, tokens_used: 20, success_rate: 0.5, api_cost_usd: 0.5, model_name: 'gpt-4o-mini', intent_detected: 'booking', response_type: 'answer', appointment_requested: true },
  { business_id: A, response_time_ms: 100.4, tokens_used: 30, success_rate: 0.25, response_type: 'error', human_handoff_requested: true },
  { business_id: A, response_time_ms: 100.5, tokens_used: 40, api_cost_usd: 1.25, model_name: 'gpt-4o-mini', intent_detected: 'pricing', response_type: 'answer', human_handoff_requested: true },
  { business_id: A, response_time_ms: 500, tokens_used: 0, success_rate: 0, response_type: 'error' },
  { business_id: A, response_time_ms: 500.5, tokens_used: 7, intent_detected: 'booking', response_type: 'answer' },
  { business_id: B, response_time_ms: 1000, tokens_used: 1000, api_cost_usd: 0.003, model_name: 'claude-3-5-haiku', intent_detected: 'pricing', response_type: 'answer', appointment_requested: true },
  { business_id: B, response_time_ms: 1999, tokens_used: 2000, success_rate: 0.75, api_cost_usd: 0.123456, model_name: 'claude-3-5-haiku', response_type: 'answer', appointment_requested: false, appointment_booked: false },
  { business_id: B, response_time_ms: 2000, tokens_used: 5, response_type: 'error', human_handoff_requested: true },
  { business_id: B, response_time_ms: 4999.4, tokens_used: 6, intent_detected: 'pricing' },
  { business_id: B, response_time_ms: 5000, tokens_used: 7, success_rate: 0.5, model_name: 'claude-3-5-haiku' },
  { business_id: ODD, response_time_ms: 10000, tokens_used: 8, intent_detected: 'weird "intent"', response_type: 'answer' },
  { business_id: ODD, response_time_ms: 10001, tokens_used: 9, human_handoff_requested: true },
  { business_id: ODD, response_time_ms: 123456, tokens_used: 11, api_cost_usd: 9999.999999, model_name: 'gpt-4o-mini' },
  // No api_cost_usd: priced from the table (a known model with a token split) or unpriced (an
  // unknown model); the events above without a cost and without a split are unpriced too.
  { business_id: B, response_time_ms: 640, tokens_used: 1500, prompt_tokens: 1000, completion_tokens: 500, model_name: 'gpt-4o-mini', intent_detected: 'pricing' },
  { business_id: ODD, response_time_ms: 50, tokens_used: 7, prompt_tokens: 3, completion_tokens: 4, model_name: 'house-model-7' },
];

const GENAI_DURATION_LE = ['0.01', '0.02', '0.04', '0.08', '0.16', '0.32', '0.64', '1.28', '2.56', '5.12', '10.24', '20.48', '40.96', '81.92'];
const GENAI_TOKENS_LE = ['1', '4', '16', '64', '256', '1024', '4096', '16384', '65536', '262144', '1048576', '4194304', '16777216', '67108864'];

/**
 * Micro-dollars of a call the price table prices, by hand: gpt-4o-mini at OpenAI's $0.15 / $0.60
 * per 1M input / output tokens (the table's entry, checked 2026-12-02); other models here have none.
 */
function tableMicros(model: string, input: number, output: number): number | undefined {
  return model === 'gpt-4o-mini' ? Math.round(input * 0.15 + output * 0.6) : undefined;
}

const BUCKETS_LE = ['0.1', '0.5', '1', '2', '5', '10']; // the contract's ai_response_time_seconds buckets

/** `name{label="value",…}` with labels sorted, values unescaped: one key per sample. */
const sampleKey = (name: string, labels: Record<string, string>) =>
  `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;

/** Every business sample the contract says these events produce. */
function expectedSamples(events: Event[]): Map<string, number> {
  const out = new Map<string, number>();
  const add = (name: string, labels: Record<string, string>, value: number) => {
    const key = sampleKey(name, labels);
    out.set(key, (out.get(key) ?? 0) + value);
  };
  const ms = events.map((e) => Math.round(e.response_time_ms));
  for (const le of BUCKETS_LE) add('ai_response_time_seconds_bucket', { le }, ms.filter((m) => m <= Number(le) * 1000).length);
  add('ai_response_time_seconds_bucket', { le: '+Inf' }, events.length);
  add('ai_response_time_seconds_sum', {}, ms.reduce((a, b) => a + b, 0) / 1000);
  add('ai_response_time_seconds_count', {}, events.length);
  const micros = new Map<string, number>();
  const durationMs = new Map<string, number>(); // summed in whole ms, divided once: the server sums ms too
  for (const e of events) {
    const business_id = e.business_id;
    const model_name = e.model_name ?? 'gemini-1.5-flash';
    const response_type = e.response_type ?? 'unknown';
    add('ai_requests_total', { business_id, response_type, intent: e.intent_detected ?? 'unknown' }, 1);
    add('ai_tokens_used_total', { business_id, model_name }, e.tokens_used);
    const costKey = sampleKey('ai_api_cost_usd_total', { business_id, model_name });
    const priced = e.api_cost_usd === undefined && e.prompt_tokens !== undefined ? tableMicros(model_name, e.prompt_tokens, e.completion_tokens ?? 0) : undefined;
    const unpriced = e.api_cost_usd === undefined && priced === undefined;
    micros.set(costKey, (micros.get(costKey) ?? 0) + (e.api_cost_usd !== undefined ? Math.round(e.api_cost_usd * 1e6) : (priced ?? 0)));
    add('ai_unpriced_tokens_total', { business_id, model_name }, unpriced ? e.tokens_used : 0);
    // The GenAI histograms: every call's duration; tokens of the calls that reported a split.
    const genai = { business_id, gen_ai_request_model: model_name, gen_ai_operation_name: 'chat' };
    const msRounded = Math.round(e.response_time_ms);
    for (const le of GENAI_DURATION_LE) add('gen_ai_client_operation_duration_seconds_bucket', { ...genai, le }, msRounded <= Number(le) * 1000 ? 1 : 0);
    add('gen_ai_client_operation_duration_seconds_bucket', { ...genai, le: '+Inf' }, 1);
    const sumKey = sampleKey('gen_ai_client_operation_duration_seconds_sum', genai);
    durationMs.set(sumKey, (durationMs.get(sumKey) ?? 0) + msRounded);
    add('gen_ai_client_operation_duration_seconds_count', genai, 1);
    for (const [type, tokens] of [['input', e.prompt_tokens], ['output', e.completion_tokens]] as const) {
      const labels = { ...genai, gen_ai_token_type: type };
      const seen = tokens === undefined ? 0 : 1;
      for (const le of GENAI_TOKENS_LE) add('gen_ai_client_token_usage_bucket', { ...labels, le }, seen && tokens! <= Number(le) ? 1 : 0);
      add('gen_ai_client_token_usage_bucket', { ...labels, le: '+Inf' }, seen);
      add('gen_ai_client_token_usage_sum', labels, tokens ?? 0);
      add('gen_ai_client_token_usage_count', labels, seen);
    }
    add('appointments_requested_total', { business_id }, e.appointment_requested ? 1 : 0);
    add('appointments_booked_total', { business_id }, e.appointment_booked ? 1 : 0);
    add('human_handoffs_total', { business_id, reason: 'error' }, e.human_handoff_requested && response_type === 'error' ? 1 : 0);
    add('human_handoffs_total', { business_id, reason: 'complex_query' }, e.human_handoff_requested && response_type !== 'error' ? 1 : 0);
  }
  for (const [key, m] of micros) out.set(key, m / 1e6);
  for (const [key, ms] of durationMs) out.set(key, ms / 1000);
  for (const business_id of new Set(events.map((e) => e.business_id))) {
    const own = events.filter((e) => e.business_id === business_id);
    add('ai_success_rate', { business_id }, own.reduce((a, e) => a + (e.success_rate ?? 1), 0) / own.length);
  }
  add('ai_system_info', { service: 'mlops-service-prometheus', version: VERSION, monitoring: 'prometheus' }, 1);
  return out;
}

const unescape = (v: string) => v.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));

/** Strict text-format parser: every line is a comment or a sample, or the test fails. */
function parse(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
    let consumed = 0;
    for (let l = label.exec(body); l; l = label.exec(body)) {
      labels[l[1]!] = unescape(l[2]!);
      consumed = label.lastIndex;
    }
    assert.equal(consumed, body.length, `unparseable labels: ${JSON.stringify(line)}`);
    // Values are Go float syntax, where NaN and Inf are case-insensitive (prom-client prints `Nan`).
    const raw = m[3]!.toLowerCase();
    const value = raw === '+inf' || raw === 'inf' ? Infinity : raw === '-inf' ? -Infinity : raw === 'nan' ? NaN : Number(raw);
    assert.ok(!Number.isNaN(value) || raw === 'nan', `bad value: ${line}`);
    const key = sampleKey(m[1]!, labels);
    assert.ok(!samples.has(key), `sample printed twice: ${line}`);
    samples.set(key, value);
  }
  return { samples, types };
}

const BUSINESS = /^(ai_|gen_ai_|appointments_|human_handoffs_)/;
const CONTRACT_TYPES: Record<string, string> = {
  ai_requests_total: 'counter',
  ai_response_time_seconds: 'histogram',
  ai_success_rate: 'gauge',
  ai_tokens_used_total: 'counter',
  ai_api_cost_usd_total: 'counter',
  appointments_requested_total: 'counter',
  appointments_booked_total: 'counter',
  human_handoffs_total: 'counter',
  ai_system_info: 'gauge',
  ai_unpriced_tokens_total: 'counter',
  gen_ai_client_token_usage: 'histogram',
  gen_ai_client_operation_duration_seconds: 'histogram',
};

for (const backend of BACKENDS) {
  describe(`/metrics exposition on ${backend.name}, sample by sample`, { skip: backend.skip }, () => {
    // Folding off: the scrape must add the unfolded tail itself; no background work either way.
    const server = serverOn(backend, { FOLD_INTERVAL_MS: '0' });

    it('every ai_*, gen_ai_*, appointments_* and human_handoffs_* sample equals the contract for the events sent; promtool check metrics passes', async (t) => {
      const post = (path: string, json: unknown) => call(`${server().url}${path}`, { method: 'POST', json });
      // One at a time, then the rest in one batch.
      for (const e of EVENTS.slice(0, 3)) assert.equal((await post('/track', e)).status, 200);
      const batch = await post('/track/batch', { events: EVENTS.slice(3) });
      assert.equal(batch.status, 200, batch.text);
      // Not counted: a repeat of a stored event_id, an invalid event, a batch with one invalid event.
      const repeat = await post('/track', EVENTS[0]);
      assert.equal(repeat.status, 200);
      assert.equal(repeat.body.duplicate, true);
      assert.equal((await post('/track', { business_id: A, response_time_ms: 1 })).status, 400);
      assert.equal((await post('/track/batch', { events: [{ business_id: B, response_time_ms: 1, tokens_used: 1 }, { business_id: B, tokens_used: 1 }] })).status, 400);

      const scrape = await call(`${server().url}/metrics`);
      assert.equal(scrape.status, 200);
      assert.equal(scrape.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      const { samples, types } = parse(scrape.text);

      for (const [family, type] of Object.entries(CONTRACT_TYPES)) assert.equal(types.get(family), type, `# TYPE ${family}`);
      const printed = new Map([...samples].filter(([key]) => BUSINESS.test(key)));
      const expected = expectedSamples(EVENTS);
      const missing = [...expected.keys()].filter((k) => !printed.has(k));
      const extra = [...printed.keys()].filter((k) => !expected.has(k));
      assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, 'the same set of business samples');
      const wrong = [...expected].filter(([k, v]) => !Object.is(printed.get(k), v)).map(([k, v]) => `${k}: printed ${printed.get(k)}, expected ${v}`);
      assert.deepEqual(wrong, [], 'every business sample has its exact value');
      // The histogram is cumulative: each bucket holds at least the one before.
      const buckets = [...BUCKETS_LE, '+Inf'].map((le) => printed.get(sampleKey('ai_response_time_seconds_bucket', { le }))!);
      assert.deepEqual(buckets, [4, 6, 9, 11, 13, 14, 16], 'hand-counted: ≤100 ms 4, ≤500 6, ≤1000 9, ≤2000 11, ≤5000 13, ≤10000 14, all 16');
      // Priced and unpriced, by hand: the known model's call costs what its rates say, the
      // unknown model's tokens are unpriced and add nothing to the cost.
      assert.equal(tableMicros('gpt-4o-mini', 1000, 500), 450);
      assert.equal(printed.get(sampleKey('ai_unpriced_tokens_total', { business_id: ODD, model_name: 'house-model-7' })), 7);
      assert.equal(printed.get(sampleKey('ai_api_cost_usd_total', { business_id: ODD, model_name: 'house-model-7' })), 0);
      assert.equal(printed.get(sampleKey('ai_unpriced_tokens_total', { business_id: B, model_name: 'gpt-4o-mini' })), 0);

      if (skipPromtool) return skipOrFail(t, `${skipPromtool}: the samples were compared, the exposition not linted`);
      await promtoolCheck(scrape.text);
    });
  });
}
