/**
 * `npm run migrate`: applies the SQL migrations to DATABASE_URL (use Neon's direct, non-pooler
 * host). What a Lambda deployment made by hand needs once per release; the CDK stack does it with
 * a custom resource, and servers do it at start-up.
 */
import { parseArgs } from 'node:util';
import { openPostgresStore, parseDatabaseUrl } from '../src/storage/postgres.ts';

const HELP = `Usage: DATABASE_URL=postgresql://… npm run migrate [-- --url postgresql://…]

Applies pending migrations (schema "mlops") under an advisory lock; safe to run twice or from
several machines at once. For Neon, use the direct host (without -pooler).

  --url URL   database URL (default: $DATABASE_URL)
  --help      this text`;

const { values } = parseArgs({ options: { url: { type: 'string' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const url = values.url ?? process.env.DATABASE_URL;
if (!url) {
  console.error('No database: set DATABASE_URL or pass --url. (The embedded database migrates itself on `npm start`.)');
  process.exit(2);
}
let where: string;
try {
  where = parseDatabaseUrl(url).description;
} catch {
  console.error('DATABASE_URL is not a valid URL (value not shown: it may hold a password).');
  process.exit(2);
}
if (where.includes('-pooler')) console.warn('warning: this is a pooler host; prefer the direct host for migrations.');
const store = openPostgresStore({ url, poolMax: 1, connectTimeoutMs: 10_000, statementTimeoutMs: 120_000, applicationName: 'mlops-service-migrate' });
try {
  const { applied } = await store.migrate();
  console.log(applied.length ? `Applied to ${where}: ${applied.join(', ')}` : `${where} is up to date.`);
} catch (error) {
  console.error(`Migration failed on ${where}: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await store.close();
}
