/**
 * A tiny run of every performance benchmark, so they never rot. Times are not asserted (the
 * machines are shared and noisy); what must hold whatever the load is: the benchmarks run, their
 * numbers are real measurements, and correctness under load (every 200 committed, no errors).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { coldStart, VARIANTS } from '../bench/perf/cold-start.ts';
import { memory } from '../bench/perf/memory.ts';
import { packageSize } from '../bench/perf/package-size.ts';
import { scale } from '../bench/perf/scale.ts';
import { throughput } from '../bench/perf/throughput.ts';
import { warmHandler } from '../bench/perf/warm-handler.ts';
import { warmStages } from '../bench/perf/warm-stages.ts';
import { resolveNode } from '../tools/shared/node-runtime.ts';
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

  it('cold start on the host Node: fresh processes answer 200, the breakdown adds up, ratios are finite', async () => {
    const host = resolveNode('host');
    const r = await coldStart(2, { withDatabase: true, nodes: [host], progress: false });
    assert.deepEqual(r.variants, [...VARIANTS]);
    assert.equal(r.runtimes.length, 1);
    const [rt] = r.runtimes;
    assert.equal(rt!.node.version, process.version);
    for (const v of VARIANTS) {
      const samples = rt!.samples[v]!;
      assert.equal(samples.length, 2, v);
      for (const s of samples) {
        assert.equal(s.status, 200);
        assert.ok(s.wallMs > 0 && s.processStartMs > 0 && s.loadMs >= 0 && s.firstRequestMs >= 0 && s.cpuMs > 0, JSON.stringify(s));
        assert.ok(s.processStartMs + s.loadMs + s.firstRequestMs <= s.wallMs + 1, 'parts fit inside the wall time');
      }
      const sum = rt!.summary[v]!;
      assert.ok(sum.wallMs.min <= sum.wallMs.median && sum.wallMs.median <= sum.wallMs.max);
    }
    for (const v of ['health', 'track', 'metrics'] as const) {
      const ratio = rt!.ratios[v]!;
      assert.ok(Number.isFinite(ratio.ofMedians) && ratio.ofMedians > 0, v);
      assert.ok(Number.isFinite(ratio.paired.median) && Number.isFinite(ratio.cpuOfMedians), v);
    }
  });

  it('warm handler: percentiles of real invocations', async () => {
    const r = await warmHandler(300, { withDatabase: true, node: resolveNode('host') });
    assert.equal(r.node.version, process.version);
    assert.ok(r.health.p50 > 0 && r.health.p50 <= r.health.p99);
    assert.ok(r.track!.p50 > 0);
  });

  it('throughput: every event answered 200 is committed, no errors', { skip: noWrk }, async () => {
    const r = await throughput(1, 8, { pglite: false });
    assert.ok(r.bare.requestsPerSec > 0);
    assert.equal(r.trackPostgres.non2xx, 0);
    assert.ok(r.trackPostgres.requests > 0);
    assert.ok(r.trackPostgres.stored >= r.trackPostgres.requests, `${r.trackPostgres.stored} stored < ${r.trackPostgres.requests} answered`);
    assert.ok(r.trackPostgres.peakRssMb > 10);
  });

  it('warm servers: repeated runs give medians, spreads and a per-stage split', { skip: noWrk }, async () => {
    const r = await warmStages(1, 2, 8);
    for (const t of ['bare', 'hono', 'healthFloor', 'health', 'trackFloor', 'track'] as const) {
      const x = r.targets[t];
      assert.equal(x.runs.length, 2, t);
      assert.ok(x.requestsPerSec.median > 0 && x.requestsPerSec.min <= x.requestsPerSec.max, t);
      assert.ok(Number.isFinite(x.ratioToBare.median) && x.cpuUsPerRequest.median > 0, t);
    }
    // The split names the work the profile really saw: Node's HTTP layer for both, validation for /track.
    const stages = (t: 'health' | 'track') => new Set(r.stages[t].filter((s) => s.share > 0).map((s) => s.stage));
    assert.ok(stages('health').has('Node HTTP (parser, socket, write)'), [...stages('health')].join(', '));
    assert.ok(stages('track').has('validate (zod schema)'), [...stages('track')].join(', '));
    assert.ok(!stages('health').has('validate (zod schema)'), '/health validates nothing');
  });

  it('memory: RSS of a freshly started server on PostgreSQL', async () => {
    const r = await memory(1, ['bundle'], ['postgres']);
    assert.equal(r.rows.length, 1);
    assert.ok(r.rows[0]!.rssMb.median > 10);
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
