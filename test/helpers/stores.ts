/**
 * Runs a suite once per storage backend: embedded PGlite (always) and PostgreSQL (skipped loudly
 * when unreachable, outside CI).
 */
import { after, before } from 'node:test';
import type { SqlExecutor } from '../../src/storage/executor.ts';
import { createPgliteExecutor } from '../../src/storage/pglite.ts';
import { createPostgresExecutor } from '../../src/storage/postgres.ts';
import { SESSION_FUNCTIONS_SQL, SqlStore, type SqlStoreOptions } from '../../src/storage/sql-store.ts';
import { freshPgliteDir } from './pglite-template.ts';
import { createTestDatabase, skipPostgres, type TestDatabase } from './postgres.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';

export interface Backend {
  name: 'pglite' | 'postgres';
  skip: string | false;
  /** Environment for a server process on a fresh, empty database; `cleanup` after the suite. */
  provision(): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>;
}

export const BACKENDS: Backend[] = [
  {
    name: 'pglite',
    skip: false,
    async provision() {
      const dir = await freshPgliteDir();
      return { env: { DATA_DIR: dir }, cleanup: async () => {} };
    },
  },
  {
    name: 'postgres',
    skip: skipPostgres,
    async provision() {
      const db: TestDatabase = await createTestDatabase();
      return { env: { DATABASE_URL: db.url }, cleanup: () => db.drop() };
    },
  },
];

export interface TestStore {
  store: SqlStore;
  /** The same connection(s), for SQL behind the store's back. */
  raw: SqlExecutor;
  /** PostgreSQL only: the database URL, to open more instances. */
  url?: string;
  close(): Promise<void>;
}

/** `options`: store settings for the test (fold policy, purge chunk…). */
export async function openTestStore(backend: Backend, options: Partial<SqlStoreOptions> = {}): Promise<TestStore> {
  if (backend.name === 'pglite') {
    const { executor } = await createPgliteExecutor(await freshPgliteDir());
    await executor.exec(SESSION_FUNCTIONS_SQL);
    const store = new SqlStore(executor, { kind: 'pglite', description: 'test', maxConcurrentCommits: 1, sessionFunctions: true, ...options });
    return { store, raw: executor, close: () => store.close() };
  }
  const db = await createTestDatabase();
  const { executor } = createPostgresExecutor({ url: db.url, poolMax: 4, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
  const store = new SqlStore(executor, { kind: 'postgres', description: 'test', maxConcurrentCommits: 2, ...options });
  await store.migrate();
  return {
    store,
    raw: executor,
    url: db.url,
    async close() {
      await store.close();
      await db.drop();
    },
  };
}

/**
 * Inside a `describe`: a server process on a fresh database of `backend` for the suite (started in
 * `before`, stopped and its database dropped in `after`). Returns a getter for the running server.
 */
export function serverOn(backend: Backend, env: Record<string, string> = {}): () => ServerProcess {
  let server: ServerProcess | undefined;
  let cleanup: () => Promise<void> = async () => {};
  before(async () => {
    const provisioned = await backend.provision();
    cleanup = provisioned.cleanup;
    server = await startServerProcess({ ...provisioned.env, ...env });
  });
  after(async () => {
    await server?.stop();
    await cleanup();
  });
  return () => {
    if (!server) throw new Error('the server is started in before()');
    return server;
  };
}
