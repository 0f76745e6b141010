/**
 * CloudWatch metrics in Embedded Metric Format (a JSON log line CloudWatch turns into metrics,
 * no API calls), through Powertools for AWS Lambda.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'MlopsService',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'mlops-service',
});

export interface InvocationMetrics {
  coldStart: boolean;
  /** HTTP status, or undefined for warm-ups. */
  status?: number;
  durationMs: number;
}

/**
 * One EMF line per invocation. Only non-zero counts are recorded (a missing value sums as zero in
 * CloudWatch): every stored metric costs several microseconds of validation in Powertools, on a
 * request path that takes about fifty.
 */
export function publishInvocation(m: InvocationMetrics): void {
  if (m.coldStart) metrics.addMetric('ColdStart', MetricUnit.Count, 1);
  if (m.status === undefined) {
    metrics.addMetric('Warmups', MetricUnit.Count, 1);
  } else {
    metrics.addMetric('Requests', MetricUnit.Count, 1);
    if (m.status >= 500) metrics.addMetric('Errors', MetricUnit.Count, 1);
    else if (m.status >= 400) metrics.addMetric('ClientErrors', MetricUnit.Count, 1);
    metrics.addMetric('Latency', MetricUnit.Milliseconds, m.durationMs);
  }
  metrics.publishStoredMetrics();
}
