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
import { coldStartEvent, lambdaEnv } from './cold-start.ts';
import type { NodeRuntime } from '../../tools/shared/node-runtime.ts';

export interface WarmResult {
  iterations: number;
  node: { path: string; version: string };
  health: { p50: number; p90: number; p99: number };
  track: { p50: number; p90: number; p99: number } | null;
}

export async function warmHandler(iterations: number, options: { withDatabase: boolean; node?: NodeRuntime }): Promise<WarmResult> {
  const node = options.node ?? { path: process.execPath, version: process.version };
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
      const child = spawn(node.path, [join(ROOT, 'bench/perf/harness/warm-loop.mjs'), join(ROOT, 'dist/lambda/index.mjs'), String(iterations), ...events], {
        env: lambdaEnv({ AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]warm', ...(db ? { DATABASE_URL: db.url } : {}) }),
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
    return { iterations, node: { path: node.path, version: node.version }, health: result[health]!, track: db ? result[track]! : null };
  } finally {
    await db?.drop();
  }
}

export function printWarm(r: WarmResult): boolean {
  console.log(`\nWarm handler on Node ${r.node.version}, in-process, ${r.iterations.toLocaleString()} invocations after warm-up, EMF metrics on (${machine()})\n`);
  const rows = [['GET /health', r.health.p50.toFixed(1), r.health.p90.toFixed(1), r.health.p99.toFixed(1)]];
  if (r.track) rows.push(['POST /track (commit each)', r.track.p50.toFixed(1), r.track.p90.toFixed(1), r.track.p99.toFixed(1)]);
  console.log(table(['invocation', 'p50 µs', 'p90 µs', 'p99 µs'], rows));
  console.log('');
  const verdicts = [{ name: `warm GET /health p50, Node ${r.node.version}`, measured: `${r.health.p50.toFixed(1)} µs`, target: '≤ 50 µs', met: r.health.p50 <= 50 }];
  printVerdicts(verdicts);
  return verdicts.every((v) => v.met);
}
