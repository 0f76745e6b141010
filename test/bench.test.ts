// The latency bench (tools/bench): percentile maths against hand values, then the bench against a
// tiny local node:http server that decides itself which answers are cold, so the test can check
// the bench's counts and its cold/warm split request by request.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseCount, parseDuration, parseEndpoints, parseTargets, UsageError } from '../tools/bench/args.ts';
import { BenchUsageError, isLoopbackUrl, parseServerTiming, runBench, type BenchResult, type EndpointResult } from '../tools/bench/bench.ts';
import { runBenchCli } from '../tools/bench/cli.ts';
import { createProgress } from '../tools/bench/progress.ts';
import { histogramCounts, logEdges, percentile, summarize } from '../tools/bench/stats.ts';

describe('percentiles (nearest rank)', () => {
  test('hand values on 1..10', () => {
    const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    // rank = ceil(p/100 · 10): p50 → 5th, p90 → 9th, p99 → ceil(9.9) = 10th, p0 → 1st.
    assert.equal(percentile(xs, 50), 5);
    assert.equal(percentile(xs, 90), 9);
    assert.equal(percentile(xs, 99), 10);
    assert.equal(percentile(xs, 0), 1);
    assert.equal(percentile(xs, 100), 10);
    assert.equal(percentile(xs, 10), 1);
    assert.equal(percentile(xs, 11), 2);
  });

  test('the textbook example {15, 20, 35, 40, 50}', () => {
    const xs = [15, 20, 35, 40, 50];
    // Nearest-rank method: p5 = 15, p30 = 20 (rank ceil(1.5) = 2), p40 = 20 (rank 2), p50 = 35 (rank ceil(2.5) = 3), p100 = 50.
    assert.equal(percentile(xs, 5), 15);
    assert.equal(percentile(xs, 30), 20);
    assert.equal(percentile(xs, 40), 20);
    assert.equal(percentile(xs, 50), 35);
    assert.equal(percentile(xs, 100), 50);
  });

  test('p99 of 200 samples is the 198th, of 1000 the 990th', () => {
    const xs = Array.from({ length: 200 }, (_, i) => i + 1);
    assert.equal(percentile(xs, 99), 198);
    assert.equal(percentile(xs, 90), 180);
    const ys = Array.from({ length: 1000 }, (_, i) => i + 1);
    assert.equal(percentile(ys, 99), 990);
  });

  test('summaries sort their input and handle one and zero samples', () => {
    const s = summarize([40, 10, 30, 20]);
    // Sorted 10 20 30 40: p50 rank 2 = 20, p90 rank ceil(3.6) = 4 = 40; mean 25.
    assert.deepEqual(s, { n: 4, min: 10, mean: 25, p50: 20, p90: 40, p99: 40, max: 40 });
    assert.deepEqual(summarize([7.5]), { n: 1, min: 7.5, mean: 7.5, p50: 7.5, p90: 7.5, p99: 7.5, max: 7.5 });
    assert.deepEqual(summarize([]), { n: 0, min: null, mean: null, p50: null, p90: null, p99: null, max: null });
    assert.equal(percentile([], 50), null);
    assert.throws(() => percentile([1], 101), RangeError);
  });

  test('log-spaced histogram bins hold every value exactly once', () => {
    const values = [1, 2, 3, 10, 50, 100, 100];
    const edges = logEdges(values, 4);
    assert.equal(edges.length, 5);
    assert.ok(Math.abs(edges[0]! - 1) < 1e-9);
    // Edges 1, 3.16, 10, 31.6, 100(+ε); bins are [lo, hi): 1 2 3 | — | 10 | 50 100 100.
    assert.deepEqual(histogramCounts(values, edges), [3, 0, 1, 3]);
  });
});

describe('flag and header parsing', () => {
  test('durations', () => {
    assert.equal(parseDuration('--cold-wait', '15m'), 900_000);
    assert.equal(parseDuration('--cold-wait', '1h30m'), 5_400_000);
    assert.equal(parseDuration('--cold-wait', '90s'), 90_000);
    assert.equal(parseDuration('--cold-wait', '250ms'), 250);
    assert.equal(parseDuration('--cold-wait', '2'), 2000);
    assert.throws(() => parseDuration('--cold-wait', '15 minutes'), /--cold-wait expects a duration/);
    assert.throws(() => parseDuration('--cold-wait', 'm15'), UsageError);
  });

  test('targets, counts, endpoints', () => {
    assert.deepEqual(parseTargets(['server=http://127.0.0.1:5001/', 'http://localhost:3001/default/fn']), [
      { name: 'server', url: 'http://127.0.0.1:5001' },
      { name: 'target2', url: 'http://localhost:3001/default/fn' },
    ]);
    assert.throws(() => parseTargets([]), /at least one --target/);
    assert.throws(() => parseTargets(['a=notaurl']), /not a URL/);
    assert.throws(() => parseTargets(['a=ftp://x']), /only http/);
    assert.throws(() => parseTargets(['a=http://x', 'a=http://y']), /used twice/);
    assert.throws(() => parseTargets(['a=http://x/?q=1']), /without \?query/);
    assert.equal(parseCount('--requests', '1_000', 5), 1000);
    assert.throws(() => parseCount('--requests', '0', 5), /whole number from 1/);
    assert.throws(() => parseCount('--requests', '2.5', 5), UsageError);
    assert.deepEqual(parseEndpoints('/health, track'), ['health', 'track']);
    assert.throws(() => parseEndpoints('health,analytics'), /unknown endpoint "analytics"/);
  });

  test('loopback detection is literal (no DNS)', () => {
    for (const u of ['http://127.0.0.1:5001', 'http://localhost', 'http://api.localhost:80', 'http://[::1]:3000', 'https://127.8.9.10/x']) assert.ok(isLoopbackUrl(u), u);
    for (const u of ['http://example.com', 'http://10.0.0.1', 'http://127.0.0.1.nip.io', 'http://localhost.example.com', 'not a url']) assert.ok(!isLoopbackUrl(u), u);
  });

  test('Server-Timing', () => {
    assert.equal(parseServerTiming('app;dur=12.34'), 12.34);
    assert.equal(parseServerTiming('cdn;dur=1, app;desc="x";dur=3.5'), 3.5);
    assert.equal(parseServerTiming('db;dur=3'), null);
    assert.equal(parseServerTiming(undefined), null);
  });
});

// ---------------------------------------------------------------------------------------------
// A tiny service: three prefixes, each its own "target", and a log of what it answered.

interface Answered {
  id: string;
  prefix: string;
  path: string;
  status: number;
  cold: boolean | null;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function tinyService() {
  const log: Answered[] = [];
  const coldNext = new Map<string, boolean>();
  const seq = new Map<string, number>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const [, prefix = '', ...rest] = (req.url ?? '/').split('/');
      const path = `/${rest.join('/')}`;
      const n = (seq.get(`${prefix}${path}`) ?? 0) + 1;
      seq.set(`${prefix}${path}`, n);
      // Prefix "a": forced cold by the hook, plus every 7th /health by itself (a cold start under load).
      // Prefix "b": never cold (the hook does nothing). Prefix "c": no X-Cold-Start header at all.
      let cold: boolean | null = prefix === 'c' ? null : coldNext.get(prefix) === true || (prefix === 'a' && path === '/health' && n % 7 === 0);
      coldNext.set(prefix, false);
      // Every 10th /metrics fails, to count errors by status.
      const status = path === '/metrics' && n % 10 === 0 ? 503 : path === '/track' && req.method !== 'POST' ? 405 : 200;
      if (status !== 200) cold = prefix === 'c' ? null : false;
      const id = `${prefix}${path}#${n}`;
      log.push({ id, prefix, path, status, cold, body, headers: req.headers });
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': id, 'x-instance-id': `inst-${prefix}`, 'server-timing': 'app;dur=0.25' };
      if (cold !== null) headers['x-cold-start'] = String(cold);
      res.writeHead(status, headers);
      res.end(status === 200 ? '{"ok":true}' : '{"error":"unavailable"}');
    });
  });
  return {
    server,
    log,
    makeCold: (prefix: string): void => {
      coldNext.set(prefix, true);
    },
    async start(): Promise<string> {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
  };
}

const ep = (r: BenchResult, target: string, endpoint: string): EndpointResult => r.targets.find((t) => t.name === target)!.endpoints.find((e) => e.endpoint === endpoint)!;

describe('the bench against a tiny local service', () => {
  const svc = tinyService();
  let base = '';
  let result: BenchResult;
  const sleeps: number[] = [];

  before(async () => {
    base = await svc.start();
    result = await runBench({
      targets: [
        { name: 'a', url: `${base}/a`, forceCold: async () => svc.makeCold('a') },
        { name: 'b', url: `${base}/b`, forceCold: async () => {} },
        { name: 'c', url: `${base}/c`, forceCold: async () => svc.makeCold('c') },
      ],
      requests: 40,
      concurrency: 4,
      warmup: 6,
      coldSamples: 3,
      apiKey: 'k'.repeat(20),
      metricsToken: 'scrape-token',
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
  });
  after(() => new Promise<void>((r) => svc.server.close(() => r())));

  test('sends exactly warmup + requests + cold samples per target and endpoint, and records each', () => {
    for (const t of ['a', 'b', 'c']) {
      for (const e of ['health', 'track', 'metrics']) {
        const r = ep(result, t, e);
        assert.equal(r.counts.sent, 6 + 40 + 3, `${t} ${e}`);
        assert.equal(r.samples.filter((s) => s.phase === 'warmup').length, 6);
        assert.equal(r.samples.filter((s) => s.phase === 'load').length, 40);
        assert.equal(r.samples.filter((s) => s.phase === 'cold').length, 3);
        assert.equal(svc.log.filter((l) => l.prefix === t && l.path === `/${e}`).length, 49);
      }
    }
    assert.equal(sleeps.length, 0, 'forced targets never wait');
  });

  test('splits cold from warm by the X-Cold-Start header the service sent', () => {
    const truth = new Map(svc.log.map((l) => [l.id, l]));
    for (const t of result.targets) {
      for (const e of t.endpoints) {
        for (const s of e.samples) {
          const l = truth.get(s.requestId!);
          assert.ok(l, `sample ${s.requestId} was answered by the service`);
          assert.equal(s.cold, l.cold);
          assert.equal(s.status, l.status);
          assert.equal(s.serverMs, 0.25);
        }
        const ok = (s: { status: number }) => s.status === 200;
        const warm = e.samples.filter((s) => s.phase === 'load' && ok(s) && truth.get(s.requestId!)!.cold !== true);
        const cold = e.samples.filter((s) => s.phase === 'cold' && ok(s) && truth.get(s.requestId!)!.cold === true);
        assert.equal(e.warm.n, warm.length, `${t.name} ${e.endpoint} warm`);
        assert.equal(e.cold.n, cold.length, `${t.name} ${e.endpoint} cold`);
        assert.equal(e.warmServer.n, warm.length);
        assert.equal(e.counts.coldInLoad, e.samples.filter((s) => s.phase === 'load' && truth.get(s.requestId!)!.cold === true).length);
      }
    }
    // a: every forced sample is cold; under load, every 7th /health came back cold and left warm.
    assert.equal(ep(result, 'a', 'track').cold.n, 3);
    assert.equal(ep(result, 'a', 'metrics').cold.n, 3);
    // Requests 1-6 are the warm-up, 7-46 the load: 7, 14, 21, 28, 35 and 42 were cold.
    const aHealth = ep(result, 'a', 'health');
    assert.equal(aHealth.counts.coldInLoad, 6);
    assert.equal(aHealth.warm.n, 40 - aHealth.counts.coldInLoad);
    // b: the hook cannot make it cold, and the bench says so instead of calling warm answers cold.
    assert.equal(ep(result, 'b', 'health').cold.n, 0);
    assert.equal(ep(result, 'b', 'health').counts.coldMissed, 3);
    // c: no marker at all: counted, treated as warm, never as cold.
    assert.equal(ep(result, 'c', 'health').counts.noMarker, 49);
    assert.equal(ep(result, 'c', 'health').cold.n, 0);
    assert.equal(ep(result, 'c', 'health').warm.n, 40);
  });

  test('counts errors by status and leaves them out of the latency figures', () => {
    for (const t of ['a', 'b', 'c']) {
      const m = ep(result, t, 'metrics');
      const failed = svc.log.filter((l) => l.prefix === t && l.path === '/metrics' && l.status === 503).length;
      assert.equal(failed, 4, '49 requests, every 10th fails');
      assert.deepEqual(m.counts.errors, { '503': 4 });
      assert.equal(m.counts.ok, 45);
      const okLoad = m.samples.filter((s) => s.phase === 'load' && s.status === 200).length;
      assert.equal(m.warm.n, okLoad - m.counts.coldInLoad);
      assert.ok(m.samples.filter((s) => s.status === 503).every((s) => s.error?.includes('unavailable')));
      assert.ok(m.throughputRps! > 0);
    }
  });

  test('sends realistic /track events with the API key, and the metrics token on /metrics', () => {
    const tracks = svc.log.filter((l) => l.path === '/track');
    const ids = new Set<string>();
    for (const t of tracks) {
      assert.equal(t.headers['content-type'], 'application/json');
      assert.equal(t.headers['x-api-key'], 'k'.repeat(20));
      const body = JSON.parse(t.body);
      assert.match(body.business_id, /^bench-/);
      assert.ok(body.response_time_ms >= 0 && Number.isInteger(body.tokens_used));
      assert.equal(typeof body.intent_detected, 'string');
      ids.add(body.event_id);
    }
    assert.equal(ids.size, tracks.length, 'every event is new (no idempotent duplicates)');
    assert.ok(svc.log.filter((l) => l.path === '/metrics').every((l) => l.headers.authorization === 'Bearer scrape-token'));
    assert.ok(svc.log.filter((l) => l.path === '/health').every((l) => l.headers['x-api-key'] === undefined));
  });

  test('summaries equal the percentiles of the raw samples', () => {
    const e = ep(result, 'a', 'track');
    const warm = e.samples.filter((s) => s.phase === 'load' && s.status === 200 && s.cold !== true).map((s) => s.ms).sort((x, y) => x - y);
    assert.equal(e.warm.p50, warm[Math.ceil(0.5 * warm.length) - 1]);
    assert.equal(e.warm.p90, warm[Math.ceil(0.9 * warm.length) - 1]);
    assert.equal(e.warm.p99, warm[Math.ceil(0.99 * warm.length) - 1]);
    assert.equal(e.warm.max, warm[warm.length - 1]);
  });

  test('waits out idle time when it cannot force, and says when it cannot do either', async () => {
    const waited: number[] = [];
    const r = await runBench({
      targets: [
        { name: 'w', url: `${base}/a` },
        { name: 'server', url: `${base}/b`, noColdStarts: 'a server has none' },
      ],
      endpoints: ['health'],
      requests: 5,
      concurrency: 2,
      warmup: 0,
      coldSamples: 2,
      coldWaitMs: 15 * 60_000,
      // No real waiting in a test: the injected sleep marks the target cold, as an idle timeout would.
      sleep: async (ms) => {
        waited.push(ms);
        svc.makeCold('a');
      },
    });
    assert.deepEqual(waited, [900_000, 900_000]);
    assert.equal(r.targets[0]!.cold.mode, 'wait');
    assert.equal(r.targets[0]!.endpoints[0]!.cold.n, 2);
    assert.equal(r.targets[1]!.cold.mode, 'none');
    assert.equal(r.targets[1]!.cold.note, 'a server has none');
    assert.equal(r.targets[1]!.endpoints[0]!.samples.filter((s) => s.phase === 'cold').length, 0);

    const none = await runBench({ targets: [{ name: 'x', url: `${base}/b` }], endpoints: ['health'], requests: 3, concurrency: 1, warmup: 0, coldSamples: 2 });
    assert.equal(none.targets[0]!.cold.mode, 'none');
    assert.match(none.targets[0]!.cold.note, /cannot be made cold.*--cold-wait/);
    assert.equal(none.targets[0]!.endpoints[0]!.counts.sent, 3);
  });

  test('refuses a target that is not this machine, before sending anything', async () => {
    await assert.rejects(
      runBench({ targets: [{ name: 'far', url: 'http://192.0.2.1:5001' }], requests: 1, concurrency: 1, coldSamples: 0 }),
      (err: Error) => err instanceof BenchUsageError && /not this machine/.test(err.message),
    );
  });

  test('network failures are counted, not thrown', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const r = await runBench({ targets: [{ name: 'gone', url: `http://127.0.0.1:${port}` }], endpoints: ['health'], requests: 3, concurrency: 1, warmup: 0, coldSamples: 0 });
    const e = r.targets[0]!.endpoints[0]!;
    assert.deepEqual(e.counts.errors, { network: 3 });
    assert.equal(e.warm.n, 0);
    assert.equal(e.throughputRps, null);
  });

  test('the CLI prints tables or JSON with every sample', async () => {
    let out = '';
    let err = '';
    const sink = { write: (t: string) => (err += t) };
    const io = { stdout: (t: string) => (out += t), stderr: (t: string) => (err += t), progress: sink };
    assert.equal(await runBenchCli(['--target', `a=${base}/b`, '--requests', '12', '--concurrency', '3', '--cold-samples', '0', '--endpoints', 'health,track'], io), 0);
    assert.match(out, /GET \/health warm\s+12/);
    assert.match(out, /POST \/track warm\s+12/);
    assert.match(err, /\[\d+\/\d+\] a GET \/health load/, 'plain progress lines off a terminal');
    out = '';
    assert.equal(await runBenchCli(['--target', `a=${base}/b`, '--requests', '5', '--warmup', '0', '--endpoints', 'health', '--json'], io), 0);
    const json = JSON.parse(out) as BenchResult;
    assert.equal(json.schema, 'mlops-bench/1');
    assert.equal(json.targets[0]!.endpoints[0]!.samples.length, 5);
    assert.equal(json.targets[0]!.cold.mode, 'none');
  });
});

describe('bench CLI usage', () => {
  const run = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await runBenchCli(args, { stdout: (t) => (out += t), stderr: (t) => (err += t), progress: { write: () => true } });
    return { code, out, err };
  };

  test('--help documents every flag and the JSON schema location', async () => {
    const { code, out } = await run(['--help']);
    assert.equal(code, 0);
    for (const flag of ['--target', '--requests', '--concurrency', '--cold-samples', '--cold-wait', '--api-key', '--json', '--i-own-this-target']) assert.ok(out.includes(flag), flag);
    assert.match(out, /tools\/bench\/bench\.ts/);
  });

  test('bad arguments exit 2 with a message naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [[], /at least one --target/],
      [['--target', 'a=http://127.0.0.1:1', '--requests', '0'], /--requests expects a whole number/],
      [['--target', 'a=http://127.0.0.1:1', '--concurrency', 'lots'], /--concurrency/],
      [['--target', 'a=http://127.0.0.1:1', '--cold-wait', 'soon'], /--cold-wait expects a duration/],
      [['--target', 'a=http://127.0.0.1:1', '--endpoints', 'analytics'], /unknown endpoint/],
      [['--target', 'nope'], /not a URL/],
      [['--bogus'], /Unknown option '--bogus'/],
      [['--target', 'a=https://example.com'], /refusing to load a \(example\.com\): not this machine/],
    ];
    for (const [args, message] of cases) {
      const { code, err } = await run(args);
      assert.equal(code, 2, `${args.join(' ')} → ${err}`);
      assert.match(err, message);
    }
  });

  test('an unreachable target fails in one clear line (exit 1)', async () => {
    const { code, err } = await run(['--target', 'down=http://127.0.0.1:1']);
    assert.equal(code, 1);
    assert.match(err, /cannot reach http:\/\/127\.0\.0\.1:1\/health/);
  });

  test('the bin runs the same CLI', () => {
    const r = spawnSync(process.execPath, ['tools/bench/bin.mjs', '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /mlops-bench --target/);
  });

  test('progress: a redrawn bar on a terminal, lines otherwise', () => {
    let tty = '';
    const bar = createProgress({ write: (t: string) => (tty += t), isTTY: true, columns: 100 });
    bar.update({ done: 5, total: 10, stage: 'a GET /health load' });
    bar.end();
    assert.match(tty, /\r\x1b\[2K\[█+░+\]\s+50% 5\/10 a GET \/health load/);
    let plain = '';
    const lines = createProgress({ write: (t: string) => (plain += t), isTTY: false });
    lines.update({ done: 0, total: 10, stage: 'one' });
    lines.update({ done: 5, total: 10, stage: 'one' });
    lines.update({ done: 6, total: 10, stage: 'two' });
    lines.update({ done: 7, total: 10, stage: 'wait', waitingMs: 61_000 });
    assert.equal(plain, '[0/10] one\n[6/10] two\nwait: 1 min 1 s left\n');
  });
});
