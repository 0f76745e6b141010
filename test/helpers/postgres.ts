/**
 * A fresh, empty PostgreSQL database per suite on the test server (TEST_DATABASE_URL), dropped
 * afterwards, so suites never see each other's rows. `skipPostgres` tells a suite to skip itself
 * (set by scripts/run-tests.mjs when no server is reachable outside CI).
 */
import postgres from 'postgres';
import { randomBytes } from 'node:crypto';

export const skipPostgres = process.env.SKIP_POSTGRES === '1' ? 'PostgreSQL not reachable (see the warning above)' : false;

const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(label = 'mlops'): Promise<TestDatabase> {
  const name = `${label}_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}
