/**
 * The label cap of `/metrics`: per business, the first `max` distinct values of each free-text
 * label (intent, response_type, model_name, GenAI operation) keep their own series; events with
 * any later value are summed under `other`, and `overflow` says how many, per business and label.
 * Raw events and `/analytics` keep every value.
 *
 * "First" is the order in which values first appeared (the smallest event id with that value,
 * stored in the aggregates), which only changes when a new value arrives: a series never jumps
 * from its own name to `other` because another value became more frequent. The one exception is a
 * race at the boundary, documented in the README: two new values arriving together when a
 * business is at its last free slot, whose commits land in the opposite order of their ids.
 */
import type { CumulativeHistogram, GenAiSeries, MetricsSnapshot, ModelSeries, RequestSeries } from '../storage/types.ts';

export const OTHER = 'other';

export type CappedLabel = 'intent' | 'response_type' | 'model_name' | 'operation_name';

export interface LabelOverflow {
  business_id: string;
  label: CappedLabel;
  /** Events whose value of `label` was summed under `other`. */
  events: number;
}

export interface CappedSeries {
  requests: RequestSeries[];
  models: ModelSeries[];
  genai: GenAiSeries[];
  overflow: LabelOverflow[];
}

/** Keeps, per business, the `max` values that appeared first. */
class Ranking {
  readonly #first = new Map<string, Map<string, number>>();

  see(business: string, value: string, firstId: number | null): void {
    let values = this.#first.get(business);
    if (!values) this.#first.set(business, (values = new Map()));
    // null: a key whose events were purged before first ids were recorded, older than any id.
    const id = firstId === null ? -1 : Number(firstId);
    const known = values.get(value);
    if (known === undefined || id < known) values.set(value, id);
  }

  kept(max: number): (business: string, value: string) => string {
    const keep = new Map<string, Set<string>>();
    for (const [business, values] of this.#first) {
      if (values.size <= max) continue;
      const ordered = [...values].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      keep.set(business, new Set(ordered.slice(0, max).map(([v]) => v)));
    }
    return (business, value) => {
      const set = keep.get(business);
      return !set || set.has(value) ? value : OTHER;
    };
  }
}

function addHistogram(into: CumulativeHistogram, h: CumulativeHistogram): void {
  into.count += Number(h.count);
  into.sum += Number(h.sum);
  h.cumulative.forEach((c, i) => (into.cumulative[i] = (into.cumulative[i] ?? 0) + Number(c)));
}

const copyHistogram = (h: CumulativeHistogram): CumulativeHistogram => ({ count: Number(h.count), sum: Number(h.sum), cumulative: h.cumulative.map(Number) });

export function capLabels(snapshot: MetricsSnapshot, max: number): CappedSeries {
  const intents = new Ranking();
  const types = new Ranking();
  const models = new Ranking();
  const operations = new Ranking();
  for (const r of snapshot.requests) {
    intents.see(r.business_id, r.intent, r.first_id);
    types.see(r.business_id, r.response_type, r.first_id);
  }
  for (const m of snapshot.models) models.see(m.business_id, m.model_name, m.first_id);
  for (const g of snapshot.genai) operations.see(g.business_id, g.operation_name, g.first_id);
  const intent = intents.kept(max);
  const type = types.kept(max);
  const model = models.kept(max);
  const operation = operations.kept(max);

  const overflow = new Map<string, LabelOverflow>();
  const overflowed = (business_id: string, label: CappedLabel, events: number) => {
    const key = `${business_id}\u0000${label}`;
    const o = overflow.get(key);
    if (o) o.events += events;
    else overflow.set(key, { business_id, label, events });
  };

  const requests = new Map<string, RequestSeries>();
  for (const r of snapshot.requests) {
    const i = intent(r.business_id, r.intent);
    const t = type(r.business_id, r.response_type);
    if (i !== r.intent) overflowed(r.business_id, 'intent', Number(r.requests));
    if (t !== r.response_type) overflowed(r.business_id, 'response_type', Number(r.requests));
    const key = `${r.business_id}\u0000${t}\u0000${i}`;
    const row = requests.get(key);
    if (row) row.requests += Number(r.requests);
    else requests.set(key, { ...r, response_type: t, intent: i, requests: Number(r.requests) });
  }

  const byModel = new Map<string, ModelSeries>();
  for (const m of snapshot.models) {
    const name = model(m.business_id, m.model_name);
    if (name !== m.model_name) overflowed(m.business_id, 'model_name', Number(m.requests));
    const key = `${m.business_id}\u0000${name}`;
    const row = byModel.get(key);
    if (row) {
      row.requests += Number(m.requests);
      row.tokens_used += Number(m.tokens_used);
      row.api_cost_usd += Number(m.api_cost_usd);
      row.unpriced_tokens += Number(m.unpriced_tokens);
    } else {
      byModel.set(key, {
        ...m,
        model_name: name,
        requests: Number(m.requests),
        tokens_used: Number(m.tokens_used),
        api_cost_usd: Number(m.api_cost_usd),
        unpriced_tokens: Number(m.unpriced_tokens),
      });
    }
  }

  const genai = new Map<string, GenAiSeries>();
  for (const g of snapshot.genai) {
    const name = model(g.business_id, g.model_name);
    const op = operation(g.business_id, g.operation_name);
    if (op !== g.operation_name) overflowed(g.business_id, 'operation_name', Number(g.duration.count));
    const key = `${g.business_id}\u0000${name}\u0000${op}`;
    const row = genai.get(key);
    if (row) {
      addHistogram(row.duration, g.duration);
      addHistogram(row.input, g.input);
      addHistogram(row.output, g.output);
    } else {
      genai.set(key, { ...g, model_name: name, operation_name: op, duration: copyHistogram(g.duration), input: copyHistogram(g.input), output: copyHistogram(g.output) });
    }
  }

  return { requests: [...requests.values()], models: [...byModel.values()], genai: [...genai.values()], overflow: [...overflow.values()] };
}
