// Cost model tests: every expected value is computed by hand in the comment next to it, from the
// prices in tools/cost/prices.json (us-east-1, checked 2026-11-27).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { runCostCli } from '../tools/cost/cli.ts';
import {
  breakEven,
  CostInputError,
  ec2Cost,
  lambdaCost,
  loadPrices,
  mergePrices,
  PriceFileError,
  tieredCost,
  validatePrices,
  type LambdaCostResult,
  type LambdaInput,
  type LineItemKey,
} from '../tools/cost/model.ts';

const prices = loadPrices();

/** The reference setup: 200 ms, 512 MB, x86, no free tier, 30-day month; logs off unless a test turns them on. */
const base = { durationMs: 200, memoryMb: 512, architecture: 'x86_64', freeTier: 'none', daysPerMonth: 30, logBytesPerInvocation: 0 } as const;
const t3micro = { instanceType: 't3.micro' } as const;

const item = (r: { lineItems: { key: LineItemKey; monthlyCost: number }[] }, key: LineItemKey): number => {
  const li = r.lineItems.find((x) => x.key === key);
  assert.ok(li, `line item ${key} missing`);
  return li.monthlyCost;
};
const lambdaOnly = (r: LambdaCostResult): number => item(r, 'lambdaRequests') + item(r, 'lambdaCompute');
/** Money is compared to the hundredth of a cent; hand values below carry more digits than that. */
const near = (actual: number, expected: number, tolerance = 1e-4): void => {
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);
};
const cents = (n: number): string => n.toFixed(2);

describe('reference values from the issue', () => {
  test('1M requests/day: $56.00 Lambda alone, $86.00 with an HTTP API, $161.00 with a REST API', () => {
    // 1,000,000/day × 30 = 30M requests. Requests: 30 × $0.20 = $6.00.
    // Compute: 30M × 0.2 s × 0.5 GB = 3,000,000 GB-s × $0.0000166667 = $50.0001.
    // Lambda alone $56.0001; + HTTP 30 × $1.00 = $86.0001; + REST 30 × $3.50 = $161.0001.
    const none = lambdaCost({ ...base, requestsPerDay: 1_000_000, apiType: 'none' }, prices);
    const http = lambdaCost({ ...base, requestsPerDay: 1_000_000, apiType: 'http' }, prices);
    const rest = lambdaCost({ ...base, requestsPerDay: 1_000_000, apiType: 'rest' }, prices);
    near(item(http, 'lambdaRequests'), 6);
    near(item(http, 'lambdaCompute'), 50.0001);
    assert.equal(cents(lambdaOnly(http)), '56.00');
    assert.equal(cents(none.total), '56.00');
    assert.equal(cents(http.total), '86.00');
    assert.equal(cents(rest.total), '161.00');
    near(item(rest, 'apiGateway'), 105);
  });

  test('t3.micro + 8 GB gp3 + 1 public IPv4 for 730 h = $11.88', () => {
    // 730 × $0.0104 = $7.592; 8 × $0.08 = $0.64; 730 × $0.005 = $3.65. Total $11.882.
    const ec2 = ec2Cost(t3micro, prices);
    near(item(ec2, 'ec2Instance'), 7.592);
    near(item(ec2, 'ebs'), 0.64);
    near(item(ec2, 'ipv4'), 3.65);
    near(ec2.total, 11.882, 1e-9);
    assert.equal(cents(ec2.total), '11.88');
  });

  test('break-even with an HTTP API ≈ 138,000 requests/day', () => {
    // Per request: $0.20/1M + 0.1 GB-s × $0.0000166667 + $1.00/1M = $2.86667e-6.
    // r = 11.882 / (30 × 2.86667e-6) ≈ 138,163 requests/day (no free tier, no tiers crossed).
    const b = breakEven({ ...base, apiType: 'http' }, t3micro, prices);
    assert.equal(b.status, 'crosses');
    assert.ok(b.requestsPerDay !== null);
    const exact = 11.882 / (30 * 2.86667e-6);
    assert.ok(Math.abs(b.requestsPerDay - exact) / exact < 0.01, `got ${b.requestsPerDay}`);
    assert.ok(Math.abs(b.requestsPerDay - 138_163) < 1);
    near(lambdaCost({ ...base, apiType: 'http', requestsPerDay: b.requestsPerDay }, prices).total, 11.882, 1e-9);
  });
});

describe('free tiers', () => {
  test('always-free: 1,000 requests/day costs $0 on Lambda', () => {
    // 30,000 requests < 1M free; 30,000 × 0.1 = 3,000 GB-s < 400,000 free;
    // logs 30,000 × 600 B = 0.017 GB < 5 GB free. Everything $0; an HTTP API still costs 30,000 × $1/1M = $0.03.
    const r = lambdaCost({ ...base, logBytesPerInvocation: 600, freeTier: 'always-free', apiType: 'none', requestsPerDay: 1_000 }, prices);
    assert.equal(r.total, 0);
    const http = lambdaCost({ ...base, freeTier: 'always-free', apiType: 'http', requestsPerDay: 1_000 }, prices);
    near(http.total, 0.03);
  });

  test('always-free: 100,000 requests/day is partially free', () => {
    // 3M requests − 1M free = 2M × $0.20/1M = $0.40. 3M × 0.1 = 300,000 GB-s < 400,000 free → $0.
    const r = lambdaCost({ ...base, freeTier: 'always-free', apiType: 'none', requestsPerDay: 100_000 }, prices);
    near(item(r, 'lambdaRequests'), 0.4);
    assert.equal(item(r, 'lambdaCompute'), 0);
    // At 200,000/day: 6M − 1M = 5M × $0.20/1M = $1.00; 600,000 − 400,000 = 200,000 GB-s × $0.0000166667 = $3.33334.
    const r2 = lambdaCost({ ...base, freeTier: 'always-free', apiType: 'none', requestsPerDay: 200_000 }, prices);
    near(item(r2, 'lambdaRequests'), 1.0);
    near(item(r2, 'lambdaCompute'), 3.33334);
  });

  test('always-free gives nothing on EC2 or API Gateway', () => {
    near(ec2Cost({ ...t3micro, freeTier: 'always-free' }, prices).total, 11.882);
    // 100,000/day: 3M × $1.00/1M = $3.00, no free calls.
    near(item(lambdaCost({ ...base, freeTier: 'always-free', apiType: 'http', requestsPerDay: 100_000 }, prices), 'apiGateway'), 3);
  });

  test('legacy 12-month tier: 1M API Gateway calls free', () => {
    // 100,000/day = 3M calls − 1M free = 2M. HTTP 2 × $1.00 = $2.00; REST 2 × $3.50 = $7.00.
    const http = lambdaCost({ ...base, freeTier: 'legacy-12-month', apiType: 'http', requestsPerDay: 100_000 }, prices);
    const rest = lambdaCost({ ...base, freeTier: 'legacy-12-month', apiType: 'rest', requestsPerDay: 100_000 }, prices);
    near(item(http, 'apiGateway'), 2);
    near(item(rest, 'apiGateway'), 7);
    // The legacy tier includes always-free: 3M − 1M = 2M requests × $0.20/1M = $0.40, 300,000 GB-s all free.
    near(item(http, 'lambdaRequests'), 0.4);
    assert.equal(item(http, 'lambdaCompute'), 0);
  });

  test('legacy 12-month tier on EC2: one eligible micro instance is free, extras are not', () => {
    // t2.micro: 730 h ≤ 750 free, 8 GB ≤ 30 GB free, 730 IPv4-hours ≤ 750 free → $0.
    assert.equal(ec2Cost({ instanceType: 't2.micro', freeTier: 'legacy-12-month' }, prices).total, 0);
    assert.equal(ec2Cost({ instanceType: 't3.micro', freeTier: 'legacy-12-month' }, prices).total, 0);
    // Two t3.micro share the allowances: 1,460 − 750 = 710 h × $0.0104 = $7.384; 16 GB ≤ 30 → $0;
    // 1,460 − 750 = 710 IPv4-hours × $0.005 = $3.55. Total $10.934.
    const two = ec2Cost({ instanceType: 't3.micro', instances: 2, freeTier: 'legacy-12-month' }, prices);
    near(two.total, 10.934);
    // t3.small is not eligible: 730 × $0.0208 = $15.184 (disk and address still free).
    near(ec2Cost({ instanceType: 't3.small', freeTier: 'legacy-12-month' }, prices).total, 15.184);
    // 40 GB disk: 40 − 30 = 10 GB × $0.08 = $0.80.
    near(ec2Cost({ instanceType: 't2.micro', gp3GbPerInstance: 40, freeTier: 'legacy-12-month' }, prices).total, 0.8);
  });

  test('legacy 12-month break-even: both sides free until Lambda leaves its allowances', () => {
    // EC2 t2.micro is $0. Lambda + HTTP is $0 until 1M requests/month (API Gateway and Lambda
    // free allowances both end there; 1M × 0.1 = 100,000 GB-s is still under 400,000):
    // 1,000,000 / 30 = 33,333.33 requests/day.
    const b = breakEven({ ...base, freeTier: 'legacy-12-month', apiType: 'http' }, { instanceType: 't2.micro', freeTier: 'legacy-12-month' }, prices);
    assert.equal(b.status, 'crosses');
    near(b.requestsPerDay ?? NaN, 1_000_000 / 30, 1e-6);
  });
});

describe('architecture and tiers', () => {
  test('arm64 pricing', () => {
    // 3,000,000 GB-s × $0.0000133334 = $40.0002 + requests $6.00 = $46.0002.
    const r = lambdaCost({ ...base, architecture: 'arm64', apiType: 'none', requestsPerDay: 1_000_000 }, prices);
    near(item(r, 'lambdaCompute'), 40.0002);
    assert.equal(cents(r.total), '46.00');
  });

  test('x86 compute crosses the 6B GB-s tier boundary with marginal pricing', () => {
    // 10,240 MB (10 GB) × 1,000 ms = 10 GB-s per invocation. 30M/day × 30 = 900M invocations = 9B GB-s.
    // First 6B × $0.0000166667 = $100,000.20; next 3B × $0.000015 = $45,000.00 → $145,000.20
    // (flat pricing would be 9B × $0.0000166667 = $150,000.30).
    const r = lambdaCost({ ...base, memoryMb: 10_240, durationMs: 1_000, apiType: 'none', requestsPerDay: 30_000_000 }, prices);
    near(item(r, 'lambdaCompute'), 145_000.2, 1e-3);
    near(item(r, 'lambdaRequests'), 180); // 900M × $0.20/1M
    // 60M/day → 18B GB-s: $100,000.20 + 9B × $0.000015 = $135,000 + 3B × $0.0000133334 = $40,000.20 → $275,000.40.
    const r2 = lambdaCost({ ...base, memoryMb: 10_240, durationMs: 1_000, apiType: 'none', requestsPerDay: 60_000_000 }, prices);
    near(item(r2, 'lambdaCompute'), 275_000.4, 1e-3);
  });

  test('arm64 compute crosses its 7.5B GB-s boundary', () => {
    // 9B GB-s: 7.5B × $0.0000133334 = $100,000.50; 1.5B × $0.0000120001 = $18,000.15 → $118,000.65.
    const r = lambdaCost({ ...base, architecture: 'arm64', memoryMb: 10_240, durationMs: 1_000, apiType: 'none', requestsPerDay: 30_000_000 }, prices);
    near(item(r, 'lambdaCompute'), 118_000.65, 1e-3);
  });

  test('REST API crosses its 333M tier; HTTP API its 300M tier', () => {
    // 20M/day × 30 = 600M calls. REST: 333M × $3.50 = $1,165.50; 267M × $2.80 = $747.60 → $1,913.10.
    // HTTP: 300M × $1.00 = $300; 300M × $0.90 = $270 → $570.
    near(item(lambdaCost({ ...base, apiType: 'rest', requestsPerDay: 20_000_000 }, prices), 'apiGateway'), 1913.1, 1e-6);
    near(item(lambdaCost({ ...base, apiType: 'http', requestsPerDay: 20_000_000 }, prices), 'apiGateway'), 570, 1e-6);
    // 1B/day × 30 = 30B calls: $1,165.50 + 667M × $2.80 = $1,867.60 + 19B × $2.38 = $45,220 + 10B × $1.51 = $15,100 → $63,353.10.
    near(item(lambdaCost({ ...base, apiType: 'rest', requestsPerDay: 1_000_000_000 }, prices), 'apiGateway'), 63_353.1, 1e-4);
  });

  test('tieredCost is marginal and takes free units off the bottom', () => {
    const tiers = [
      { upTo: 10, price: 2 },
      { upTo: 20, price: 1 },
      { upTo: null, price: 0.5 },
    ];
    assert.equal(tieredCost(25, tiers), 10 * 2 + 10 * 1 + 5 * 0.5);
    // 4 free units come out of the first band: 6 × 2 + 10 × 1 + 5 × 0.5.
    assert.equal(tieredCost(25, tiers, 4), 12 + 10 + 2.5);
    assert.equal(tieredCost(3, tiers, 4), 0);
  });

  test('durations are billed in whole milliseconds, rounded up', () => {
    // 200.2 ms → 201 ms: 0.5 GB × 0.201 s = 0.1005 GB-s.
    const r = lambdaCost({ ...base, durationMs: 200.2, apiType: 'none', requestsPerDay: 1_000 }, prices);
    assert.equal(r.billedDurationMs, 201);
    near(r.gbSecondsPerInvocation, 0.1005, 1e-12);
  });
});

describe('Lambda extras', () => {
  test('provisioned concurrency: configured GB-s plus the cheaper duration rate', () => {
    // 1 × 0.5 GB × 730 h × 3,600 s = 1,314,000 GB-s × $0.0000041667 = $5.4750438.
    // 10,000/day: 300,000 × 0.1 = 30,000 GB-s, within the 0.5 × 720 h × 3,600 = 1,296,000 GB-s
    // it can serve in the 30-day month → 30,000 × $0.0000097222 = $0.291666. Provisioned = $5.7667098.
    // On-demand compute $0; requests 300,000 × $0.20/1M = $0.06 even with always-free, because
    // the free tier does not apply to functions with provisioned concurrency.
    const r = lambdaCost({ ...base, freeTier: 'always-free', apiType: 'none', requestsPerDay: 10_000, provisioned: { concurrency: 1 } }, prices);
    near(item(r, 'provisioned'), 5.7667098, 1e-6);
    assert.equal(item(r, 'lambdaCompute'), 0);
    near(item(r, 'lambdaRequests'), 0.06);
    assert.equal(r.lambdaFreeTierApplied, false);
  });

  test('provisioned concurrency spills over to on-demand when its capacity is used up', () => {
    // 1M/day: 3,000,000 GB-s; provisioned serves 1,296,000 → 1,296,000 × $0.0000097222 = $12.5999712
    // + $5.4750438 = $18.075015. The other 1,704,000 GB-s × $0.0000166667 = $28.4000568 on-demand.
    const r = lambdaCost({ ...base, apiType: 'none', requestsPerDay: 1_000_000, provisioned: { concurrency: 1 } }, prices);
    near(item(r, 'provisioned'), 18.075015, 1e-5);
    near(item(r, 'lambdaCompute'), 28.4000568, 1e-5);
  });

  test('arm64 provisioned concurrency', () => {
    // 1,314,000 GB-s × $0.0000033334 = $4.3800876, 8 hours only: 1 × 0.5 × 8 × 3,600 = 14,400 × $0.0000033334 = $0.04800096.
    const full = lambdaCost({ ...base, architecture: 'arm64', apiType: 'none', requestsPerDay: 0, provisioned: { concurrency: 1 } }, prices);
    near(item(full, 'provisioned'), 4.3800876, 1e-6);
    const part = lambdaCost({ ...base, architecture: 'arm64', apiType: 'none', requestsPerDay: 0, provisioned: { concurrency: 1, hoursPerMonth: 8 } }, prices);
    near(item(part, 'provisioned'), 0.04800096, 1e-8);
  });

  test('warmer invocations every 5 minutes', () => {
    // 30 × 24 × 60 / 5 = 8,640 pings × 10 ms × 0.5 GB = 43.2 GB-s × $0.0000166667 = $0.00072000144
    // + 8,640 × $0.20/1M = $0.001728 → $0.00244800144.
    const warmer = { invocationsPerMonth: 8_640, durationMs: 10 };
    const r = lambdaCost({ ...base, apiType: 'http', requestsPerDay: 1_000, warmer }, prices);
    near(item(r, 'warmer'), 0.00244800144, 1e-10);
    // Pings do not go through API Gateway: 30,000 × $1/1M = $0.03 only.
    near(item(r, 'apiGateway'), 0.03, 1e-10);
    // With always-free and light traffic they fall inside the allowance: $0.
    assert.equal(item(lambdaCost({ ...base, freeTier: 'always-free', apiType: 'none', requestsPerDay: 1_000, warmer }, prices), 'warmer'), 0);
  });

  test('INIT duration of cold starts is billed', () => {
    // 1,000 cold starts/day × 30 = 30,000 × 500 ms × 1 GB = 15,000 GB-s × $0.0000166667 = $0.2500005.
    const r = lambdaCost({ ...base, memoryMb: 1024, apiType: 'none', requestsPerDay: 100_000, coldStarts: { perMonth: 30_000, initDurationMs: 500 } }, prices);
    near(item(r, 'init'), 0.2500005, 1e-9);
    // The FIELD-NOTES case, 50/day × 150 ms at 512 MB: 1,500 × 0.075 = 112.5 GB-s × $0.0000166667 = $0.001875.
    const small = lambdaCost({ ...base, apiType: 'none', requestsPerDay: 100_000, coldStarts: { perMonth: 1_500, initDurationMs: 150 } }, prices);
    near(item(small, 'init'), 0.00187500375, 1e-10);
  });

  test('CloudWatch Logs ingestion', () => {
    // 1M/day × 30 × 600 B = 18e9 B = 16.7638 GB (2^30 B) × $0.50 = $8.3819. HTTP total $86.0001 + $8.3819 = $94.38.
    const r = lambdaCost({ ...base, logBytesPerInvocation: 600, apiType: 'http', requestsPerDay: 1_000_000 }, prices);
    near(item(r, 'logs'), (18e9 / 2 ** 30) * 0.5, 1e-9);
    near(item(r, 'logs'), 8.3819, 1e-4);
    assert.equal(cents(r.total), '94.38');
    // always-free takes 5 GB off: (16.7638 − 5) × $0.50 = $5.8819.
    const free = lambdaCost({ ...base, logBytesPerInvocation: 600, freeTier: 'always-free', apiType: 'none', requestsPerDay: 1_000_000 }, prices);
    near(item(free, 'logs'), 5.8819, 1e-4);
  });

  test('line items always sum to the total', () => {
    fc.assert(
      fc.property(
        fc.record({
          requestsPerDay: fc.double({ min: 0, max: 5e7, noNaN: true }),
          memoryMb: fc.integer({ min: 128, max: 10_240 }),
          durationMs: fc.double({ min: 1, max: 5_000, noNaN: true }),
          freeTier: fc.constantFrom('none', 'always-free', 'legacy-12-month' as const),
          apiType: fc.constantFrom('http', 'rest', 'none' as const),
          pc: fc.integer({ min: 0, max: 3 }),
        }),
        (v) => {
          const r = lambdaCost({ ...base, ...v, logBytesPerInvocation: 600, provisioned: { concurrency: v.pc }, warmer: { invocationsPerMonth: 8_640, durationMs: 5 } }, prices);
          const sum = r.lineItems.reduce((s, li) => s + li.monthlyCost, 0);
          return Math.abs(sum - r.total) < 1e-9 * Math.max(1, r.total) && r.lineItems.every((li) => li.monthlyCost >= -1e-12);
        },
      ),
      { numRuns: 200, seed: 20261127 },
    );
  });
});

describe('EC2', () => {
  test('two instances for availability', () => {
    // 2 × 730 × $0.0104 = $15.184; 16 GB × $0.08 = $1.28; 1,460 × $0.005 = $7.30 → $23.764.
    const two = ec2Cost({ instanceType: 't3.micro', instances: 2 }, prices);
    near(two.total, 23.764);
    // 2 × t4g.micro without public IPv4: 2 × 730 × $0.0084 = $12.264 + $1.28 = $13.544.
    near(ec2Cost({ instanceType: 't4g.micro', instances: 2, publicIpv4PerInstance: 0 }, prices).total, 13.544);
  });

  test('unknown instance types and bad inputs are rejected by field', () => {
    assert.throws(() => ec2Cost({ instanceType: 'm9.huge' }, prices), (e: unknown) => e instanceof CostInputError && e.field === 'instanceType');
    assert.throws(() => lambdaCost({ ...base, memoryMb: 64, requestsPerDay: 1 }, prices), (e: unknown) => e instanceof CostInputError && e.field === 'memoryMb');
    assert.throws(() => lambdaCost({ ...base, requestsPerDay: -1 }, prices), (e: unknown) => e instanceof CostInputError && e.field === 'requestsPerDay');
  });
});

describe('break-even', () => {
  test('never: provisioned concurrency makes Lambda dearer than EC2 with no traffic', () => {
    // 10 × 2 GB × 730 h × 3,600 s × $0.0000041667 = $219.0... > $11.88 at 0 requests.
    const b = breakEven({ ...base, memoryMb: 2048, apiType: 'http', provisioned: { concurrency: 10 } }, t3micro, prices);
    assert.equal(b.status, 'ec2-cheaper-throughout');
    assert.equal(b.requestsPerDay, null);
    near(b.lambdaCostAtZero, 10 * 2 * 730 * 3600 * 0.0000041667, 1e-6);
  });

  test('never within range: Lambda cheaper throughout', () => {
    // The crossing is at 138,163/day, above the 100,000/day searched.
    const b = breakEven({ ...base, apiType: 'http' }, t3micro, prices, { maxRequestsPerDay: 100_000 });
    assert.equal(b.status, 'lambda-cheaper-throughout');
    assert.equal(b.requestsPerDay, null);
  });

  test('REST and Function URL pairings', () => {
    // REST: 11.882 / (30 × (0.2e-6 + 1.66667e-6 + 3.5e-6)) = 11.882 / (30 × 5.36667e-6) ≈ 73,801.
    // Function URL: 11.882 / (30 × 1.86667e-6) ≈ 212,179.
    near(breakEven({ ...base, apiType: 'rest' }, t3micro, prices).requestsPerDay ?? NaN, 11.882 / (30 * 5.36667e-6), 0.5);
    near(breakEven({ ...base, apiType: 'none' }, t3micro, prices).requestsPerDay ?? NaN, 11.882 / (30 * 1.86667e-6), 0.5);
  });

  test('across free allowances and provisioned capacity (kinks): solved where the lines meet', () => {
    // always-free, HTTP, t3.micro: 0.2e-6 × (30r − 1M) + 1.66667e-5 × (3r − 400,000) + 30r × 1e-6 = 11.882
    // → r (6e-6 + 5.00001e-5 + 3e-5) = 11.882 + 0.2 + 6.66668 → r = 18.74868 / 8.60001e-5 ≈ 218,007.
    const b = breakEven({ ...base, freeTier: 'always-free', apiType: 'http' }, t3micro, prices);
    near(b.requestsPerDay ?? NaN, 18.74868 / 8.60001e-5, 0.01);
  });

  test('property: at the break-even both sides cost the same, below it Lambda is not dearer, above it is', () => {
    fc.assert(
      fc.property(
        fc.record({
          memoryMb: fc.integer({ min: 128, max: 4096 }),
          durationMs: fc.double({ min: 1, max: 3_000, noNaN: true }),
          architecture: fc.constantFrom('x86_64', 'arm64' as const),
          freeTier: fc.constantFrom('none', 'always-free', 'legacy-12-month' as const),
          apiType: fc.constantFrom('http', 'rest', 'none' as const),
          pc: fc.integer({ min: 0, max: 2 }),
          pcHours: fc.integer({ min: 1, max: 730 }),
          instanceType: fc.constantFrom('t2.micro', 't3.micro', 't4g.small', 't3.medium'),
          instances: fc.integer({ min: 1, max: 2 }),
        }),
        (v) => {
          const lambda: Omit<LambdaInput, 'requestsPerDay'> = {
            ...base,
            ...v,
            logBytesPerInvocation: 600,
            provisioned: { concurrency: v.pc, hoursPerMonth: v.pcHours },
            warmer: { invocationsPerMonth: 8_640, durationMs: 5 },
            coldStarts: { perMonth: 3_000, initDurationMs: 150 },
          };
          const ec2 = { instanceType: v.instanceType, instances: v.instances, freeTier: v.freeTier };
          const b = breakEven(lambda, ec2, prices);
          const at = (r: number): number => lambdaCost({ ...lambda, requestsPerDay: r }, prices).total;
          if (b.status !== 'crosses' || b.requestsPerDay === null) return b.status === 'ec2-cheaper-throughout' ? at(0) > b.ec2MonthlyCost : true;
          const r = b.requestsPerDay;
          return (
            Math.abs(at(r) - b.ec2MonthlyCost) < 1e-7 * Math.max(1, b.ec2MonthlyCost) &&
            at(r * 0.999) <= b.ec2MonthlyCost + 1e-9 &&
            at(r * 1.001 + 1) > b.ec2MonthlyCost
          );
        },
      ),
      { numRuns: 300, seed: 42 },
    );
  });
});

describe('price table', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cost-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the default table is dated, sourced and valid', () => {
    assert.equal(prices.date, '2026-11-27');
    assert.equal(prices.region, 'us-east-1');
    assert.ok(prices.sources.length >= 6 && prices.sources.every((s) => s.startsWith('https://')));
    assert.doesNotThrow(() => validatePrices(prices));
  });

  test('an override file changes a result; objects merge and tier lists are replaced', () => {
    // t3.micro at $0.02/h: 730 × 0.02 = $14.60 + $0.64 + $3.65 = $18.89.
    const file = join(dir, 'override.json');
    writeFileSync(file, JSON.stringify({ date: '2027-01-01', ec2: { onDemandHourly: { 't3.micro': 0.02, 'm7g.large': 0.0816 } } }));
    const p = loadPrices(file);
    near(ec2Cost(t3micro, p).total, 18.89);
    assert.equal(p.ec2.onDemandHourly['t4g.micro'], 0.0084); // untouched keys survive the merge
    near(ec2Cost({ instanceType: 'm7g.large' }, p).total, 730 * 0.0816 + 0.64 + 3.65);
    assert.equal(p.date, '2027-01-01');
    const merged = mergePrices({ a: [1, 2, 3], b: { c: 1, d: 2 } }, { a: [9], b: { d: 3 } });
    assert.deepEqual(merged, { a: [9], b: { c: 1, d: 3 } });
  });

  test('a broken override is rejected with the path of the bad field', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ lambda: { computePerGbSecond: { x86_64: [{ upTo: 5, price: 1 }] } } }));
    assert.throws(() => loadPrices(file), (e: unknown) => e instanceof PriceFileError && /computePerGbSecond\.x86_64\[0\]\.upTo/.test(e.message));
  });

  test('CLI --prices override changes the output', async () => {
    const file = join(dir, 'cli-override.json');
    writeFileSync(file, JSON.stringify({ ec2: { onDemandHourly: { 't3.micro': 0.02 } } }));
    const { code, stdout } = await run(['--json', '--prices', file, '--requests-per-day', '1000']);
    assert.equal(code, 0);
    const out = JSON.parse(stdout) as { rows: { ec2: { total: number } }[]; prices: { override: string } };
    near(out.rows[0]!.ec2.total, 18.89);
    assert.equal(out.prices.override, file);
  });
});

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCostCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('CLI', () => {
  test('--json reproduces the reference values', async () => {
    const { code, stdout, stderr } = await run(['--json', '--requests-per-day', '1000,100000,1M', '--duration-ms', '200', '--memory-mb', '512', '--log-bytes', '0']);
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout) as {
      prices: { date: string };
      assumptions: string[];
      rows: { requestsPerDay: number; lambda: Record<'http' | 'rest' | 'none', { total: number }>; ec2: { total: number } }[];
      breakEven: { apiType: string; status: string; requestsPerDay: number | null }[];
    };
    assert.equal(out.prices.date, '2026-11-27');
    assert.deepEqual(out.rows.map((r) => r.requestsPerDay), [1_000, 100_000, 1_000_000]);
    const last = out.rows[2]!;
    assert.equal(cents(last.lambda.none.total), '56.00');
    assert.equal(cents(last.lambda.http.total), '86.00');
    assert.equal(cents(last.lambda.rest.total), '161.00');
    assert.equal(cents(last.ec2.total), '11.88');
    const http = out.breakEven.find((b) => b.apiType === 'http')!;
    assert.equal(http.status, 'crosses');
    assert.ok(Math.abs(http.requestsPerDay! - 138_163) < 1);
    assert.ok(out.assumptions.length > 5);
  });

  test('the table names the price date, every pairing and the break-even', async () => {
    const { code, stdout } = await run(['--requests-per-day', '1000,100000,1000000', '--breakdown', '--warmer-minutes', '5', '--cold-starts-per-day', '20']);
    assert.equal(code, 0);
    for (const s of ['2026-11-27', 'Lambda + HTTP API', 'Lambda + REST API', 'Lambda + Function URL', 'EC2 1× t3.micro', 'Break-even', 'Assumptions', 'Warmer invocations', 'INIT']) {
      assert.ok(stdout.includes(s), `missing "${s}"`);
    }
  });

  test('--help exits 0 and explains every flag', async () => {
    const { code, stdout } = await run(['--help']);
    assert.equal(code, 0);
    const flags = ['--requests-per-day', '--duration-ms', '--memory-mb', '--arch', '--free-tier', '--api', '--days-per-month', '--ec2', '--ec2-count', '--ec2-hours', '--gp3-gb', '--no-ipv4', '--provisioned', '--provisioned-hours', '--warmer-minutes', '--warmer-ms', '--cold-starts-per-day', '--init-ms', '--log-bytes', '--prices', '--max-requests-per-day', '--breakdown', '--json', '--help'];
    for (const f of flags) assert.ok(stdout.includes(f), `--help does not mention ${f}`);
  });

  test('bad flags exit non-zero with a message naming the flag', async () => {
    const cases: [string[], string][] = [
      [['--bogus'], '--bogus'],
      [['--memory-mb', '64'], '--memory-mb'],
      [['--duration-ms', 'fast'], '--duration-ms'],
      [['--arch', 'sparc'], '--arch'],
      [['--api', 'grpc'], '--api'],
      [['--free-tier', 'forever'], '--free-tier'],
      [['--ec2', 'm9.huge'], '--ec2'],
      [['--ec2-count', '1.5'], '--ec2-count'],
      [['--init-ms', '100'], '--init-ms'],
      [['--prices', '/nonexistent/prices.json'], '--prices'],
    ];
    for (const [argv, flag] of cases) {
      const { code, stderr, stdout } = await run(argv);
      assert.notEqual(code, 0, argv.join(' '));
      assert.ok(stderr.includes(flag), `stderr for ${argv.join(' ')} does not name ${flag}: ${stderr}`);
      assert.equal(stdout, '');
    }
  });

  test('as a process: npm-style invocation exits non-zero on a bad flag', () => {
    const cli = new URL('../tools/cost/cli.ts', import.meta.url).pathname;
    const bad = spawnSync(process.execPath, ['--import', 'tsx', cli, '--nope'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--nope/);
    const ok = spawnSync(process.execPath, ['--import', 'tsx', cli, '--json', '--requests-per-day', '1000'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { rows: unknown[] }).rows.length, 1);
  });
});
