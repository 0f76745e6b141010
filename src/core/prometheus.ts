/**
 * The `/metrics` exposition. Loaded on the first scrape only (prom-client costs a noticeable part
 * of a Lambda cold start).
 *
 * Business series are rebuilt on every scrape from the stored aggregates, so every process on the
 * same database prints the same values and a restart changes nothing. Per-process series live in
 * a prom-client registry whose every series carries `instance_id` and `runtime` labels, so they
 * cannot be mistaken for business totals.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { GENAI_DURATION_BUCKETS_MS, GENAI_TOKEN_BUCKETS, PROMETHEUS_BUCKETS_MS } from '../storage/latency-buckets.ts';
import type { CumulativeHistogram, GenAiSeries, MetricsSnapshot } from '../storage/types.ts';
import { capLabels } from './label-cap.ts';
import type { InstanceStats, RuntimeInfo } from './runtime-info.ts';

export const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

let processRegistry: Registry | undefined;

function instanceRegistry(runtime: RuntimeInfo, stats: InstanceStats): Registry {
  if (processRegistry) return processRegistry;
  const registry = new Registry();
  registry.setDefaultLabels({ instance_id: runtime.instanceId, runtime: runtime.name });
  collectDefaultMetrics({ register: registry });
  // Gauges whose names end in _total break the Prometheus naming rules promtool enforces.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  const counter = (name: string, help: string, value: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  counter('mlops_instance_requests_total', 'HTTP requests answered by this instance (not business totals).', () => stats.requests);
  counter('mlops_instance_request_failures_total', 'Requests this instance answered with a 5xx.', () => stats.failures);
  counter('mlops_instance_requests_rejected_total', 'Requests this instance answered with a 4xx.', () => stats.rejected);
  counter('mlops_instance_cold_starts_total', 'Cold starts of this instance (1 for a server process).', () => stats.coldStarts);
  counter('mlops_instance_warmups_total', 'Warmer or scheduled invocations this instance answered.', () => stats.warmups);
  new Gauge({
    name: 'mlops_instance_uptime_seconds',
    help: 'Seconds since this instance started.',
    registers: [registry],
    collect() {
      this.set((Date.now() - runtime.startedAt) / 1000);
    },
  });
  processRegistry = registry;
  return registry;
}

type Labels = Record<string, string>;
interface Sample {
  labels: Labels;
  value: number;
  /** For histogram parts: `<name>_bucket`, `_sum`, `_count`. */
  suffix?: string;
}
interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  samples: Sample[];
}

// Text exposition format 0.0.4: label values escape backslash, double quote and newline.
const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const formatValue = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

/**
 * Business series are printed here rather than through prom-client objects: those can only be
 * incremented or observed (not set from stored totals), and prom-client formats ~10,000
 * labelled series (500 businesses × types × intents) in about 100 ms, this in a few.
 * The output is checked with `promtool check metrics` in the tests.
 */
function formatFamilies(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const keys = Object.keys(s.labels);
      const labels = keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(s.labels[k]!)}"`).join(',')}}` : '';
      out.push(`${f.name}${s.suffix ?? ''}${labels} ${formatValue(s.value)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** The `_bucket`, `_sum` and `_count` samples of one labelled histogram. */
function histogramSamples(labels: Labels, h: CumulativeHistogram, bounds: readonly number[], scale = 1): Sample[] {
  return [
    ...bounds.map((le, i) => ({ suffix: '_bucket', labels: { ...labels, le: String(le / scale) }, value: h.cumulative[i] ?? 0 })),
    { suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: h.count },
    { suffix: '_sum', labels, value: h.sum / scale },
    { suffix: '_count', labels, value: h.count },
  ];
}

const genaiLabels = (g: GenAiSeries): Labels => ({
  business_id: g.business_id,
  gen_ai_request_model: g.model_name,
  gen_ai_operation_name: g.operation_name,
});

function businessFamilies(snapshot: MetricsSnapshot, runtime: RuntimeInfo, maxLabelValues: number): Family[] {
  const b = snapshot.businesses;
  const capped = capLabels(snapshot, maxLabelValues);
  const perBusiness = (value: (x: MetricsSnapshot['businesses'][number]) => number) =>
    b.map((x) => ({ labels: { business_id: x.business_id }, value: value(x) }));
  const byModel = (value: (m: MetricsSnapshot['models'][number]) => number) =>
    capped.models.map((m) => ({ labels: { business_id: m.business_id, model_name: m.model_name }, value: value(m) }));
  return [
    {
      name: 'ai_requests_total',
      help: 'AI replies tracked, from stored events.',
      type: 'counter',
      samples: capped.requests.map((r) => ({ labels: { business_id: r.business_id, response_type: r.response_type, intent: r.intent }, value: r.requests })),
    },
    {
      name: 'ai_response_time_seconds',
      help: 'Response time of AI replies in seconds, over every stored event.',
      type: 'histogram',
      samples: histogramSamples({}, { count: snapshot.latency.count, sum: snapshot.latency.sum_ms, cumulative: snapshot.latency.cumulative }, PROMETHEUS_BUCKETS_MS, 1000),
    },
    {
      name: 'ai_success_rate',
      help: 'Mean success_rate of the business events.',
      type: 'gauge',
      samples: b.filter((x) => x.requests > 0).map((x) => ({ labels: { business_id: x.business_id }, value: x.success_rate_sum / x.requests })),
    },
    { name: 'appointments_requested_total', help: 'Replies where an appointment was requested.', type: 'counter', samples: perBusiness((x) => x.appointments_requested) },
    { name: 'appointments_booked_total', help: 'Replies where an appointment was booked.', type: 'counter', samples: perBusiness((x) => x.appointments_booked) },
    {
      name: 'human_handoffs_total',
      help: 'Hand-offs to a human; reason is error when response_type is error.',
      type: 'counter',
      samples: b.flatMap((x) => [
        { labels: { business_id: x.business_id, reason: 'error' }, value: x.handoffs_error },
        { labels: { business_id: x.business_id, reason: 'complex_query' }, value: x.handoffs_complex },
      ]),
    },
    { name: 'ai_tokens_used_total', help: 'Tokens used, from stored events.', type: 'counter', samples: byModel((m) => m.tokens_used) },
    {
      name: 'ai_api_cost_usd_total',
      help: 'Model API cost in US dollars (sent by the client or priced from the price table), from stored events.',
      type: 'counter',
      samples: byModel((m) => m.api_cost_usd),
    },
    {
      name: 'ai_unpriced_tokens_total',
      help: 'Tokens of events whose cost is unknown (no api_cost_usd and no price for the model): not counted as $0.',
      type: 'counter',
      samples: byModel((m) => m.unpriced_tokens),
    },
    {
      name: 'gen_ai_client_token_usage',
      help: 'Tokens per model call (OpenTelemetry GenAI), of the calls that reported them, from stored events.',
      type: 'histogram',
      samples: capped.genai.flatMap((g) => [
        ...histogramSamples({ ...genaiLabels(g), gen_ai_token_type: 'input' }, g.input, GENAI_TOKEN_BUCKETS),
        ...histogramSamples({ ...genaiLabels(g), gen_ai_token_type: 'output' }, g.output, GENAI_TOKEN_BUCKETS),
      ]),
    },
    {
      name: 'gen_ai_client_operation_duration_seconds',
      help: 'Duration of model calls in seconds (OpenTelemetry GenAI), from stored events.',
      type: 'histogram',
      samples: capped.genai.flatMap((g) => histogramSamples(genaiLabels(g), g.duration, GENAI_DURATION_BUCKETS_MS, 1000)),
    },
    {
      name: 'ai_label_overflow_events_total',
      help: 'Events whose label value was summed under "other" on this page (METRICS_MAX_LABEL_VALUES per business); the stored events keep it.',
      type: 'counter',
      samples: capped.overflow.map((o) => ({ labels: { business_id: o.business_id, label: o.label }, value: o.events })),
    },
    {
      name: 'ai_system_info',
      help: 'Service information (always 1).',
      type: 'gauge',
      samples: [{ labels: { service: 'mlops-service-prometheus', version: runtime.version, monitoring: 'prometheus' }, value: 1 }],
    },
  ];
}

export async function renderMetrics(snapshot: MetricsSnapshot, runtime: RuntimeInfo, stats: InstanceStats, maxLabelValues = 50): Promise<string> {
  const business = formatFamilies(businessFamilies(snapshot, runtime, maxLabelValues));
  const instance = await instanceRegistry(runtime, stats).metrics();
  return `${business}${instance.trimEnd()}\n`;
}
