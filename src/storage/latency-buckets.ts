/**
 * Response-time buckets. Two ladders:
 * - `PROMETHEUS_BUCKETS_MS`: the contract's `ai_response_time_seconds` buckets (cumulative, `le`).
 * - `FINE_BUCKETS_MS`: the per-business-day ladder behind the analytics percentiles. Bucket `i`
 *   holds values in [FINE_BUCKETS_MS[i-1], FINE_BUCKETS_MS[i]) as PostgreSQL's
 *   `width_bucket(value, thresholds)` numbers them (bucket 0 is below the first threshold, the last
 *   one is at or above the last threshold). Stored counts are indexed by this ladder, so it must
 *   never change. Buckets are 10 ms wide below 100 ms and at most 25 % wide up to 15 s, which
 *   bounds the percentile error where chat replies fall; they are coarser above.
 */
export const PROMETHEUS_BUCKETS_MS = [100, 500, 1000, 2000, 5000, 10000] as const;

export const FINE_BUCKETS_MS = [
  10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 120, 140, 160, 180, 200, 250, 300, 350, 400, 450, 500,
  600, 700, 800, 900, 1000, 1200, 1400, 1600, 1800, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 6000,
  7000, 8000, 9000, 10000, 12500, 15000, 20000, 30000, 60000,
] as const;

/** Number of fine buckets (one more than thresholds: below the first, and at/above the last). */
export const FINE_BUCKET_COUNT = FINE_BUCKETS_MS.length + 1;

/** Same numbering as SQL `width_bucket(ms, FINE_BUCKETS_MS)`; used by tests and seeders. */
export function fineBucketOf(ms: number): number {
  let i = 0;
  while (i < FINE_BUCKETS_MS.length && ms >= FINE_BUCKETS_MS[i]!) i++;
  return i;
}

export interface PercentileEstimate {
  value_ms: number;
  /** True when the rank falls in the open-ended top bucket, so `value_ms` is only a lower bound. */
  lower_bound_only: boolean;
}

/**
 * Estimates the q-quantile (0..1) from fine bucket counts, interpolating linearly inside the
 * bucket that holds the rank. Returns null when there are no observations.
 */
export function estimatePercentile(counts: readonly number[], q: number): PercentileEstimate | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let before = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] ?? 0;
    if (c > 0 && before + c >= rank) {
      const lower = i === 0 ? 0 : FINE_BUCKETS_MS[i - 1]!;
      if (i >= FINE_BUCKETS_MS.length) return { value_ms: lower, lower_bound_only: true };
      const upper = FINE_BUCKETS_MS[i]!;
      const fraction = Math.min(1, Math.max(0, (rank - before) / c));
      return { value_ms: lower + (upper - lower) * fraction, lower_bound_only: false };
    }
    before += c;
  }
  return { value_ms: FINE_BUCKETS_MS[FINE_BUCKETS_MS.length - 1]!, lower_bound_only: true };
}

/** The fine bucket `[lower, upper)` bounds, for tests that check an estimate's interval. */
export function fineBucketBounds(i: number): [number, number] {
  return [i === 0 ? 0 : FINE_BUCKETS_MS[i - 1]!, FINE_BUCKETS_MS[i] ?? Infinity];
}
