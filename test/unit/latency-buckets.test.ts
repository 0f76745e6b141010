import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bucketCounts, bucketValue, estimatePercentile, LATENCY_RELATIVE_ACCURACY, latencyBucketOf, ZERO_BUCKET,
} from '../../src/storage/latency-buckets.ts';
import { exactPercentile, rng } from '../helpers/events.ts';

const percentiles = [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1];

describe('log-spaced latency buckets', () => {
  it('represents every value of a bucket within the stated relative accuracy', () => {
    for (let ms = 1; ms <= 200_000; ms += ms < 2000 ? 1 : 97) {
      const v = bucketValue(latencyBucketOf(ms));
      assert.ok(Math.abs(v - ms) <= ms * LATENCY_RELATIVE_ACCURACY + 1e-9, `${ms} ms → ${v}`);
    }
    assert.equal(latencyBucketOf(0), ZERO_BUCKET);
    assert.equal(bucketValue(ZERO_BUCKET), 0);
  });

  it('gives the issue’s five events their exact percentiles within 2 % (the old ladder was 5 % and 14 % off)', () => {
    const values = [800, 900, 1000, 1100, 1200];
    const counts = bucketCounts(values);
    const p50 = estimatePercentile(counts, 0.5)!;
    const p95 = estimatePercentile(counts, 0.95)!;
    assert.ok(Math.abs(p50 - 1000) / 1000 <= LATENCY_RELATIVE_ACCURACY, `p50 ${p50}`);
    assert.ok(Math.abs(p95 - 1180) / 1180 <= LATENCY_RELATIVE_ACCURACY, `p95 ${p95}`);
  });

  it('stays within the bound on random distributions, including merged (summed) counts', () => {
    const random = rng(7);
    for (let trial = 0; trial < 30; trial++) {
      const n = 1 + Math.floor(random() * 3000);
      // Log-normal-ish replies: most near a second, a long tail, a few zeros.
      const values = Array.from({ length: n }, () => (random() < 0.01 ? 0 : Math.round(Math.exp(5 + random() * 4 + random() * 2))));
      const half = Math.floor(n / 2);
      const merged = new Map<number, number>();
      for (const part of [values.slice(0, half), values.slice(half)]) {
        for (const { bucket, count } of bucketCounts(part)) merged.set(bucket, (merged.get(bucket) ?? 0) + count);
      }
      const counts = [...merged].map(([bucket, count]) => ({ bucket, count }));
      const sorted = [...values].sort((a, b) => a - b);
      for (const q of percentiles) {
        const exact = exactPercentile(sorted, q);
        const estimate = estimatePercentile(counts, q)!;
        assert.ok(Math.abs(estimate - exact) <= exact * LATENCY_RELATIVE_ACCURACY + 1e-9, `n=${n} q=${q}: ${estimate} vs ${exact}`);
      }
    }
  });

  it('returns null without observations', () => {
    assert.equal(estimatePercentile([], 0.5), null);
    assert.equal(estimatePercentile([{ bucket: 3, count: 0 }], 0.5), null);
  });
});
