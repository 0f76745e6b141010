/**
 * Picks the store for a long-running process: PostgreSQL when `DATABASE_URL` is set, otherwise
 * the embedded PGlite folder. Each driver is imported only when chosen.
 */
import type { Config } from '../core/config.ts';
import type { SqlStore } from './sql-store.ts';

export type StoreSettings = Pick<Config, 'databaseUrl' | 'dataDir' | 'dbPoolMax' | 'dbConnectTimeoutMs' | 'dbStatementTimeoutMs'> &
  Partial<Pick<Config, 'dbRequestTimeoutMs' | 'dbPooled' | 'foldEvery'>>;

export async function openStore(settings: StoreSettings): Promise<SqlStore> {
  if (settings.databaseUrl) {
    const { openPostgresStore } = await import('./postgres.ts');
    return openPostgresStore({
      url: settings.databaseUrl,
      poolMax: settings.dbPoolMax,
      connectTimeoutMs: settings.dbConnectTimeoutMs,
      statementTimeoutMs: settings.dbStatementTimeoutMs,
      ...(settings.dbRequestTimeoutMs ? { requestTimeoutMs: settings.dbRequestTimeoutMs } : {}),
      ...(settings.dbPooled !== undefined ? { pooled: settings.dbPooled } : {}),
      ...(settings.foldEvery ? { fold: { every: settings.foldEvery, mode: 'background' as const } } : {}),
    });
  }
  const { openPgliteStore } = await import('./pglite.ts');
  return openPgliteStore(settings.dataDir, settings.foldEvery ? { every: settings.foldEvery } : undefined);
}
