// The comparison report (tools/compare): a tiny `compare:local` end to end, its figures checked
// against the raw samples it stores (percentiles recomputed here, independently of
// tools/bench/stats.ts) and its cost figures against tools/cost/model.ts called with the
// duration it measured; plus the report arithmetic on a synthetic bench, which needs no database.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import type { BenchResult, EndpointResult, Sample } from '../tools/bench/bench.ts';
import { runCompareLocalCli } from '../tools/compare/local.ts';
import { buildReport, type CompareReport } from '../tools/compare/report.ts';
import { runCompareCli } from '../tools/compare/cli.ts';
import { loadChartAssets, renderHtml, writeReport } from '../tools/compare/render.ts';
import { breakEven, ec2Cost, lambdaCost, loadPrices } from '../tools/cost/model.ts';
import { ADMIN_URL, skipPostgres } from './helpers/postgres.ts';
import { skipOrFail } from './helpers/skip.ts';

const prices = loadPrices();
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

// --- independent arithmetic ------------------------------------------------------------------

/** Nearest rank, written out again here so a bug in stats.ts cannot hide itself. */
function nearestRank(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!;
}
const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const is2xx = (s: Sample) => s.status >= 200 && s.status < 300;
const warmOf = (e: EndpointResult) => e.samples.filter((s) => s.phase === 'load' && is2xx(s) && s.cold !== true);
const coldOf = (e: EndpointResult) => e.samples.filter((s) => s.phase === 'cold' && is2xx(s) && s.cold === true);

function checkSummary(label: string, summary: EndpointResult['warm'], values: number[]): void {
  assert.equal(summary.n, values.length, `${label} n`);
  if (values.length === 0) return;
  for (const p of [50, 90, 99] as const) assert.equal(summary[`p${p}`], nearestRank(values, p), `${label} p${p}`);
  assert.equal(summary.max, Math.max(...values), `${label} max`);
  assert.equal(summary.min, Math.min(...values), `${label} min`);
  assert.ok(Math.abs(summary.mean! - avg(values)) < 0.001, `${label} mean ${summary.mean} vs ${avg(values)}`);
}

/** Every figure of the report that derives from samples or the cost model, recomputed. */
function checkReport(r: CompareReport, opts: { estimated?: boolean } = {}): void {
  for (const t of r.bench.targets) {
    for (const e of t.endpoints) {
      const warm = warmOf(e);
      checkSummary(`${t.name} ${e.endpoint} warm`, e.warm, warm.map((s) => s.ms));
      checkSummary(`${t.name} ${e.endpoint} warm in-app`, e.warmServer, warm.filter((s) => s.serverMs !== null).map((s) => s.serverMs!));
      checkSummary(`${t.name} ${e.endpoint} cold`, e.cold, coldOf(e).map((s) => s.ms));
      const okLoad = e.samples.filter((s) => s.phase === 'load' && is2xx(s)).length;
      // Rounding: req/s to 0.1, and the wall time to the µs (relative 1e-3 at a few ms).
      const rps = okLoad / (e.loadWallMs / 1000);
      assert.ok(Math.abs(e.throughputRps! - rps) <= 0.051 + rps * 1e-3, `${t.name} ${e.endpoint} throughput ${e.throughputRps} vs ${rps}`);
    }
  }
  // The cost model got the mean billed duration of the warm POST /track Lambda invocations…
  const lambda = r.bench.targets.find((t) => t.name === 'lambda')!;
  const track = lambda.endpoints.find((e) => e.endpoint === 'track')!;
  // (or, when billing is not visible, the mean Server-Timing of those answers)…
  const billed = opts.estimated
    ? warmOf(track).filter((s) => s.serverMs !== null).map((s) => s.serverMs!)
    : warmOf(track).filter((s) => s.lambda).map((s) => s.lambda!.billedDurationMs);
  assert.ok(billed.length > 0);
  assert.ok(Math.abs(r.cost.lambdaInput.durationMs - avg(billed)) < 1e-9, `duration ${r.cost.lambdaInput.durationMs} vs ${avg(billed)}`);
  if (r.lambdaMeasured.warmer) assert.ok(Math.abs(r.cost.lambdaInput.warmer!.durationMs - avg(r.lambdaMeasured.warmer.billedMs)) < 1e-9);
  // …and every cost figure is what the model says for that input.
  const { lambdaInput, ec2Input } = r.cost;
  assert.equal(r.cost.ec2Monthly, ec2Cost(ec2Input, prices).total);
  for (const level of r.cost.levels) {
    for (const apiType of ['http', 'rest', 'none'] as const) {
      assert.equal(level.lambda[apiType], lambdaCost({ ...lambdaInput, requestsPerDay: level.requestsPerDay, apiType }, prices).total, `${apiType} at ${level.requestsPerDay}/day`);
    }
  }
  r.cost.curve.requestsPerDay.forEach((x, i) => assert.equal(r.cost.curve.http[i], lambdaCost({ ...lambdaInput, requestsPerDay: x, apiType: 'http' }, prices).total));
  for (const b of r.cost.breakEven) assert.deepEqual(b, breakEven({ ...lambdaInput, apiType: b.apiType }, ec2Input, prices));
  // The chart draws those same numbers, and marks the break-evens that exist.
  const costChart = r.charts.find((c) => c.id === 'cost')!.spec as { x: number[]; markers: { x: number }[]; series: { values: (number | null)[] }[] };
  assert.deepEqual(costChart.x, r.cost.curve.requestsPerDay);
  assert.deepEqual(costChart.series[1]!.values, r.cost.curve.http.map((v) => (v > 0 ? v : null)));
  assert.deepEqual(
    costChart.markers.map((m) => m.x),
    r.cost.breakEven.filter((b) => b.status === 'crosses').map((b) => b.requestsPerDay!).sort((a, b) => a - b),
  );
}

function checkSelfContained(html: string): void {
  assert.doesNotMatch(html, /<script[^>]*\ssrc\s*=/i, 'no external scripts');
  assert.doesNotMatch(html, /<link[\s>]/i, 'no linked stylesheets or icons');
  assert.doesNotMatch(html, /(src|href)\s*=\s*["']?\s*(https?:)?\/\//i, 'no http(s) or protocol-relative references');
  assert.doesNotMatch(html, /url\(\s*["']?(https?:)?\/\//i, 'no remote CSS urls');
  assert.doesNotMatch(html, /@import/i);
  assert.match(html, /MlopsCharts/, 'the chart kit is inlined');
  assert.match(html, /uPlot/, 'uPlot is inlined');
}

// --- a synthetic bench: no database needed ---------------------------------------------------

function syntheticBench(): BenchResult {
  const mk = (name: string, lambda: boolean): BenchResult['targets'][number] => ({
    name,
    url: `http://127.0.0.1/${name}`,
    cold: lambda ? { mode: 'forced', waitMs: null, note: 'forced' } : { mode: 'none', waitMs: null, note: 'n/a' },
    endpoints: (['health', 'track', 'metrics'] as const).map((endpoint, k) => {
      const samples: Sample[] = [];
      for (let i = 0; i < 20; i++) {
        const ms = (lambda ? 10 : 4) + k * 3 + (i % 5);
        const billed = Math.ceil(ms - 2);
        samples.push({
          phase: 'load', at: i, ms, ttfbMs: ms, status: i === 19 && k === 2 ? 500 : 200, cold: i === 3 && lambda ? true : false,
          serverMs: ms / 2, instance: 'x', requestId: `${name}-${endpoint}-${i}`,
          ...(lambda ? { lambda: { durationMs: ms - 2.5, billedDurationMs: billed, initDurationMs: null, maxMemoryUsedMb: 60 } } : {}),
        });
      }
      if (lambda) {
        for (let i = 0; i < 2; i++) {
          samples.push({ phase: 'cold', at: 100 + i, ms: 300 + i, ttfbMs: 300, status: 200, cold: true, serverMs: 20, instance: 'y', requestId: `c${i}`,
            lambda: { durationMs: 30, billedDurationMs: 251 + i, initDurationMs: 220 + i, maxMemoryUsedMb: 70 } });
        }
      }
      return { endpoint, method: endpoint === 'track' ? 'POST' : 'GET', path: `/${endpoint}`, samples } as unknown as EndpointResult;
    }),
  });
  const bench: BenchResult = {
    schema: 'mlops-bench/1', startedAt: '2026-11-27T00:00:00.000Z', finishedAt: '2026-11-27T00:01:00.000Z',
    machine: { hostname: 'h', platform: 'Linux', arch: 'x64', cpus: 2, cpuModel: 'Test CPU', memoryGb: 4, node: 'v20', loadAverage: { start: 3, end: 1 } },
    settings: { endpoints: ['health', 'track', 'metrics'], requests: 20, concurrency: 2, warmup: 0, coldSamples: 2, coldWaitMs: null, timeoutMs: 1000, seed: 1, apiKey: false },
    percentileMethod: 'nearest-rank', targets: [mk('server', false), mk('lambda', true)],
  };
  return bench;
}

describe('the report on a synthetic bench', () => {
  test('figures follow the samples and the cost model, the HTML is self-contained, and --from re-prices the saved samples', async () => {
    const { reanalyse } = await import('../tools/bench/bench.ts');
    const bench = syntheticBench();
    for (const t of bench.targets) for (const e of t.endpoints) e.loadWallMs = 100;
    reanalyse(bench);
    const report = buildReport({
      mode: 'local', bench, prices, warmerBilledMs: [6, 8],
      costSettings: { memoryMb: 512, architecture: 'arm64', freeTier: 'none', ec2Type: 't3.micro', gp3Gb: 8, warmerEveryMinutes: 5 },
      environment: { database: { kind: 'postgres', description: 'test' }, server: { how: 'test', startupMs: 150 }, lambda: { how: 'test', memoryMb: 512, artifact: null, artifactBytes: null, maxConcurrency: 10 } },
    });
    checkReport(report);
    // Warm /track on lambda: ms = 13 + i%5 for 19 warm samples (i = 3 is cold), billed = ceil(ms − 2).
    const expected = [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19].map((i) => 11 + (i % 5));
    assert.equal(report.cost.lambdaInput.durationMs, avg(expected));
    assert.deepEqual(report.cost.lambdaInput.warmer, { invocationsPerMonth: 8640, durationMs: 7 });
    assert.deepEqual(report.lambdaMeasured.initDurationMs.p50, 220);
    assert.equal(report.bench.targets[1]!.endpoints[0]!.counts.coldInLoad, 1);
    assert.deepEqual(report.bench.targets[0]!.endpoints[2]!.counts.errors, { '500': 1 });
    // The verdict states the break-even it computed and its assumptions.
    const http = report.cost.breakEven.find((b) => b.apiType === 'http')!;
    assert.equal(http.status, 'crosses');
    assert.match(report.verdict.join(' '), /up to [\d.]+k requests a day/);
    assert.ok(report.assumptions.some((a) => /local emulator .*not AWS/.test(a)));
    assert.ok(report.assumptions.some((a) => a.includes(prices.date)));
    assert.ok(report.assumptions.some((a) => /load average 3 at the start .* other work was competing/.test(a)));
    const html = renderHtml(report, loadChartAssets(), { json: 'r.json', md: 'r.md' });
    checkSelfContained(html);

    // compare --from: the same samples re-priced with other flags, nothing else changed.
    const dir = mkdtempSync(join(tmpdir(), 'mlops-compare-from-'));
    try {
      const saved = writeReport(report, dir);
      let out = '';
      let err = '';
      const code = await runCompareCli(['--from', saved.json, '--memory-mb', '1024', '--out', join(dir, 'again')], { stdout: (t) => (out += t), stderr: (t) => (err += t) });
      assert.equal(code, 0, err);
      const again = JSON.parse(readFileSync(join(dir, 'again', readdirSync(join(dir, 'again')).find((f) => f.endsWith('.json'))!), 'utf8')) as CompareReport;
      checkReport(again);
      assert.equal(again.cost.lambdaInput.memoryMb, 1024);
      assert.equal(again.cost.lambdaInput.architecture, 'arm64', 'unflagged settings keep the saved values');
      assert.deepEqual(again.cost.lambdaInput.warmer, report.cost.lambdaInput.warmer);
      assert.deepEqual(again.bench, JSON.parse(JSON.stringify(report.bench)));
      assert.ok(again.cost.levels[4]!.lambda.http > report.cost.levels[4]!.lambda.http, 'twice the memory costs more');
      assert.ok(again.notes.some((n) => n.startsWith('Re-priced from')));
      assert.match(out, /Verdict/);
      const bad = await runCompareCli(['--from', join(dir, 'missing.json')], { stdout: () => {}, stderr: (t) => (err = t) });
      assert.equal(bad, 2);
      assert.match(err, /--from: cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// --- the CLI ---------------------------------------------------------------------------------

const runLocal = async (args: string[]) => {
  let out = '';
  let err = '';
  const code = await runCompareLocalCli(args, { stdout: (t) => (out += t), stderr: (t) => (err += t), progress: { write: () => true } });
  return { code, out, err };
};

describe('compare:local usage', () => {
  test('--help lists the flags', async () => {
    const { code, out } = await runLocal(['--help']);
    assert.equal(code, 0);
    for (const flag of ['--requests', '--concurrency', '--cold-samples', '--out', '--database', '--postgres']) assert.ok(out.includes(flag), flag);
  });

  test('bad arguments exit 2', async () => {
    assert.equal((await runLocal(['--database', 'mysql'])).code, 2);
    assert.equal((await runLocal(['--requests', '-3'])).code, 2);
    assert.equal((await runLocal(['--arch', 'sparc'])).code, 2);
    const far = await runLocal(['--postgres', 'postgres://u@db.example.com:5432/postgres']);
    assert.equal(far.code, 2);
    assert.match(far.err, /not this machine/);
  });

  test('explains and stops when PostgreSQL is not reachable', async () => {
    const { code, err } = await runLocal(['--postgres', 'postgres://postgres@127.0.0.1:1/postgres', '--no-package']);
    assert.equal(code, 1);
    assert.match(err, /PostgreSQL is not reachable at 127\.0\.0\.1:1/);
    assert.match(err, /Lambda function has no embedded database/);
  });
});

describe('compare against given URLs', () => {
  const run = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await runCompareCli(args, { stdout: (t) => (out += t), stderr: (t) => (err += t), progress: { write: () => true } });
    return { code, out, err };
  };

  test('usage: both targets, by name; URLs elsewhere need --i-own-this-target', async () => {
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--cold-wait', '--billed-ms', '--from', '--i-own-this-target']) assert.ok(help.out.includes(flag), flag);
    assert.match((await run(['--target', 'server=http://127.0.0.1:1'])).err, /exactly --target server=URL and --target lambda=URL/);
    const far = await run(['--target', 'server=https://a.example.com', '--target', 'lambda=https://b.example.com']);
    assert.equal(far.code, 2);
    assert.match(far.err, /refusing to load server \(a\.example\.com\), lambda \(b\.example\.com\)/);
    assert.equal((await run(['--target', 'server=http://127.0.0.1:1', '--target', 'lambda=http://127.0.0.1:2', '--billed-ms', '-1'])).code, 2);
  });

  test('without billing figures it estimates the duration from Server-Timing and says so', async () => {
    // Stand-ins for the two deployments: the service's headers, never cold.
    const svc = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-cold-start': 'false', 'x-request-id': randomUUID(), 'server-timing': 'app;dur=4.5' });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => svc.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(svc.address() as AddressInfo).port}`;
    const dir = mkdtempSync(join(tmpdir(), 'mlops-compare-remote-'));
    try {
      const { code, err } = await run(['--target', `server=${base}/s`, '--target', `lambda=${base}/l`, '--requests', '10', '--concurrency', '2', '--cold-wait', '0s', '--cold-samples', '1', '--out', dir]);
      assert.equal(code, 0, err);
      const r = JSON.parse(readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!), 'utf8')) as CompareReport;
      checkReport(r, { estimated: true });
      assert.equal(r.mode, 'remote');
      assert.equal(r.cost.durationKind, 'estimated');
      assert.equal(r.cost.lambdaInput.durationMs, 4.5);
      assert.ok(r.notes.some((n) => /estimated from Server-Timing/.test(n)));
      assert.match(r.verdict.join(' '), /No cold start was caught: 3 cold sample\(s\)/);
      assert.match(r.verdict.join(' '), /estimated from Server-Timing, a lower bound/);
    } finally {
      await new Promise<void>((r) => svc.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('compare:local end to end (tiny)', { skip: skipPostgres ? `${skipPostgres}: the Lambda side needs PostgreSQL` : false }, () => {
  let out = '';
  let dist = '';
  let run: Awaited<ReturnType<typeof runLocal>>;
  let report: CompareReport;
  let files: string[];
  let databasesBefore: string[];
  const listDatabases = async () => {
    const sql = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
    try {
      return (await sql<{ datname: string }[]>`select datname from pg_database where datname like 'mlops_compare_%' order by 1`).map((r) => r.datname);
    } finally {
      await sql.end();
    }
  };

  before(async () => {
    out = mkdtempSync(join(tmpdir(), 'mlops-compare-out-'));
    dist = mkdtempSync(join(tmpdir(), 'mlops-compare-dist-'));
    databasesBefore = await listDatabases();
    run = await runLocal(['--requests', '30', '--concurrency', '2', '--warmup', '6', '--cold-samples', '2', '--out', out, '--dist', dist, '--postgres', ADMIN_URL, '--node', 'host']);
    files = readdirSync(out);
    const json = files.find((f) => f.endsWith('.json'));
    if (json) report = JSON.parse(readFileSync(join(out, json), 'utf8')) as CompareReport;
  });
  after(() => {
    if (out) rmSync(out, { recursive: true, force: true });
    if (dist) rmSync(dist, { recursive: true, force: true });
  });

  test('finishes, writes html + md + json, prints the verdict and drops its database', async () => {
    assert.equal(run.code, 0, run.err);
    assert.equal(files.filter((f) => /^compare-\d{8}-\d{6}\.(html|md|json)$/.test(f)).length, 3, files.join(', '));
    assert.match(run.out, /Verdict/);
    assert.match(run.err, /\[6\/6\] Writing the report/);
    assert.deepEqual(await listDatabases(), databasesBefore, 'the throwaway database is gone');
  });

  test('the counts are what was asked for, and Lambda cold starts were forced', () => {
    for (const t of report.bench.targets) {
      for (const e of t.endpoints) {
        assert.equal(e.samples.filter((s) => s.phase === 'load').length, 30);
        assert.equal(e.samples.filter((s) => s.phase === 'warmup').length, 6);
        assert.deepEqual(e.counts.errors, {}, `${t.name} ${e.endpoint}: ${e.samples.find((s) => s.error)?.error}`);
      }
    }
    const server = report.bench.targets.find((t) => t.name === 'server')!;
    assert.equal(server.cold.mode, 'none');
    assert.ok(server.endpoints.every((e) => e.samples.every((s) => s.cold === false)), 'the server never claims a cold start');
    const lambda = report.bench.targets.find((t) => t.name === 'lambda')!;
    assert.equal(lambda.cold.mode, 'forced');
    for (const e of lambda.endpoints) {
      const cold = e.samples.filter((s) => s.phase === 'cold');
      assert.equal(cold.length, 2);
      assert.ok(cold.every((s) => s.cold === true && s.lambda!.initDurationMs! > 0), 'every forced sample met a cold start, with an Init Duration');
      assert.ok(e.samples.filter((s) => s.status === 200).every((s) => s.lambda && s.lambda.billedDurationMs >= Math.floor(s.lambda.durationMs)), 'every answer joined to its REPORT record');
    }
    assert.equal(report.environment.database.kind, 'postgres');
    assert.ok(report.environment.server.startupMs! > 0);
  });

  test("the report's figures match its raw samples and the cost model", () => {
    checkReport(report);
    assert.equal(report.cost.lambdaInput.memoryMb, 512);
    assert.ok(report.lambdaMeasured.warmer && report.lambdaMeasured.warmer.n > 0, 'the warm-up ping was timed');
    assert.ok(report.verdict.length >= 4);
    assert.ok(report.assumptions.some((a) => /not AWS/.test(a)));
  });

  test('the HTML references nothing outside itself; in Chromium it loads without console errors or requests, every chart with a canvas', async (t) => {
    const html = readFileSync(join(out, files.find((f) => f.endsWith('.html'))!), 'utf8');
    checkSelfContained(html);
    if (!CHROMIUM) return skipOrFail(t, 'Chromium not installed (.ci/run installs it): only the static checks of the HTML ran');
    const { screenshotReport } = await import('../tools/compare/screenshot.ts');
    // Fails on any console error, any request leaving the file, or a chart without a canvas.
    const { charts } = await screenshotReport(join(out, files.find((f) => f.endsWith('.html'))!), join(out, 'charts.png'));
    assert.equal(charts, report.charts.length);
  });

  test('the Markdown has the verdict and the cost table', () => {
    const md = readFileSync(join(out, files.find((f) => f.endsWith('.md'))!), 'utf8');
    assert.match(md, /## Verdict/);
    assert.match(md, /\| requests\/day \| Lambda \+ HTTP API \|/);
    assert.ok(md.includes(report.verdict[0]!));
  });
});
