/**
 * Warm handler: the packaged Lambda handler invoked in-process after warm-up, as a warm execution
 * environment runs it, with its stdout (EMF metrics, logs) going to a pipe as on Lambda.
 * Target (issue 8): GET /health p50 ≤ 50 µs; POST /track reported (one commit per invocation).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgresStore } from '../../src/storage/postgres.ts';
import { createBenchDatabase, machine, printVerdicts, ROOT, table } from './lib.ts';
import { coldStartEvent } from './cold-start.ts';

export interface WarmResult {
  iterations: number;
  health: { p50: number; p90: number; p99: number };
  track: { p50: number; p90: number; p99: number } | null;
}

export async function warmHandler(iterations: number, options: { withDatabase: boolean }): Promise<WarmResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mlops-warm-'));
  const health = join(dir, 'health.json');
  const track = join(dir, 'track.json');
  writeFileSync(health, JSON.stringify(coldStartEvent('GET', '/health')));
  writeFileSync(track, JSON.stringify(coldStartEvent('POST', '/track', { business_id: 'warm', response_time_ms: 420, tokens_used: 300 })));
  const db = options.withDatabase ? await createBenchDatabase('warm') : undefined;
  try {
    if (db) {
      const store = openPostgresStore({ url: db.url, poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
      await store.migrate();
      await store.close();
    }
    const events = db ? [health, track] : [health];
    const result = await new Promise<Record<string, { p50: number; p90: number; p99: number }>>((resolve, reject) => {
      const child = spawn(process.execPath, [join(ROOT, 'bench/perf/harness/warm-loop.mjs'), join(ROOT, 'dist/lambda/index.mjs'), String(iterations), ...events], {
        env: {
          PATH: process.env.PATH ?? '',
          AWS_LAMBDA_FUNCTION_NAME: 'mlops-service-lambda',
          AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]warm',
          ...(db ? { DATABASE_URL: db.url } : {}),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.resume();
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.on('exit', (code) => {
        const m = /WARM (.*)\n/.exec(err);
        if (m) resolve(JSON.parse(m[1]!));
        else reject(new Error(`warm harness exited ${code}:\n${err}`));
      });
    });
    return { iterations, health: result[health]!, track: db ? result[track]! : null };
  } finally {
    await db?.drop();
  }
}

export function printWarm(r: WarmResult): boolean {
  console.log(`\nWarm handler, in-process, ${r.iterations.toLocaleString()} invocations after warm-up, EMF metrics on (${machine()})\n`);
  const rows = [['GET /health', r.health.p50.toFixed(1), r.health.p90.toFixed(1), r.health.p99.toFixed(1)]];
  if (r.track) rows.push(['POST /track (commit each)', r.track.p50.toFixed(1), r.track.p90.toFixed(1), r.track.p99.toFixed(1)]);
  console.log(table(['invocation', 'p50 µs', 'p90 µs', 'p99 µs'], rows));
  console.log('');
  const verdicts = [{ name: 'warm GET /health p50', measured: `${r.health.p50.toFixed(1)} µs`, target: '≤ 50 µs', met: r.health.p50 <= 50 }];
  printVerdicts(verdicts);
  return verdicts.every((v) => v.met);
}
