/**
 * Security rows of the contract against the real server process: security headers, API keys and
 * the metrics token (401 missing, 403 wrong, both headers, open routes), keys never written to
 * the log even at debug level, per-key rate limiting (429 + Retry-After), and the shipped packages
 * against a reviewed list (`npm audit` cannot reach an advisory service here; see below).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from './helpers/http.ts';
import { ROOT } from './helpers/package.ts';
import { freshPgliteDir } from './helpers/pglite-template.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const KEY_ONE = 'sec-key-one-0123456789abcdef';
const KEY_TWO = 'sec-key-two-0123456789abcdef';
const WRONG = 'sec-wrong-key-9876543210zyxw';
const METRICS_TOKEN = 'sec-metrics-token-0123456789';
const EVENT = { business_id: 'sec', response_time_ms: 10, tokens_used: 5 };

const SECURITY_HEADERS: Record<string, RegExp> = {
  'x-content-type-options': /^nosniff$/,
  'x-frame-options': /^(DENY|SAMEORIGIN)$/,
  'referrer-policy': /^no-referrer$/,
  'strict-transport-security': /max-age=\d+/,
  'x-permitted-cross-domain-policies': /^none$/,
};

async function requests(base: string): Promise<number> {
  const r = await call(`${base}/analytics/sec`, { headers: { 'x-api-key': KEY_ONE } });
  assert.equal(r.status, 200, r.text);
  return r.body.metrics.total_requests as number;
}

describe('keys, tokens, headers and logs', () => {
  let server: ServerProcess;
  let dataDir: string;
  before(async () => {
    dataDir = await freshPgliteDir();
    server = await startServerProcess({
      DATA_DIR: dataDir,
      MLOPS_API_KEYS: `${KEY_ONE},${KEY_TWO}`,
      METRICS_TOKEN,
      LOG_LEVEL: 'debug',
    });
  });
  after(() => server?.stop());

  it('sends the security headers on 200, 401 and 404 answers (health, track, metrics, an unknown route), and no X-Powered-By', async () => {
    const answers = [
      await call(`${server.url}/health`),
      await call(`${server.url}/nope`),
      await call(`${server.url}/track`, { method: 'POST', json: EVENT }),
      await call(`${server.url}/track`, { method: 'POST', json: EVENT, headers: { 'x-api-key': KEY_ONE } }),
      await call(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }),
    ];
    assert.deepEqual(answers.map((a) => a.status), [200, 404, 401, 200, 200]);
    for (const a of answers) {
      for (const [name, pattern] of Object.entries(SECURITY_HEADERS)) assert.match(a.headers.get(name) ?? '', pattern, `${name} on a ${a.status}`);
      assert.equal(a.headers.get('x-powered-by'), null);
    }
  });

  it('auth rows: 401 without a key, 403 with a wrong one, both headers accepted, nothing stored when refused', async () => {
    const before = await requests(server.url);
    const protectedRoutes: [string, string, unknown?][] = [
      ['POST', '/track', EVENT], ['POST', '/track/batch', { events: [EVENT] }], ['POST', '/refresh-metrics'], ['GET', '/analytics'], ['GET', '/analytics/sec'],
    ];
    for (const [method, path, json] of protectedRoutes) {
      const none = await call(`${server.url}${path}`, { method, json });
      assert.equal(none.status, 401, `${method} ${path} without a key`);
      assert.equal(none.body.error, 'unauthorized');
      assert.match(none.headers.get('www-authenticate') ?? '', /Bearer/);
      for (const headers of [{ 'x-api-key': WRONG }, { authorization: `Bearer ${WRONG}` }] as Record<string, string>[]) {
        const wrong = await call(`${server.url}${path}`, { method, json, headers });
        assert.equal(wrong.status, 403, `${method} ${path} ${Object.keys(headers)[0]}`);
        assert.equal(wrong.body.error, 'forbidden');
      }
      // Not a bearer credential at all: as good as none.
      assert.equal((await call(`${server.url}${path}`, { method, json, headers: { authorization: `Basic ${KEY_ONE}` } })).status, 401);
    }
    // The key is checked before the body is read: a garbage body without a key is a 401, not a 400.
    assert.equal((await call(`${server.url}/track`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } })).status, 401);
    assert.equal(await requests(server.url), before, 'refused requests stored nothing');

    for (const headers of [{ 'x-api-key': KEY_ONE }, { authorization: `Bearer ${KEY_TWO}` }, { authorization: `bearer ${KEY_ONE}` }] as Record<string, string>[]) {
      const r = await call(`${server.url}/track`, { method: 'POST', json: EVENT, headers });
      assert.equal(r.status, 200, JSON.stringify(headers));
    }
    assert.equal(await requests(server.url), before + 3);
  });

  it('/, /health, /health/detailed and /openapi.json are open; /metrics needs the metrics token or an API key', async () => {
    for (const path of ['/', '/health', '/health/detailed', '/openapi.json']) {
      assert.equal((await call(`${server.url}${path}`)).status, 200, path);
    }
    assert.equal((await call(`${server.url}/metrics`)).status, 401);
    assert.equal((await call(`${server.url}/metrics`, { headers: { authorization: `Bearer ${WRONG}` } })).status, 403);
    for (const credential of [METRICS_TOKEN, KEY_ONE, KEY_TWO]) {
      const ok = await call(`${server.url}/metrics`, { headers: { authorization: `Bearer ${credential}` } });
      assert.equal(ok.status, 200, credential.slice(0, 8));
      assert.match(ok.text, /# TYPE ai_requests_total counter/);
    }
  });

  it('/health/detailed tells where the database is only to a key holder; a probe still gets up/down', async () => {
    const open = await call(`${server.url}/health/detailed`);
    assert.equal(open.status, 200);
    assert.equal(open.body.database.status, 'up');
    assert.equal(open.body.database.location, undefined, 'database location shown without a key');
    assert.equal(open.body.database.writes, undefined);
    assert.match(open.body.database.details, /API key or the metrics token/);
    assert.ok(!open.text.includes(dataDir), 'the data folder is named without a key');
    for (const headers of [{ 'x-api-key': KEY_ONE }, { authorization: `Bearer ${METRICS_TOKEN}` }] as Record<string, string>[]) {
      const full = await call(`${server.url}/health/detailed`, { headers });
      assert.equal(full.status, 200);
      assert.equal(typeof full.body.database.location, 'string', JSON.stringify(headers));
      assert.equal(full.body.database.details, undefined);
    }
    const wrong = await call(`${server.url}/health/detailed`, { headers: { 'x-api-key': WRONG } });
    assert.equal(wrong.body.database.location, undefined, 'a wrong key sees what no key sees');
  });

  it('never writes a key or token to the log, even at LOG_LEVEL=debug', async () => {
    const secrets = [KEY_ONE, KEY_TWO, WRONG, METRICS_TOKEN];
    const near = `${KEY_ONE.slice(0, -1)}X`;
    for (const key of [...secrets, near]) {
      for (const headers of [{ 'x-api-key': key }, { authorization: `Bearer ${key}` }] as Record<string, string>[]) {
        await call(`${server.url}/track`, { method: 'POST', json: EVENT, headers });
        await call(`${server.url}/track`, { method: 'POST', body: '{bad', headers: { ...headers, 'content-type': 'application/json' } });
        await call(`${server.url}/analytics/sec`, { headers });
        await call(`${server.url}/metrics`, { headers });
        await call(`${server.url}/nope`, { headers });
        await call(`${server.url}/health/detailed`, { headers });
      }
    }
    const out = server.output();
    assert.match(out, /"level":"debug"/, 'debug lines were written');
    assert.match(out, /"status":403/, 'the refused requests were logged');
    for (const secret of [...secrets, near]) {
      assert.ok(!out.includes(secret), `the log contains ${secret.slice(0, 8)}…`);
      assert.ok(!out.includes(secret.slice(4, 20)), `the log contains part of ${secret.slice(0, 8)}…`);
    }
  });
});

describe('rate limiting per API key', () => {
  let server: ServerProcess;
  const LIMIT = 5;
  before(async () => {
    server = await startServerProcess({
      DATA_DIR: await freshPgliteDir(),
      MLOPS_API_KEYS: `${KEY_ONE},${KEY_TWO}`,
      RATE_LIMIT_PER_MINUTE: String(LIMIT),
    });
  });
  after(() => server?.stop());

  it('answers 429 with Retry-After past the limit, for that key only; open routes are not limited', async () => {
    const send = (key: string) => call(`${server.url}/track`, { method: 'POST', json: EVENT, headers: { authorization: `Bearer ${key}` } });
    for (let i = 0; i < LIMIT; i++) assert.equal((await send(KEY_ONE)).status, 200, `request ${i + 1}`);
    const limited = await send(KEY_ONE);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error, 'rate_limited');
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${limited.headers.get('retry-after')}`);
    // Both headers carry the same key, so the same bucket.
    assert.equal((await call(`${server.url}/analytics`, { headers: { 'x-api-key': KEY_ONE } })).status, 429);
    assert.equal((await send(KEY_TWO)).status, 200, 'another key has its own bucket');
    for (let i = 0; i < 3 * LIMIT; i++) assert.equal((await call(`${server.url}/health`)).status, 200);
    // The rejected request stored nothing: 5 from key one, 1 from key two.
    const totals = await call(`${server.url}/analytics/sec`, { headers: { 'x-api-key': KEY_TWO } });
    assert.equal(totals.body.metrics.total_requests, LIMIT + 1);
  });

  it('with API keys and no METRICS_TOKEN, /metrics is closed too (fail closed), and open to an API key', async () => {
    assert.equal((await call(`${server.url}/metrics`)).status, 401);
    const health = await call(`${server.url}/health/detailed`);
    assert.equal(health.body.security.metrics_token_required, true);
    assert.equal(health.body.database.location, undefined);
    assert.equal((await call(`${server.url}/metrics`, { headers: { authorization: `Bearer ${KEY_TWO}` } })).status, 200);
  });
});

/**
 * Every package the service ships (package-lock.json without dev packages), as last reviewed.
 * `npm audit` cannot run on this workplace, for developers or CI: the registry answers 405 to its
 * advisory request (POST /-/npm/v1/security/advisories/bulk) and `npm audit signatures` first
 * needs sigstore's TUF host, which is not reachable. A check that can never run would only ever
 * skip, so instead this list makes every change of a shipped package fail here until someone adds
 * it on purpose, and that is when to audit it (`npm audit --omit=dev` where the endpoint answers).
 */
const REVIEWED_PRODUCTION_PACKAGES = [
  '@aws-lambda-powertools/commons@2.36.0',
  '@aws-lambda-powertools/metrics@2.36.0',
  '@aws/lambda-invoke-store@0.3.0',
  '@electric-sql/pglite@0.5.17',
  '@hono/node-server@2.1.9',
  '@opentelemetry/api@1.9.0',
  '@protobufjs/aspromise@1.1.2',
  '@protobufjs/base64@1.1.2',
  '@protobufjs/codegen@2.0.5',
  '@protobufjs/eventemitter@1.1.1',
  '@protobufjs/fetch@1.1.1',
  '@protobufjs/float@1.0.2',
  '@protobufjs/path@1.1.2',
  '@protobufjs/pool@1.1.0',
  '@protobufjs/utf8@1.1.2',
  '@types/node@20.19.43',
  'bintrees@1.0.2',
  'hono@4.13.19',
  'long@5.3.2',
  'postgres@3.4.9',
  'prom-client@15.1.3',
  'protobufjs@7.6.6',
  'tdigest@0.1.3',
  'undici-types@6.21.0',
  'uplot@1.6.32',
  'zod@4.6.7',
];

describe('dependencies', () => {
  it('the shipped packages are exactly the reviewed list, all from the npm registry with sha512 integrity, installed as locked', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      lockfileVersion: number;
      packages: Record<string, { version?: string; resolved?: string; integrity?: string; dev?: boolean; link?: boolean }>;
    };
    assert.equal(lock.lockfileVersion, 3);
    const shipped = Object.entries(lock.packages).filter(([path, p]) => path !== '' && !p.dev);
    const names = shipped.map(([path, p]) => `${path.replace(/^.*node_modules\//, '')}@${p.version}`).sort();
    const added = names.filter((n) => !REVIEWED_PRODUCTION_PACKAGES.includes(n));
    const removed = REVIEWED_PRODUCTION_PACKAGES.filter((n) => !names.includes(n));
    assert.deepEqual({ added, removed }, { added: [], removed: [] }, 'shipped packages changed: audit the added ones, then update REVIEWED_PRODUCTION_PACKAGES');
    for (const [path, p] of shipped) {
      assert.ok(!p.link, `${path} is a link, not a registry package`);
      // No `resolved`: fetched by name from the registry npm is set to (the lockfile omits it); a
      // git, file or tarball source would be written here.
      if (p.resolved !== undefined) assert.match(p.resolved, /^https:\/\/registry\.npmjs\.org\//, `${path} comes from ${p.resolved}`);
      assert.match(p.integrity ?? '', /^sha512-/, `${path} has no sha512 integrity`);
    }
    // node_modules holds what the lockfile says (npm ci checked every tarball against its integrity).
    const ls = spawnSync('npm', ['ls', '--omit=dev', '--all'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(ls.status, 0, `npm ls --omit=dev --all:\n${ls.stdout}\n${ls.stderr}`);
  });
});
