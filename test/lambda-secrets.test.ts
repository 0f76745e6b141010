/**
 * Secrets on Lambda: DATABASE_URL and the API keys read from Secrets Manager through the
 * Parameters and Secrets extension (a stand-in HTTP server here, speaking the extension's
 * protocol on its port, checking the session token header).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { v2Event } from './helpers/lambda-events.ts';
import { createMigratedTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';

type Handler = (event: unknown, context?: unknown) => Promise<any>;
const KEY = 'secret-api-key-0123456789';

describe('Lambda secrets through the Parameters and Secrets extension', { skip: skipPostgres }, () => {
  let db: TestDatabase;
  let extension: Server;
  const asked: string[] = [];
  let handler: Handler;

  before(async () => {
    db = await createMigratedTestDatabase('secrets');
    const secrets: Record<string, string> = {
      'mlops/db': JSON.stringify({ DATABASE_URL: db.url, note: 'JSON secrets carry the URL under DATABASE_URL' }),
      'mlops/keys': `${KEY}, another-key-0123456789`,
    };
    extension = createServer((req, res) => {
      const url = new URL(req.url!, 'http://localhost');
      asked.push(url.pathname + url.search);
      if (req.headers['x-aws-parameters-secrets-token'] !== 'session-token') {
        res.writeHead(401).end();
        return;
      }
      const id = url.searchParams.get('secretId') ?? '';
      if (url.pathname === '/secretsmanager/get' && id in secrets) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ SecretString: secrets[id] }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => extension.listen(0, '127.0.0.1', r));
    const port = (extension.address() as { port: number }).port;
    delete process.env.DATABASE_URL;
    Object.assign(process.env, {
      DATABASE_URL_SECRET_ID: 'mlops/db',
      MLOPS_API_KEYS_SECRET_ID: 'mlops/keys',
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
      AWS_SESSION_TOKEN: 'session-token',
      LOG_LEVEL: 'silent',
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    ({ handler } = (await import('../src/adapter/lambda/handler.ts')) as { handler: Handler });
  });
  after(async () => {
    extension?.close();
    await db?.drop();
  });

  it('reads the API keys at init and the database URL on first use', async () => {
    assert.deepEqual(asked, ['/secretsmanager/get?secretId=mlops%2Fkeys'], 'keys read during init, the database not yet');
    const health = JSON.parse((await handler(v2Event('GET', '/health'))).body);
    assert.equal(health.security.api_key_required, true);
    assert.equal(health.database.configured, true);
    const body = JSON.stringify({ business_id: 'secret-biz', response_time_ms: 12, tokens_used: 3 });
    assert.equal((await handler(v2Event('POST', '/track', { body }))).statusCode, 401);
    const stored = await handler(v2Event('POST', '/track', { body, headers: { 'x-api-key': KEY } }));
    assert.equal(stored.statusCode, 200, stored.body);
    assert.ok(asked.includes('/secretsmanager/get?secretId=mlops%2Fdb'));
  });
});
