/**
 * The Prometheus alert rules (deploy/prometheus/alerts.yml) load in Prometheus's own checker, and
 * their unit tests (alerts.test.yml: every rule firing and not firing) pass in `promtool test
 * rules`. Without promtool the suite is skipped, except under a truthy CI, where that fails.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { skipUnlessCi } from './helpers/skip.ts';

const RULES = fileURLToPath(new URL('../deploy/prometheus/alerts.yml', import.meta.url));
const RULE_TESTS = fileURLToPath(new URL('../deploy/prometheus/alerts.test.yml', import.meta.url));

const installed = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = skipUnlessCi(installed ? false : 'promtool not installed (Debian package "prometheus")');

function promtool(...args: string[]): string {
  assert.ok(installed, 'promtool is required under CI: apt-get install prometheus');
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  assert.equal(r.status, 0, `promtool ${args.join(' ')} failed:\n${output}`);
  return output;
}

describe('Prometheus alert rules', { skip }, () => {
  it('pass promtool check rules', () => {
    const out = promtool('check', 'rules', RULES);
    assert.match(out, /SUCCESS: 6 rules found/);
  });

  it('pass their unit tests (promtool test rules)', () => {
    const out = promtool('test', 'rules', RULE_TESTS);
    assert.match(out, /SUCCESS/);
  });
});
