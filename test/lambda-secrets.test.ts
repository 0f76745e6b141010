/**
 * Secrets on Lambda: DATABASE_URL and the API keys read from Secrets Manager through the
 * Parameters and Secrets extension (a stand-in HTTP server here, speaking the extension's
 * protocol on its port, checking the session token header, and told when to fail or what a
 * rotation changed).
 *
 * Each suite imports its own instance of the handler module (a query string makes a new one), as
 * each Lambda execution environment runs its own.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { openPostgresStore } from '../src/storage/postgres.ts';
import { TcpProxy } from '../tools/shared/tcp-proxy.ts';
import { v2Event } from './helpers/lambda-events.ts';
import { pgClusterProblem, pgClusterSkip, startPgCluster, type PgCluster } from './helpers/pg-cluster.ts';
import { createMigratedTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';

type Handler = (event: unknown, context?: unknown) => Promise<any>;
const KEY = 'secret-api-key-0123456789';

/** The extension's stand-in: secrets by id; `failNext` makes the next reads of one answer 503. */
class StandInExtension {
  readonly secrets = new Map<string, string>();
  readonly failNext = new Map<string, number>();
  readonly asked: string[] = [];
  #server: Server | undefined;

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://localhost');
      this.asked.push(url.pathname + url.search);
      if (req.headers['x-aws-parameters-secrets-token'] !== 'session-token') {
        res.writeHead(401).end();
        return;
      }
      const id = url.searchParams.get('secretId') ?? '';
      const failures = this.failNext.get(id) ?? 0;
      if (failures > 0) {
        this.failNext.set(id, failures - 1);
        res.writeHead(503).end('{"message":"throttled"}');
      } else if (url.pathname === '/secretsmanager/get' && this.secrets.has(id)) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ SecretString: this.secrets.get(id) }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    process.env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT = String((this.#server.address() as { port: number }).port);
  }

  reads(id: string): number {
    return this.asked.filter((a) => a === `/secretsmanager/get?secretId=${encodeURIComponent(id)}`).length;
  }

  close() {
    this.#server?.close();
  }
}

const extension = new StandInExtension();
before(async () => {
  await extension.start();
  Object.assign(process.env, { AWS_SESSION_TOKEN: 'session-token', LOG_LEVEL: 'silent', POWERTOOLS_METRICS_DISABLED: 'true' });
  delete process.env.DATABASE_URL;
});
after(() => extension.close());

/** A new execution environment: the handler module initialised afresh with `env`. */
async function newEnvironment(name: string, env: Record<string, string | undefined>): Promise<Handler> {
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return ((await import(`../src/adapter/lambda/handler.ts?environment=${name}`)) as { handler: Handler }).handler;
}

const trackBody = (id: string) => JSON.stringify({ business_id: 'secret-biz', response_time_ms: 12, tokens_used: 3, event_id: id });

describe('Lambda secrets through the Parameters and Secrets extension', { skip: skipPostgres }, () => {
  let db: TestDatabase;
  let handler: Handler;

  before(async () => {
    db = await createMigratedTestDatabase('secrets');
    extension.secrets.set('mlops/db', JSON.stringify({ DATABASE_URL: db.url, note: 'JSON secrets carry the URL under DATABASE_URL' }));
    extension.secrets.set('mlops/keys', `${KEY}, another-key-0123456789`);
    handler = await newEnvironment('first', { DATABASE_URL_SECRET_ID: 'mlops/db', MLOPS_API_KEYS_SECRET_ID: 'mlops/keys' });
  });
  after(async () => {
    await db?.drop();
  });

  it('reads the API keys at init and the database URL on first use', async () => {
    assert.equal(extension.reads('mlops/keys'), 1, 'keys read during init');
    assert.equal(extension.reads('mlops/db'), 0, 'the database not yet');
    const health = JSON.parse((await handler(v2Event('GET', '/health'))).body);
    assert.equal(health.security.api_key_required, true);
    assert.equal(health.database.configured, true);
    const body = trackBody('first-1');
    assert.equal((await handler(v2Event('POST', '/track', { body }))).statusCode, 401);
    const stored = await handler(v2Event('POST', '/track', { body, headers: { 'x-api-key': KEY } }));
    assert.equal(stored.statusCode, 200, stored.body);
    assert.equal(extension.reads('mlops/db'), 1);
  });
});

describe('Lambda: a secret read that fails is tried again by a later invocation', { skip: skipPostgres }, () => {
  let db: TestDatabase;
  let handler: Handler;

  before(async () => {
    db = await createMigratedTestDatabase('secrets_retry');
    extension.secrets.set('retry/db', db.url);
    extension.secrets.set('retry/keys', KEY);
    extension.failNext.set('retry/keys', 1);
    extension.failNext.set('retry/db', 1);
    handler = await newEnvironment('retry', { DATABASE_URL_SECRET_ID: 'retry/db', MLOPS_API_KEYS_SECRET_ID: 'retry/keys' });
  });
  after(async () => {
    await db?.drop();
  });

  it('answers 503 while the read fails, then 200 once a later read succeeds, asking the extension with backoff', async (t) => {
    assert.equal(extension.reads('retry/keys'), 1, 'the init read, which failed');
    const first = await handler(v2Event('GET', '/health'));
    assert.equal(first.statusCode, 503, first.body);
    assert.match(JSON.parse(first.body).message, /API keys.*503/);

    // Invocations keep coming; the environment recovers by itself (keys, then the database URL).
    const seen: number[] = [];
    for (let i = 0; ; i++) {
      const answer = await handler(v2Event('POST', '/track', { body: trackBody(`retry-${i}`), headers: { 'x-api-key': KEY } }));
      seen.push(answer.statusCode);
      if (answer.statusCode === 200) break;
      assert.equal(answer.statusCode, 503, answer.body);
      assert.ok(i < 400, `still ${answer.statusCode} after ${i} invocations: ${answer.body}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(seen.length > 4, `invocations: ${seen.length}`);
    // One failed read and one that worked, each: the invocations in between did not ask again.
    assert.equal(extension.reads('retry/keys'), 2);
    assert.equal(extension.reads('retry/db'), 2);
    t.diagnostic(`recovered after ${seen.length} invocations; the extension was asked 2 + 2 times`);
  });
});

/**
 * A rotation needs password authentication, which the shared server (trust) does not check: a
 * private cluster whose pg_hba.conf asks for SCRAM passwords over TCP.
 */
describe('Lambda: DATABASE_URL from a secret that was rotated', { skip: pgClusterSkip || skipPostgres }, () => {
  let cluster: PgCluster;
  let proxy: TcpProxy;
  let admin: postgres.Sql;
  let handler: Handler;
  const urlWith = (password: string) => proxy.rewrite(`postgres://mlops_app:${password}@127.0.0.1:${cluster.port}/rotating`);

  before(async () => {
    if (pgClusterProblem) throw new Error(`CI needs a private PostgreSQL cluster: ${pgClusterProblem}`);
    cluster = await startPgCluster();
    writeFileSync(
      join(cluster.dataDir, 'pg_hba.conf'),
      ['local all all trust', 'host all postgres 127.0.0.1/32 trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n'),
    );
    admin = postgres(cluster.adminUrl, { max: 1, onnotice: () => {} });
    await admin`SELECT pg_reload_conf()`;
    await admin.unsafe(`CREATE ROLE mlops_app LOGIN PASSWORD 'first-password'`);
    await admin.unsafe(`CREATE DATABASE rotating OWNER mlops_app`);
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: cluster.port });
    const migrator = openPostgresStore({ url: urlWith('first-password'), poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
    await migrator.migrate();
    await migrator.close();
    extension.secrets.set('rotate/db', urlWith('first-password'));
    handler = await newEnvironment('rotate', { DATABASE_URL_SECRET_ID: 'rotate/db', MLOPS_API_KEYS_SECRET_ID: undefined });
  });
  after(async () => {
    await proxy?.close();
    await admin?.end();
    cluster?.remove();
  });

  it('reads the secret again after the server refuses the old password, and reconnects with the new one', async () => {
    const before = await handler(v2Event('POST', '/track', { body: trackBody('rotate-1') }));
    assert.equal(before.statusCode, 200, before.body);
    assert.equal(extension.reads('rotate/db'), 1);

    // The rotation: a new password in the database and in the secret. Sessions already open keep
    // working, so the environment's connection is closed too (as an idle timeout or a freeze would).
    await admin.unsafe(`ALTER ROLE mlops_app PASSWORD 'second-password'`);
    extension.secrets.set('rotate/db', urlWith('second-password'));
    await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'rotating'`;
    await proxy.until(() => proxy.flows.size === 0);
    const old = postgres(urlWith('first-password'), { max: 1, onnotice: () => {} });
    await assert.rejects(old`SELECT 1`, (e: { code?: string }) => e.code === '28P01', 'the old password is refused');
    await old.end();

    const after = await handler(v2Event('POST', '/track', { body: trackBody('rotate-2') }));
    assert.equal(after.statusCode, 200, after.body);
    assert.equal(extension.reads('rotate/db'), 2, 'read again once, after the refusal');
    const next = await handler(v2Event('POST', '/track', { body: trackBody('rotate-3') }));
    assert.equal(next.statusCode, 200, next.body);
    assert.equal(extension.reads('rotate/db'), 2);
  });
});
