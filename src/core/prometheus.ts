/**
 * The `/metrics` exposition. Loaded on the first scrape only (prom-client costs a noticeable part
 * of a Lambda cold start).
 *
 * Business series are rebuilt on every scrape from the stored aggregates, in a fresh registry, so
 * every process on the same database prints the same values and a restart changes nothing.
 * Per-process series live in a second registry whose every series carries `instance_id` and
 * `runtime` labels, so they cannot be mistaken for business totals.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { PROMETHEUS_BUCKETS_MS } from '../storage/latency-buckets.ts';
import type { MetricsSnapshot } from '../storage/types.ts';
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

/** prom-client has no histogram whose buckets can be set from stored counts; this object is one. */
function storedHistogram(snapshot: MetricsSnapshot) {
  const name = 'ai_response_time_seconds';
  const help = 'Response time of AI replies in seconds, over every stored event.';
  return {
    name,
    help,
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    get: async () => ({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      values: [
        ...PROMETHEUS_BUCKETS_MS.map((le, i) => ({
          metricName: `${name}_bucket`,
          labels: { le: String(le / 1000) },
          value: snapshot.latency.cumulative[i] ?? 0,
        })),
        { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: snapshot.latency.count },
        { metricName: `${name}_sum`, labels: {}, value: snapshot.latency.sum_ms / 1000 },
        { metricName: `${name}_count`, labels: {}, value: snapshot.latency.count },
      ],
    }),
  };
}

function businessRegistry(snapshot: MetricsSnapshot, runtime: RuntimeInfo): Registry {
  const registry = new Registry();
  const counter = (name: string, help: string, labelNames: string[]) =>
    new Counter({ name, help, labelNames, registers: [registry] });

  const requests = counter('ai_requests_total', 'AI replies tracked, from stored events.', ['business_id', 'response_type', 'intent']);
  for (const r of snapshot.requests) {
    requests.inc({ business_id: r.business_id, response_type: r.response_type, intent: r.intent }, r.requests);
  }
  registry.registerMetric(storedHistogram(snapshot) as never);

  const success = new Gauge({
    name: 'ai_success_rate',
    help: 'Mean success_rate of the business events.',
    labelNames: ['business_id'],
    registers: [registry],
  });
  const apptRequested = counter('appointments_requested_total', 'Replies where an appointment was requested.', ['business_id']);
  const apptBooked = counter('appointments_booked_total', 'Replies where an appointment was booked.', ['business_id']);
  const handoffs = counter('human_handoffs_total', 'Hand-offs to a human; reason is error when response_type is error.', [
    'business_id',
    'reason',
  ]);
  for (const b of snapshot.businesses) {
    const labels = { business_id: b.business_id };
    if (b.requests > 0) success.set(labels, b.success_rate_sum / b.requests);
    apptRequested.inc(labels, b.appointments_requested);
    apptBooked.inc(labels, b.appointments_booked);
    handoffs.inc({ ...labels, reason: 'error' }, b.handoffs_error);
    handoffs.inc({ ...labels, reason: 'complex_query' }, b.handoffs_complex);
  }

  const tokens = counter('ai_tokens_used_total', 'Tokens used, from stored events.', ['business_id', 'model_name']);
  const cost = counter('ai_api_cost_usd_total', 'Model API cost in US dollars, from stored events.', ['business_id', 'model_name']);
  for (const m of snapshot.models) {
    const labels = { business_id: m.business_id, model_name: m.model_name };
    tokens.inc(labels, m.tokens_used);
    cost.inc(labels, m.api_cost_usd);
  }

  new Gauge({
    name: 'ai_system_info',
    help: 'Service information (always 1).',
    labelNames: ['service', 'version', 'monitoring'],
    registers: [registry],
  }).set({ service: 'mlops-service-prometheus', version: runtime.version, monitoring: 'prometheus' }, 1);
  return registry;
}

export async function renderMetrics(snapshot: MetricsSnapshot, runtime: RuntimeInfo, stats: InstanceStats): Promise<string> {
  const business = await businessRegistry(snapshot, runtime).metrics();
  const instance = await instanceRegistry(runtime, stats).metrics();
  return `${business.trimEnd()}\n${instance.trimEnd()}\n`;
}
