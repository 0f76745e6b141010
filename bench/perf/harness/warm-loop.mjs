// Warm-handler harness: loads the packaged handler once, warms it up, then times N in-process
// invocations per event and prints percentiles (µs) on stderr. stdout carries what the handler
// prints (EMF metrics, logs), as on Lambda.
// argv: <module path> <iterations> <event json path>...
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [modulePath, iterations, ...eventPaths] = process.argv.slice(2);
const { handler } = await import(pathToFileURL(modulePath).href);
const n = Number(iterations);
const results = {};
for (const path of eventPaths) {
  const event = JSON.parse(readFileSync(path, 'utf8'));
  const context = { awsRequestId: 'warm', getRemainingTimeInMillis: () => 30000 };
  for (let i = 0; i < Math.min(2000, n); i++) await handler(event, context);
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const r = await handler(event, context);
    samples[i] = Number(process.hrtime.bigint() - t) / 1000;
    if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}: ${r.body}`);
  }
  samples.sort();
  const q = (p) => samples[Math.min(n - 1, Math.floor(p * n))];
  results[path] = { p50: q(0.5), p90: q(0.9), p99: q(0.99), n };
}
process.stderr.write(`WARM ${JSON.stringify(results)}\n`);
process.exit(0);
