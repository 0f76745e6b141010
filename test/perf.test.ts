/**
 * A tiny run of every performance benchmark, so they never rot. Times are not asserted (the
 * machines are shared and noisy); what must hold whatever the load is: the benchmarks run, their
 * numbers are real measurements, and correctness under load (every 200 committed, no errors).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { coldStart } from '../bench/perf/cold-start.ts';
import { packageSize } from '../bench/perf/package-size.ts';
import { scale } from '../bench/perf/scale.ts';
import { throughput } from '../bench/perf/throughput.ts';
import { warmHandler } from '../bench/perf/warm-handler.ts';
import { ROOT } from './helpers/package.ts';
import { skipPostgres } from './helpers/postgres.ts';

const noWrk = spawnSync('wrk', ['--version']).error ? 'wrk not installed (apt-get install wrk)' : false;
if (noWrk && process.env.CI === 'true') throw new Error('wrk is required under CI=true');

describe('performance benchmarks (tiny run)', { skip: skipPostgres }, () => {
  before(() => {
    // The benchmarks measure what ships: dist/ from the real package script.
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/package-lambda.ts', '--quiet'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('package size reads the zip it measures', () => {
    const r = packageSize();
    assert.ok(r.zipBytes > 10_000);
    assert.ok(r.files.some((f) => f.name === 'index.mjs'));
  });

  it('cold start: fresh processes answer 200 and the breakdown adds up', async () => {
    const r = await coldStart(2, { withDatabase: true });
    for (const s of [...r.hello, ...r.health, ...r.track!]) {
      assert.ok(s.wallMs > 0 && s.processStartMs > 0 && s.loadMs >= 0);
      assert.ok(s.processStartMs + s.loadMs + s.firstRequestMs <= s.wallMs + 1, 'parts fit inside the wall time');
    }
    assert.ok(Number.isFinite(r.ratios.health) && Number.isFinite(r.ratios.track!));
  });

  it('warm handler: percentiles of real invocations', async () => {
    const r = await warmHandler(300, { withDatabase: true });
    assert.ok(r.health.p50 > 0 && r.health.p50 <= r.health.p99);
    assert.ok(r.track!.p50 > 0);
  });

  it('throughput: every event answered 200 is committed, no errors', { skip: noWrk }, async () => {
    const r = await throughput(1, 8, { pglite: false });
    assert.ok(r.bare.requestsPerSec > 0 && r.health.requestsPerSec > 0);
    assert.equal(r.trackPostgres.non2xx, 0);
    assert.ok(r.trackPostgres.requests > 0);
    assert.ok(r.trackPostgres.stored >= r.trackPostgres.requests, `${r.trackPostgres.stored} stored < ${r.trackPostgres.requests} answered`);
    assert.ok(r.trackPostgres.peakRssMb > 10);
  });

  it('scale: seeds through the write path and measures both endpoints', async () => {
    const r = await scale('postgres', 200, 1000, 5, 300);
    assert.equal(r.large.events, 1000);
    assert.equal(r.tail.events, 1300);
    assert.equal(r.tail.unfolded, 300);
    assert.ok(r.small.metricsMs > 0 && r.large.analyticsMs > 0);
    assert.ok(r.large.metricsBytes >= r.small.metricsBytes);
  });
});
