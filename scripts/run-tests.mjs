#!/usr/bin/env node
/**
 * `npm test`: runs every test file (listed explicitly: on Node 20 `node --test` finds no .ts
 * files by itself and would pass with zero tests) with tsx and the spec reporter.
 *
 * The storage suites run against PGlite and against a real PostgreSQL (TEST_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres). Without a reachable PostgreSQL the PostgreSQL
 * suites are skipped with a loud warning, except under CI=true, where that is a failure.
 *
 * Usage: npm test [-- <test files…>]   (default: all files below)
 */
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';

export const TEST_FILES = [
  'test/unit/config.test.ts',
  'test/unit/event-schema.test.ts',
  'test/unit/latency-buckets.test.ts',
  'test/unit/write-batcher.test.ts',
  'test/unit/dir-lock.test.ts',
  'test/unit/lambda-results.test.ts',
  'test/unit/rate-limit-retention.test.ts',
  'test/storage.test.ts',
  'test/fold.test.ts',
  'test/pgbouncer-harness.test.ts',
  'test/pooled.test.ts',
  'test/api.test.ts',
  'test/server-process.test.ts',
  'test/cost.test.ts',
  'test/bench.test.ts',
  'test/compare.test.ts',
  'test/lambda-emulator.test.ts',
  'test/lambda-events.test.ts',
  'test/lambda-no-database.test.ts',
  'test/lambda-secrets.test.ts',
  'test/lambda-package.test.ts',
  'test/lambda-emulator-app.test.ts',
  'test/dashboard.test.ts',
  'test/infra.test.ts',
  'test/dockerfiles.test.ts',
  'test/perf.test.ts',
  'test/fanout.test.ts',
  'test/client.test.ts',
  'test/fuzz.test.ts',
  'test/security.test.ts',
  'test/reliability.test.ts',
];

const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function reachable(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 5432) });
    socket.setTimeout(2000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
}

const env = { ...process.env, TEST_DATABASE_URL: adminUrl };
if (!(await reachable(adminUrl))) {
  const where = new URL(adminUrl).host;
  if (process.env.CI === 'true') {
    console.error(`\nFAIL: PostgreSQL is not reachable at ${where} and CI=true: the PostgreSQL suites must run in CI.`);
    console.error('Start it (e.g. pg_ctlcluster <version> main start) or set TEST_DATABASE_URL.\n');
    process.exit(1);
  }
  env.SKIP_POSTGRES = '1';
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!! PostgreSQL not reachable at ${where}: SKIPPING every PostgreSQL suite.`);
  console.warn('!! Only the embedded PGlite storage is tested. Set TEST_DATABASE_URL or start PostgreSQL');
  console.warn(`!! to run them (CI=true turns this warning into a failure).\n${bar}\n`);
}

const args = process.argv.slice(2);
const files = args.length ? args : TEST_FILES;
const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' });
if (promtool.status !== 0) {
  if (process.env.CI === 'true') {
    console.error('FAIL: promtool (Debian package "prometheus") is required under CI=true.');
    process.exit(1);
  }
  env.SKIP_PROMTOOL = '1';
  console.warn('!! promtool not found (apt-get install prometheus): the exposition is checked without it.\n');
}

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  { stdio: 'inherit', env },
);
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
