/**
 * `npm run load -- [--url http://127.0.0.1:5001] [--duration 60s] [--concurrency 16] [--rate 0]
 *   [--api-key KEY] [--metrics-token TOKEN] [--businesses 20] [--batch-size 50]
 *   [--memory-interval 5s] [--warmup 60s] [--json report.json]`
 *
 * Mixed traffic (70 % /track, 10 % /track/batch, 10 % /analytics/{id}, 5 % /metrics, 5 % /health)
 * against a running server on this machine. Soak: `--duration 5m`. Exit code 1 when any request
 * failed (5xx, network error, or a 4xx: the load test sends only valid requests).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatReport, parseDuration, runLoad } from './load.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.MLOPS_SERVICE_URL ?? 'http://127.0.0.1:5001' },
    duration: { type: 'string', default: '60s' },
    concurrency: { type: 'string', default: '16' },
    rate: { type: 'string', default: '0' },
    'api-key': { type: 'string', default: process.env.MLOPS_API_KEY },
    'metrics-token': { type: 'string', default: process.env.METRICS_TOKEN },
    businesses: { type: 'string', default: '20' },
    'batch-size': { type: 'string', default: '50' },
    'memory-interval': { type: 'string', default: '5s' },
    warmup: { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log('usage: npm run load -- --url http://127.0.0.1:5001 --duration 60s --concurrency 16 --rate 0 --api-key KEY [--json out.json]');
  process.exit(0);
}

function int(name: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name} must be an integer from ${min} to ${max}, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

try {
  const durationMs = parseDuration(values.duration!);
  if (durationMs > 2 * 3_600_000) throw new Error('--duration is capped at 2h: the load test is bounded');
  const report = await runLoad({
    url: values.url!,
    durationMs,
    concurrency: int('concurrency', values.concurrency, 1, 1000),
    rate: int('rate', values.rate, 0, 1_000_000),
    apiKey: values['api-key'] || undefined,
    metricsToken: values['metrics-token'] || undefined,
    businesses: int('businesses', values.businesses, 1, 10_000),
    batchSize: int('batch-size', values['batch-size'], 1, 500),
    memoryIntervalMs: parseDuration(values['memory-interval']!),
    ...(values.warmup ? { warmupMs: parseDuration(values.warmup) } : {}),
    progress: (line) => console.error(line),
  });
  console.log(formatReport(report));
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  process.exit(report.errors > 0 ? 1 : 0);
} catch (error) {
  console.error(`load: ${(error as Error).message}`);
  process.exit(2);
}
