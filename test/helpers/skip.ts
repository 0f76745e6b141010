/**
 * Skipping honestly. Outside CI a test may skip what this machine cannot run (no Chromium, no
 * PostgreSQL…), with a warning nobody can miss. Under CI nothing may skip: a skip there would turn
 * a check that never ran into a green run, so it fails the test with the same reason instead.
 *
 * `CI` counts as set for any value but empty, `0` and `false` (CI=true, CI=1, CI=yes…), the same
 * rule as scripts/run-tests.mjs, which also refuses a preset SKIP_* variable under CI.
 */
import type { TestContext } from 'node:test';

export function ciIsSet(value: string | undefined = process.env.CI): boolean {
  const v = (value ?? '').trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

export const IN_CI = ciIsSet();

const warned = new Set<string>();

/** Prints a reason once per process, framed so it stands out in the spec reporter's output. */
export function warnSkip(reason: string): void {
  if (warned.has(reason)) return;
  warned.add(reason);
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!! SKIPPING: ${reason}\n!! (under CI this is a failure)\n${bar}\n`);
}

/**
 * Inside a test: under CI fails it with `reason`; otherwise warns loudly and marks it skipped.
 * The caller returns right after (`return skipOrFail(t, '…')`): `t.skip` does not stop the test.
 */
export function skipOrFail(t: TestContext, reason: string): void {
  if (IN_CI) throw new Error(`CI is set, so this test may not skip: ${reason}`);
  warnSkip(reason);
  t.skip(reason);
}

/**
 * For `{ skip }` options of describe/it, which cannot fail: the reason outside CI (warned once);
 * under CI `false`, so the suite runs and fails on whatever is missing rather than passing unseen.
 */
export function skipUnlessCi(reason: string | false | undefined): string | false {
  if (!reason) return false;
  if (IN_CI) return false;
  warnSkip(reason);
  return reason;
}
