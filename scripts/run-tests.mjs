#!/usr/bin/env node
/**
 * `npm test`: runs every test file (listed explicitly: on Node 20 `node --test` finds no .ts
 * files by itself and would pass with zero tests) with tsx and the spec reporter.
 *
 * The storage suites run against PGlite and against a real PostgreSQL (TEST_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres). Without a reachable PostgreSQL the PostgreSQL
 * suites are skipped with a loud warning, except under CI, where that is a failure.
 *
 * Under CI (any value of CI but empty, 0 and false: CI=true, CI=1, CI=yes…) nothing may skip: a
 * preset SKIP_* variable is refused before any test runs, and a test that skipped anyway (or is
 * marked todo) fails the run, named. Outside CI every skipped test is listed at the end.
 *
 * Usage: npm test [-- <test files…>]   (default: all files below)
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TEST_FILES = [
  'test/unit/config.test.ts',
  'test/unit/database-url.test.ts',
  'test/unit/event-schema.test.ts',
  'test/unit/latency-buckets.test.ts',
  'test/unit/write-batcher.test.ts',
  'test/unit/dir-lock.test.ts',
  'test/dir-lock-race.test.ts',
  'test/unit/lambda-results.test.ts',
  'test/unit/rate-limit-retention.test.ts',
  'test/unit/cached-secret.test.ts',
  'test/unit/prices.test.ts',
  'test/unit/label-cap.test.ts',
  'test/unit/otlp-mapping.test.ts',
  'test/storage.test.ts',
  'test/fold.test.ts',
  'test/pgbouncer-harness.test.ts',
  'test/pooled.test.ts',
  'test/api.test.ts',
  'test/server-process.test.ts',
  'test/shutdown.test.ts',
  'test/late-commit.test.ts',
  'test/exposition.test.ts',
  'test/pricing-labels.test.ts',
  'test/alerts.test.ts',
  'test/otlp.test.ts',
  'test/otlp-lambda.test.ts',
  'test/cost.test.ts',
  'test/bench.test.ts',
  'test/compare.test.ts',
  'test/lambda-emulator.test.ts',
  'test/lambda-events.test.ts',
  'test/lambda-no-database.test.ts',
  'test/lambda-secrets.test.ts',
  'test/connection-blackhole.test.ts',
  'test/lambda-package.test.ts',
  'test/lambda-emulator-app.test.ts',
  'test/dashboard.test.ts',
  'test/infra.test.ts',
  'test/dockerfiles.test.ts',
  'test/perf.test.ts',
  'test/fanout.test.ts',
  'test/client.test.ts',
  'test/client-outage.test.ts',
  'test/fuzz.test.ts',
  'test/hardening.test.ts',
  'test/security.test.ts',
  'test/reliability.test.ts',
];

/** The same rule as test/helpers/skip.ts: CI is set unless empty, `0` or `false`. */
function ciIsSet(value) {
  const v = (value ?? '').trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

/**
 * Skipped and todo tests in the TAP the runner wrote, as `suite > test: reason`. Names
 * escape `#` as `\#`, so the first bare ` # SKIP`/` # TODO` is the directive.
 */
function skippedTests(tap) {
  const found = [];
  const path = [];
  for (const line of tap.split('\n')) {
    const depth = (/^ */.exec(line)[0].length) / 4;
    const subtest = /^ *# Subtest: (.*)$/.exec(line);
    if (subtest) {
      path.length = depth;
      path[depth] = subtest[1];
      continue;
    }
    const result = /^ *(?:not )?ok \d+ - (.*?)(?<!\\) # (SKIP|TODO)\b ?(.*)$/.exec(line);
    if (result) found.push(`${[...path.slice(0, depth), result[1]].join(' > ')}: ${result[2]}${result[3] ? ` ${result[3]}` : ''}`);
  }
  return found;
}

const CI = ciIsSet(process.env.CI);
if (CI) {
  const preset = Object.keys(process.env).filter((k) => k.startsWith('SKIP_') && process.env[k] !== '');
  if (preset.length) {
    console.error(`\nFAIL: CI is set (CI=${process.env.CI}) and ${preset.map((k) => `${k}=${process.env[k]}`).join(', ')} would skip tests.`);
    console.error('Under CI every suite must run: unset the SKIP_* variable(s) and provide what they stand for.\n');
    process.exit(1);
  }
}

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
  if (CI) {
    console.error(`\nFAIL: PostgreSQL is not reachable at ${where} and CI is set: the PostgreSQL suites must run in CI.`);
    console.error('Start it (e.g. pg_ctlcluster <version> main start) or set TEST_DATABASE_URL.\n');
    process.exit(1);
  }
  env.SKIP_POSTGRES = '1';
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!! PostgreSQL not reachable at ${where}: SKIPPING every PostgreSQL suite.`);
  console.warn('!! Only the embedded PGlite storage is tested. Set TEST_DATABASE_URL or start PostgreSQL');
  console.warn(`!! to run them (under CI this is a failure).\n${bar}\n`);
}

const args = process.argv.slice(2);
const files = args.length ? args : TEST_FILES;
const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' });
if (promtool.status !== 0) {
  if (CI) {
    console.error('FAIL: promtool (Debian package "prometheus") is required under CI.');
    process.exit(1);
  }
  env.SKIP_PROMTOOL = '1';
  console.warn('!! promtool not found (apt-get install prometheus): the exposition is checked without it.\n');
}

// A second reporter writes TAP to a file, read afterwards for skipped and todo tests.
const tapDir = mkdtempSync(join(tmpdir(), 'mlops-test-tap-'));
const tapFile = join(tapDir, 'results.tap');
const child = spawn(
  process.execPath,
  [
    '--import', 'tsx', '--test', '--test-concurrency=2',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tapFile}`,
    ...files,
  ],
  { stdio: 'inherit', env },
);
child.on('exit', (code, signal) => {
  let skipped = [];
  try {
    skipped = skippedTests(readFileSync(tapFile, 'utf8'));
  } catch {
    // No TAP (the runner died early): its own exit code already says so.
  }
  rmSync(tapDir, { recursive: true, force: true });
  if (skipped.length) {
    const bar = '!'.repeat(78);
    console.error(`\n${bar}\n!! ${skipped.length} test(s) skipped or todo${CI ? ' under CI: the run FAILS' : ''}:`);
    for (const s of skipped) console.error(`!!   ${s}`);
    console.error(`${bar}\n`);
  }
  if (signal) process.exit(1);
  process.exit(CI && skipped.length && code === 0 ? 1 : (code ?? 1));
});
