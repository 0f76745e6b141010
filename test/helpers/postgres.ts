/**
 * A fresh, empty PostgreSQL database per suite on the test server (TEST_DATABASE_URL), dropped
 * afterwards, so suites never see each other's rows. `skipPostgres` tells a suite to skip itself
 * (set by scripts/run-tests.mjs when no server is reachable outside CI).
 */
import { openPostgresStore } from '../../src/storage/postgres.ts';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../../tools/shared/throwaway-database.ts';
import { IN_CI } from './skip.ts';

/** Never set under CI: there the suites run, and fail if PostgreSQL is missing. */
export const skipPostgres = process.env.SKIP_POSTGRES === '1' && !IN_CI ? 'PostgreSQL not reachable (see the warning above)' : false;

/** The PostgreSQL server the tests create throwaway databases on. */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const adminUrl = ADMIN_URL;

export type TestDatabase = ThrowawayDatabase;

export function createTestDatabase(label = 'mlops'): Promise<TestDatabase> {
  return createThrowawayDatabase(adminUrl, `${label}_test`);
}

/** A fresh database with the service's schema, for suites that start a Lambda (which never migrates). */
export async function createMigratedTestDatabase(label = 'mlops'): Promise<TestDatabase> {
  const db = await createTestDatabase(label);
  const store = openPostgresStore({ url: db.url, poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
  return db;
}
