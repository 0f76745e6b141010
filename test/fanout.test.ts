/**
 * A tiny run of the fan-out benchmark (npm run bench:fanout), so it never rots: two workers per
 * subject for a second, local commits, no PgBouncer. Times are never asserted (shared, noisy
 * machines); what must hold whatever the load: both subjects ran through the same harness, the
 * figures are real measurements, and every event acknowledged is stored.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT } from './helpers/package.ts';
import { skipPostgres } from './helpers/postgres.ts';

describe('fan-out benchmark (tiny run)', { skip: skipPostgres }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mlops-fanout-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the service and the one-INSERT peer; acknowledged = stored', () => {
    const json = join(dir, 'fanout.json');
    // The package is built into the temporary folder: other suites build dist/ at the same time.
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/fanout/cli.ts', '--quick', '--n', '2', '--seconds', '1', '--delay', 'off', '--no-pooler', '--out-dir', join(dir, 'dist'), '--json', json],
      { cwd: ROOT, encoding: 'utf8', timeout: 240_000 },
    );
    assert.equal(r.status, 0, `exit ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /svc ev\/s\s+svc p50\s+svc p99\s+svc max\s+peer ev\/s/);
    assert.match(r.stderr, /N=2 service delay=0ms … 1 s/);

    const report = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(report.benchmark, 'fanout');
    assert.deepEqual(report.failures, []);
    assert.deepEqual(report.options.n, [2]);
    assert.deepEqual(report.options.delaysMs, [0]);
    assert.deepEqual(
      report.runs.map((x: any) => [x.subject, x.n, x.delayMs, x.pooled]),
      [
        ['service', 2, 0, false],
        ['peer', 2, 0, false],
      ],
    );
    for (const run of report.runs) {
      const what = `${run.subject} run`;
      assert.equal(run.failed, undefined, what);
      assert.equal(run.settings.commitDelay, '0');
      assert.equal(run.workers.length, 2, what);
      assert.equal(run.hungWorkers, 0, what);
      // Every acknowledged event was found in the table, and something was acknowledged.
      assert.ok(run.acknowledged > 0, what);
      assert.equal(run.stored, run.acknowledged, `${what}: ${run.acknowledged} acknowledged, ${run.stored} stored`);
      // The counts add up: per worker and over the run.
      const total = Object.values(run.statuses as Record<string, number>).reduce((a, b) => a + b, 0);
      assert.equal(total, run.acknowledged + run.errors + run.workers.reduce((a: number, w: any) => a + w.duplicates, 0), what);
      assert.equal(run.acknowledged, run.workers.reduce((a: number, w: any) => a + w.acknowledged, 0), what);
      assert.equal(run.requests, run.workers.reduce((a: number, w: any) => a + w.requests, 0), what);
      for (const w of run.workers) {
        assert.ok(w.requests > 0 && w.ackedInWindow <= w.requests, what);
        assert.ok(w.elapsedMs >= 1000, `${what}: a worker measured for ${w.elapsedMs} ms`);
      }
      assert.ok(run.eventsPerSec > 0, what);
      const l = run.latencyMs;
      assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, `${what}: ${JSON.stringify(l)}`);
    }
    // The peer answers by itself; its harness errors would be the benchmark's own bug.
    assert.equal(report.runs[1].errors, 0, report.runs[1].errorSamples.join('\n'));
  });
});
