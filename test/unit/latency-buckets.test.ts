import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { estimatePercentile, FINE_BUCKET_COUNT, fineBucketBounds, fineBucketOf, FINE_BUCKETS_MS } from '../../src/storage/latency-buckets.ts';

describe('latency buckets', () => {
  it('has the 48 buckets the schema stores', () => {
    assert.equal(FINE_BUCKET_COUNT, 48);
  });

  it('numbers values like PostgreSQL width_bucket', () => {
    assert.equal(fineBucketOf(0), 0);
    assert.equal(fineBucketOf(9.99), 0);
    assert.equal(fineBucketOf(10), 1);
    assert.equal(fineBucketOf(60000), FINE_BUCKETS_MS.length);
    assert.equal(fineBucketOf(1e9), FINE_BUCKETS_MS.length);
  });

  it('keeps buckets 10 ms wide below 100 ms and within 25 % up to 15 s (bounded percentile error)', () => {
    for (let i = 1; i < FINE_BUCKETS_MS.length; i++) {
      const [lo, hi] = [FINE_BUCKETS_MS[i - 1]!, FINE_BUCKETS_MS[i]!];
      if (hi <= 100) assert.equal(hi - lo, 10, `bucket ${i}`);
      else if (hi <= 15000) assert.ok(hi / lo <= 1.25 + 1e-9, `bucket ${i}: ${lo}-${hi}`);
    }
  });

  it('estimates a percentile inside the bucket that holds the true value', () => {
    const values = Array.from({ length: 1000 }, (_, i) => 20 + ((i * 7919) % 2980));
    const counts = new Array(FINE_BUCKET_COUNT).fill(0);
    for (const v of values) counts[fineBucketOf(v)]++;
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.95, 0.99]) {
      const truth = sorted[Math.ceil(q * sorted.length) - 1]!;
      const [lo, hi] = fineBucketBounds(fineBucketOf(truth));
      const est = estimatePercentile(counts, q)!;
      assert.ok(est.value_ms >= lo && est.value_ms <= hi, `p${q * 100}: ${est.value_ms} not in [${lo}, ${hi}] (truth ${truth})`);
    }
  });

  it('returns null without observations and a lower bound in the open top bucket', () => {
    assert.equal(estimatePercentile(new Array(FINE_BUCKET_COUNT).fill(0), 0.5), null);
    const counts = new Array(FINE_BUCKET_COUNT).fill(0);
    counts[FINE_BUCKET_COUNT - 1] = 3;
    assert.deepEqual(estimatePercentile(counts, 0.95), { value_ms: 60000, lower_bound_only: true });
  });
});
