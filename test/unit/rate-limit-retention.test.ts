import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../src/core/http-errors.ts';
import { createRateLimiter } from '../../src/core/rate-limit.ts';
import { retentionCutoff } from '../../src/core/retention.ts';

describe('rate limiter', () => {
  it('allows a minute of requests per key, then 429 with Retry-After, and refills', () => {
    const limiter = createRateLimiter(60);
    const t = 1_000_000;
    for (let i = 0; i < 60; i++) limiter.take('key-0', t);
    assert.throws(
      () => limiter.take('key-0', t),
      (e: unknown) => e instanceof ApiError && e.status === 429 && e.headers['Retry-After'] === '1',
    );
    limiter.take('key-1', t); // another key has its own bucket
    limiter.take('key-0', t + 1000); // one token back after a second
    assert.throws(() => limiter.take('key-0', t + 1000));
  });

  it('does nothing when disabled', () => {
    const limiter = createRateLimiter(0);
    for (let i = 0; i < 1000; i++) limiter.take('k');
    assert.equal(limiter.enabled, false);
  });
});

describe('retention cutoff', () => {
  it('keeps whole UTC days: today and the days before it', () => {
    assert.equal(retentionCutoff(1, new Date('2026-03-10T23:59:00Z')), '2026-03-10');
    assert.equal(retentionCutoff(30, new Date('2026-03-10T00:01:00Z')), '2026-02-09');
  });
});
