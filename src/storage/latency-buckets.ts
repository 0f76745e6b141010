/**
 * Response-time buckets. Two ladders:
 * - `PROMETHEUS_BUCKETS_MS`: the contract's `ai_response_time_seconds` buckets (cumulative, `le`).
 * - a logarithmic ladder behind the analytics percentiles (the idea of DDSketch): bucket `i` holds
 *   values in (γ^(i-1), γ^i] with γ = (1 + α) / (1 − α), and is represented by 2γ^i / (γ + 1), which
 *   is within a relative error α of every value in it. Only buckets that hold events are stored
 *   (one row per business, day and bucket), so the ladder needs no upper end, and the counts of
 *   several days or processes merge by addition. Bucket numbers are computed in SQL
 *   (`LATENCY_BUCKET_SQL`) and stored, so α must never change.
 */
export const PROMETHEUS_BUCKETS_MS = [100, 500, 1000, 2000, 5000, 10000] as const;

/** Relative accuracy of a bucket's representative value. */
export const LATENCY_RELATIVE_ACCURACY = 0.02;
const GAMMA = (1 + LATENCY_RELATIVE_ACCURACY) / (1 - LATENCY_RELATIVE_ACCURACY);
const LN_GAMMA = Math.log(GAMMA);

/** The bucket of 0 ms (response times are stored as whole milliseconds). */
export const ZERO_BUCKET = -1;

/**
 * SQL for the bucket of `ms` (an integer column ≥ 0). The constant is printed with full
 * precision so SQL and `latencyBucketOf` agree; a value within a rounding error of a bucket
 * boundary may land in either neighbour, which still keeps it within α of its representative.
 */
export function latencyBucketSql(ms: string): string {
  return `CASE WHEN ${ms} <= 0 THEN ${ZERO_BUCKET} ELSE ceil(ln(${ms}::float8) / ${LN_GAMMA.toPrecision(17)})::int END`;
}

export function latencyBucketOf(ms: number): number {
  return ms <= 0 ? ZERO_BUCKET : Math.ceil(Math.log(ms) / LN_GAMMA);
}

/** The value a bucket stands for: within `LATENCY_RELATIVE_ACCURACY` of every value in it. */
export function bucketValue(bucket: number): number {
  return bucket === ZERO_BUCKET ? 0 : (2 * GAMMA ** bucket) / (GAMMA + 1);
}

export interface BucketCount {
  bucket: number;
  count: number;
}

/**
 * The q-quantile (0..1) with linear interpolation between the two nearest order statistics
 * (rank q·(n−1), the default of numpy and of most spreadsheets). Each order statistic is read as
 * its bucket's representative, within α of the true value; a convex combination of such values
 * stays within α of the same combination of true values, so the estimate is within α of the
 * exact interpolated percentile. Null when there are no observations.
 */
export function estimatePercentile(buckets: readonly BucketCount[], q: number): number | null {
  const sorted = buckets.filter((b) => b.count > 0).sort((a, b) => a.bucket - b.bucket);
  const total = sorted.reduce((a, b) => a + b.count, 0);
  if (total === 0) return null;
  const rank = q * (total - 1);
  const lo = Math.floor(rank);
  const valueAt = (position: number): number => {
    let seen = 0;
    for (const b of sorted) {
      seen += b.count;
      if (position < seen) return bucketValue(b.bucket);
    }
    return bucketValue(sorted[sorted.length - 1]!.bucket);
  };
  const low = valueAt(lo);
  const fraction = rank - lo;
  return fraction === 0 ? low : low + (valueAt(lo + 1) - low) * fraction;
}

/** Buckets of a list of values, for tests and seeders. */
export function bucketCounts(values: readonly number[]): BucketCount[] {
  const counts = new Map<number, number>();
  for (const v of values) {
    const b = latencyBucketOf(v);
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  return [...counts].map(([bucket, count]) => ({ bucket, count }));
}

/**
 * The OpenTelemetry GenAI semantic conventions' explicit bucket boundaries (contract, "Prometheus
 * series"): `gen_ai.client.operation.duration` in seconds, here in the stored whole milliseconds,
 * and `gen_ai.client.token.usage` in tokens.
 */
export const GENAI_DURATION_BUCKETS_MS = [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 40960, 81920] as const;
export const GENAI_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864] as const;
