/**
 * Embedded PostgreSQL (PGlite, PostgreSQL compiled to WebAssembly) in a local folder: what
 * `npm start` uses on a laptop with no database server. One process per folder, enforced by a
 * lock file. Never used on Lambda: the folder would vanish with the execution environment.
 */
import { PGlite } from '@electric-sql/pglite';
import { resolve } from 'node:path';
import { acquireDirLock } from './dir-lock.ts';
import { StoreUnavailableError } from './errors.ts';
import type { SqlExecutor } from './executor.ts';
import { SESSION_FUNCTIONS_SQL, SqlStore, type SqlStoreOptions } from './sql-store.ts';

type Queryable = Pick<PGlite, 'query' | 'exec'>;

function wrap(db: PGlite, target: Queryable): SqlExecutor {
  return {
    query: async <T>(text: string, params: unknown[] = []) => (await target.query<T>(text, params)).rows,
    exec: async (text: string) => {
      await target.exec(text);
    },
    transaction: (fn) => db.transaction((tx) => fn(wrap(db, tx))),
    close: () => db.close(),
  };
}

/**
 * PostgreSQL's default shared_buffers (128 MB) lives inside PGlite's WebAssembly memory, and
 * PGlite touches all of it at start: 405 MB RSS right after `npm start`, ~300 MB with 32 MB (the
 * folder's data is read through the OS page cache beyond that). PGlite's own flags are kept.
 */
const PGLITE_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=32MB'];

/** Opens (creating if needed) the folder under its lock; `close()` releases the lock. */
export async function createPgliteExecutor(dataDir: string): Promise<{ executor: SqlExecutor; folder: string }> {
  const folder = resolve(dataDir);
  const lock = acquireDirLock(folder);
  let db: PGlite;
  try {
    db = await PGlite.create(folder, { startParams: PGLITE_START_PARAMS });
  } catch (error) {
    lock.release();
    throw new StoreUnavailableError(`Could not open the embedded database in ${folder}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const executor = wrap(db, db);
  const close = executor.close;
  executor.close = async () => {
    try {
      await close();
    } finally {
      lock.release();
    }
  };
  return { executor, folder };
}

export async function openPgliteStore(dataDir: string, fold?: SqlStoreOptions['fold']): Promise<SqlStore> {
  const { executor, folder } = await createPgliteExecutor(dataDir);
  await executor.exec(SESSION_FUNCTIONS_SQL);
  // PGlite runs one statement at a time; a second commit in flight would only queue.
  return new SqlStore(executor, {
    kind: 'pglite',
    description: `embedded PGlite in ${folder}`,
    maxConcurrentCommits: 1,
    sessionFunctions: true,
    ...(fold ? { fold } : {}),
  });
}
