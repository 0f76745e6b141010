/**
 * Per-API-key rate limiting (every tenant's events arrive from the same Next.js server, so a
 * per-IP limit would throttle them all together). A token bucket per key: `perMinute` tokens,
 * refilled continuously, bursts up to one minute's worth. In memory, so it is per process on a
 * server and per execution environment on Lambda, where API Gateway throttling is the global cap.
 */
import { ApiError } from './http-errors.ts';

interface Bucket {
  tokens: number;
  updated: number;
}

export interface RateLimiter {
  readonly enabled: boolean;
  /** Takes one token for `key` or throws a 429 with Retry-After. */
  take(key: string, now?: number): void;
}

export function createRateLimiter(perMinute: number): RateLimiter {
  const buckets = new Map<string, Bucket>();
  const ratePerMs = perMinute / 60_000;
  return {
    enabled: perMinute > 0,
    take(key, now = Date.now()) {
      if (perMinute <= 0) return;
      const bucket = buckets.get(key) ?? { tokens: perMinute, updated: now };
      bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.updated) * ratePerMs);
      bucket.updated = now;
      buckets.set(key, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return;
      }
      const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs / 1000));
      throw new ApiError(429, 'rate_limited', `Rate limit of ${perMinute} requests per minute for this API key exceeded; retry in ${retryAfter} s`, undefined, {
        'Retry-After': String(retryAfter),
      });
    },
  };
}
