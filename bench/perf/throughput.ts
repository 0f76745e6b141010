/**
 * Committed throughput on loopback (wrk, 32 connections, one generator thread): POST /track with
 * every event committed to PostgreSQL (and PGlite), side by side with a bare node:http JSON server
 * in the same run, and the server's memory under that load. GET /health and /track over a no-op
 * store against bare are warm-stages.ts (repeated rounds, median and spread).
 *
 * Targets (issue 8): POST /track committed to PostgreSQL ≥ 0.2× the bare server; server RSS under
 * that load ≤ 200 MB (PGlite reported).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import postgres from 'postgres';
import { startProcess, startService } from '../../tools/shared/service-process.ts';
import { createBenchDatabase, machine, printVerdicts, ROOT, rssMb, table } from './lib.ts';
import { freshPgliteDir as freshPgliteFolder } from '../../tools/shared/pglite-template.ts';

export interface WrkResult {
  requestsPerSec: number;
  requests: number;
  non2xx: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

function ensureWrk(): void {
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed: apt-get install wrk (the CI script installs it)');
}

function parseMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

export function runWrk(url: string, seconds: number, connections: number, script?: string): WrkResult {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...(script ? ['-s', script] : []), url];
  const out = spawnSync('wrk', args, { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr || out.stdout}`);
  const text = out.stdout;
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN);
  const lat = (pct: string) => {
    const m = new RegExp(`\\s${pct}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
    return m ? parseMs(m[1]!, m[2]!) : Number.NaN;
  };
  return {
    requestsPerSec: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) || 0,
    latencyP50Ms: lat('50'),
    latencyP99Ms: lat('99'),
  };
}

export const startBareServer = () =>
  startProcess({ args: [join(ROOT, 'bench/perf/harness/bare-server.mjs')], env: {}, ready: /LISTENING (\d+)/ });


/** The packaged server (dist/server/server.mjs), as it runs on EC2; logs at info, as in production. */
export const startServiceServer = (env: Record<string, string>) => startService('bundle', env, { keepOutput: 20_000 });

/** Samples a process's resident memory (VmRSS) until stopped; returns the peak in MB. */
function sampleRss(pid: number): () => number {
  let peak = 0;
  const read = () => {
    try {
      peak = Math.max(peak, rssMb(pid));
    } catch {
      // The process is gone.
    }
  };
  read();
  const timer = setInterval(read, 200);
  return () => {
    clearInterval(timer);
    read();
    return peak;
  };
}

export interface ThroughputResult {
  seconds: number;
  bare: WrkResult;
  trackPostgres: WrkResult & { stored: number; peakRssMb: number };
  trackPglite: (WrkResult & { stored: number; peakRssMb: number }) | null;
}

async function countEvents(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const [row] = await sql`SELECT count(*)::int AS n FROM mlops.ai_metrics`;
  await sql.end();
  return row!.n as number;
}

export async function throughput(seconds: number, connections: number, options: { pglite: boolean }): Promise<ThroughputResult> {
  ensureWrk();
  const script = join(ROOT, 'bench/perf/harness/post-track.lua');
  const bareServer = await startBareServer();
  const bare = runWrk(`${bareServer.url}/`, seconds, connections);
  await bareServer.stop();

  const db = await createBenchDatabase('tp');
  try {
    const server = await startServiceServer({ DATABASE_URL: db.url, DB_POOL_MAX: '4' });
    runWrk(`${server.url}/track`, 1, connections, script); // warm-up (JIT, pool), not counted
    const before = await countEvents(db.url);
    const stopSampling = sampleRss(server.child.pid!);
    const track = runWrk(`${server.url}/track`, seconds, connections, script);
    const peakRssMb = stopSampling();
    await server.stop();
    const stored = (await countEvents(db.url)) - before;
    let trackPglite: ThroughputResult['trackPglite'] = null;
    if (options.pglite) {
      const dir = await freshPgliteFolder();
      const embedded = await startServiceServer({ DATA_DIR: dir });
      const stop = sampleRss(embedded.child.pid!);
      const stored = async () =>
        ((await (await fetch(`${embedded.url}/analytics/bench-dental`)).json()) as { metrics: { total_requests: number } }).metrics.total_requests;
      runWrk(`${embedded.url}/track`, 1, connections, script); // warm-up, not counted
      const before = await stored();
      const r = runWrk(`${embedded.url}/track`, seconds, connections, script);
      const rss = stop();
      const after = await stored();
      await embedded.stop();
      trackPglite = { ...r, stored: after - before, peakRssMb: rss };
    }
    return { seconds, bare, trackPostgres: { ...track, stored, peakRssMb }, trackPglite };
  } finally {
    await db.drop();
  }
}

export function printThroughput(r: ThroughputResult): boolean {
  console.log(`\nServer throughput, wrk -t1 -c32 -d${r.seconds}s on loopback (${machine()})\n`);
  const row = (name: string, w: WrkResult, extra = '') => [
    name,
    w.requestsPerSec.toFixed(0),
    (w.requestsPerSec / r.bare.requestsPerSec).toFixed(2),
    w.latencyP50Ms.toFixed(2),
    w.latencyP99Ms.toFixed(2),
    String(w.non2xx),
    extra,
  ];
  const rows = [
    row('bare node:http JSON', r.bare),
    row('service POST /track (PostgreSQL)', r.trackPostgres, `${r.trackPostgres.stored} stored, ${r.trackPostgres.peakRssMb.toFixed(0)} MB RSS`),
  ];
  if (r.trackPglite) rows.push(row('service POST /track (PGlite)', r.trackPglite, `${r.trackPglite.stored} stored, ${r.trackPglite.peakRssMb.toFixed(0)} MB RSS`));
  console.log(table(['server', 'req/s', '× bare', 'p50 ms', 'p99 ms', 'non-2xx', 'notes'], rows));
  console.log('');
  const trackRatio = r.trackPostgres.requestsPerSec / r.bare.requestsPerSec;
  const answered = r.trackPostgres.requests - r.trackPostgres.non2xx;
  const verdicts = [
    { name: 'POST /track, committed (PostgreSQL)', measured: `${trackRatio.toFixed(2)}× bare`, target: '≥ 0.20×', met: trackRatio >= 0.2 },
    // wrk counts answers it received; events answered 200 must all be stored (more may be stored
    // when wrk stops while requests are in flight), and nothing may fail.
    { name: 'every 200 committed', measured: `${r.trackPostgres.stored} stored / ${answered} answered 200`, target: 'stored ≥ answered, 0 errors', met: r.trackPostgres.stored >= answered && r.trackPostgres.non2xx === 0 },
    { name: 'server RSS under /track (PostgreSQL)', measured: `${r.trackPostgres.peakRssMb.toFixed(0)} MB`, target: '≤ 200 MB', met: r.trackPostgres.peakRssMb <= 200 },
  ];
  printVerdicts(verdicts);
  return verdicts.every((v) => v.met);
}
