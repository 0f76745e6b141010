import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/core/config.ts';
import { parseDatabaseUrl } from '../../src/storage/postgres.ts';

const problems = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
};

describe('configuration', () => {
  it('has working defaults with an empty environment', () => {
    const c = loadConfig({});
    assert.equal(c.port, 5001);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.dataDir, './data');
    assert.deepEqual(c.apiKeys, []);
    assert.deepEqual(c.corsOrigins, ['*']);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.basePath, '');
  });

  it('takes PORT over SERVICE_PORT, and SERVICE_PORT alone', () => {
    assert.equal(loadConfig({ PORT: '8080', SERVICE_PORT: '9090' }).port, 8080);
    assert.equal(loadConfig({ SERVICE_PORT: '9090' }).port, 9090);
  });

  it('names every bad variable at once', () => {
    const p = problems({ PORT: 'abc', LOG_LEVEL: 'loud', CORS_ORIGINS: 'not a url', BASE_PATH: 'mlops' });
    assert.equal(p.length, 4);
    assert.match(p[0]!, /^PORT must be an integer/);
    assert.ok(p.some((x) => x.startsWith('LOG_LEVEL')));
    assert.ok(p.some((x) => x.startsWith('CORS_ORIGINS')));
    assert.ok(p.some((x) => x.startsWith('BASE_PATH')));
  });

  it('reads the pooled mode and the fold settings', () => {
    const c = loadConfig({});
    assert.equal(c.dbPooled, undefined, 'unset: decided from the host');
    assert.equal(c.foldEvery, 200);
    assert.equal(c.foldIntervalMs, 1000);
    const set = loadConfig({ DB_POOLED: 'true', FOLD_EVERY_EVENTS: '50', FOLD_INTERVAL_MS: '0' });
    assert.deepEqual([set.dbPooled, set.foldEvery, set.foldIntervalMs], [true, 50, 0]);
    assert.equal(loadConfig({ DB_POOLED: 'false' }).dbPooled, false);
    const p = problems({ DB_POOLED: 'maybe', FOLD_EVERY_EVENTS: '0' });
    assert.ok(p.some((x) => x.startsWith('DB_POOLED')));
    assert.ok(p.some((x) => x.startsWith('FOLD_EVERY_EVENTS')));
  });

  it('treats a Neon -pooler host as pooled unless DB_POOLED says otherwise', () => {
    const neon = 'postgresql://u:p@ep-cool-1-pooler.us-east-1.aws.neon.tech/db?sslmode=require';
    assert.equal(parseDatabaseUrl(neon).pooled, true);
    assert.equal(parseDatabaseUrl(neon, false).pooled, false);
    assert.equal(parseDatabaseUrl('postgresql://u:p@db.example.supabase.co:6543/postgres').pooled, false);
    assert.equal(parseDatabaseUrl('postgresql://u:p@db.example.supabase.co:6543/postgres', true).pooled, true);
  });

  it('rejects a non-PostgreSQL DATABASE_URL without echoing it', () => {
    const p = problems({ DATABASE_URL: 'mysql://user:secret@host/db' });
    assert.match(p[0]!, /^DATABASE_URL/);
    assert.doesNotMatch(p[0]!, /secret/);
  });

  it('merges MLOPS_API_KEY and MLOPS_API_KEYS and rejects short keys', () => {
    const c = loadConfig({ MLOPS_API_KEY: 'a'.repeat(16), MLOPS_API_KEYS: `${'b'.repeat(20)}, ${'a'.repeat(16)}` });
    assert.deepEqual(c.apiKeys, ['a'.repeat(16), 'b'.repeat(20)]);
    assert.match(problems({ MLOPS_API_KEYS: 'short' })[0]!, /at least 16 characters/);
  });

  it('normalises BASE_PATH and CORS origins', () => {
    const c = loadConfig({ BASE_PATH: '/mlops/', CORS_ORIGINS: 'https://a.example.com, http://localhost:3000' });
    assert.equal(c.basePath, '/mlops');
    assert.deepEqual(c.corsOrigins, ['https://a.example.com', 'http://localhost:3000']);
  });
});
