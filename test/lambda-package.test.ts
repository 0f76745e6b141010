/**
 * `npm run package`: the zip's root holds index.mjs and lambda_function.mjs, it stays small, it
 * leaves PGlite out, and a fresh Node process loading the extracted zip answers through both
 * handler names (index.handler and the course's lambda_function.lambda_handler).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { unzipSync } from 'fflate';
import { buildLambdaPackage } from './helpers/package.ts';
import { FIXTURES_DIR } from './helpers/lambda-events.ts';

describe('Lambda deployment package', () => {
  let built: ReturnType<typeof buildLambdaPackage>;
  let files: Record<string, Uint8Array>;
  before(() => {
    built = buildLambdaPackage();
    files = unzipSync(readFileSync(built.zip));
  });

  it('prints its size against the budget', () => {
    assert.match(built.output, /lambda-deployment\.zip: [\d.]+ KiB \(\d+ bytes\), within the 300 KiB budget/);
  });

  it('holds both handler modules at the zip root, readable function names instead of source maps, and nothing of PGlite or long.js', () => {
    const names = Object.keys(files);
    assert.ok(names.includes('index.mjs'));
    assert.ok(names.includes('lambda_function.mjs'));
    assert.deepEqual(names.filter((n) => n.endsWith('.map')), [], 'no source maps: names are kept instead');
    const code = names.filter((n) => n.endsWith('.mjs')).map((n) => Buffer.from(files[n]!).toString('utf8')).join('\n');
    // Identifiers are not mangled: a stack trace names the service's own functions.
    for (const name of ['function toNewEvent', 'function businessAnalytics', 'function classifyEvent']) assert.ok(code.includes(name), name);
    assert.ok(!code.includes('node_modules/long/'), 'long.js is left out (protobufjs answers numbers)');
    assert.doesNotMatch(code, /@electric-sql\/pglite|pglite\.wasm|initdb\.wasm/);
    assert.ok(readFileSync(built.zip).length < 300 * 1024);
  });

  it('answers through both handler names in a fresh process', () => {
    const root = mkdtempSync(join(tmpdir(), 'mlops-task-'));
    for (const [name, data] of Object.entries(files)) {
      mkdirSync(dirname(join(root, name)), { recursive: true });
      writeFileSync(join(root, name), data);
    }
    const script = `
      const event = JSON.parse(require('node:fs').readFileSync(${JSON.stringify(join(FIXTURES_DIR, 'synthetic-v2-named-stage-get-health.json'))}, 'utf8'));
      (async () => {
        const a = await (await import(${JSON.stringify(join(root, 'index.mjs'))})).handler(event, { awsRequestId: 'one' });
        const b = await (await import(${JSON.stringify(join(root, 'lambda_function.mjs'))})).lambda_handler(event, { awsRequestId: 'two' });
        const m = await import(${JSON.stringify(join(root, 'index.mjs'))});
        process.stdout.write('RESULT' + JSON.stringify({ a, b, migrate: typeof m.migrate }) + '\\n');
      })();`;
    const out = execFileSync(process.execPath, ['-e', script], {
      cwd: root,
      env: { PATH: process.env.PATH, LOG_LEVEL: 'silent', POWERTOOLS_METRICS_DISABLED: 'true' },
      encoding: 'utf8',
    });
    const { a, b, migrate } = JSON.parse(out.split('RESULT')[1]!);
    assert.equal(a.statusCode, 200);
    assert.equal(JSON.parse(a.body).status, 'healthy');
    assert.equal(a.headers['x-cold-start'], 'true');
    assert.equal(b.statusCode, 200);
    assert.equal(b.headers['x-cold-start'], 'false', 'both names share one module instance');
    assert.equal(migrate, 'function');
  });
});
