// Latency statistics. Pure functions, so the tests can check them against hand values and the
// compare test can recompute a report's figures from its raw samples with the same definitions.

/**
 * Nearest-rank percentile: the smallest sample such that at least p % of the samples are ≤ it,
 * i.e. sorted[ceil(p/100 · n) − 1]. Chosen over interpolation because every figure it gives is a
 * latency that was actually measured, and it is easy to recompute by hand. Empty input → null.
 */
export function percentile(sortedAscending: readonly number[], p: number): number | null {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const n = sortedAscending.length;
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sortedAscending[rank - 1]!;
}

export interface LatencySummary {
  /** Successful samples the figures are computed from. */
  n: number;
  min: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

export const PERCENTILE_METHOD = 'nearest-rank: sorted[ceil(p/100*n)-1]';

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { n: 0, min: null, mean: null, p50: null, p90: null, p99: null, max: null };
  return {
    n,
    min: sorted[0]!,
    mean: round3(sorted.reduce((s, v) => s + v, 0) / n),
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[n - 1]!,
  };
}

export function mean(values: readonly number[]): number | null {
  return values.length ? values.reduce((s, v) => s + v, 0) / values.length : null;
}

/** Milliseconds are kept to the microsecond: finer digits are timer noise and bloat the JSON. */
export function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * Histogram bin edges spaced evenly on a log scale between the smallest and largest value
 * (latencies span decades once cold starts are in the picture). Always `bins + 1` edges.
 */
export function logEdges(values: readonly number[], bins: number): number[] {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return Array.from({ length: bins + 1 }, (_, i) => i);
  let lo = Math.min(...positive);
  let hi = Math.max(...positive);
  if (hi <= lo) {
    lo = lo / 1.5;
    hi = hi * 1.5;
  }
  const a = Math.log10(lo);
  const b = Math.log10(hi);
  // The last edge is nudged up so the maximum falls inside the last bin, not on its open end.
  return Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi * 1.000001 : 10 ** (a + ((b - a) * i) / bins)));
}

/** Counts per bin [edges[i], edges[i+1]); values outside every bin are ignored. */
export function histogramCounts(values: readonly number[], edges: readonly number[]): number[] {
  const counts = new Array<number>(Math.max(0, edges.length - 1)).fill(0);
  for (const v of values) {
    for (let i = 0; i < counts.length; i++) {
      if (v >= edges[i]! && v < edges[i + 1]!) {
        counts[i]!++;
        break;
      }
    }
  }
  return counts;
}
