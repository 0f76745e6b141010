/**
 * The database of a Lambda environment: PostgreSQL only (an embedded database would vanish with
 * the environment), one connection, opened on first use so requests that need no database (and
 * cold starts that serve them) never load the driver. Warm-up events open it ahead of traffic.
 */
import type { Config } from '../../core/config.ts';
import { StoreNotConfiguredError } from '../../core/http-errors.ts';
import type { StoreInfo } from '../../core/context.ts';
import { StoreUnavailableError } from '../../storage/errors.ts';
import type { Store } from '../../storage/types.ts';
import { readParameter, readSecret } from './secrets.ts';

export const NO_DATABASE_PROBLEM =
  'DATABASE_URL is not set. On Lambda the embedded database is refused (its data would vanish with the execution ' +
  'environment): set DATABASE_URL (or DATABASE_URL_SECRET_ID / DATABASE_URL_SSM_PARAMETER) to a PostgreSQL or Neon URL.';

type Source = { url: string } | { secretId: string } | { ssmParameter: string };

function source(env: NodeJS.ProcessEnv, config: Pick<Config, 'databaseUrl'>): Source | undefined {
  if (config.databaseUrl) return { url: config.databaseUrl };
  if (env.DATABASE_URL_SECRET_ID) return { secretId: env.DATABASE_URL_SECRET_ID };
  if (env.DATABASE_URL_SSM_PARAMETER) return { ssmParameter: env.DATABASE_URL_SSM_PARAMETER };
  return undefined;
}

export function describeDatabase(env: NodeJS.ProcessEnv, config: Pick<Config, 'databaseUrl'>): StoreInfo {
  const s = source(env, config);
  if (!s) return { kind: 'none', description: 'none', problem: NO_DATABASE_PROBLEM };
  const where = 'url' in s ? 'DATABASE_URL' : 'secretId' in s ? `secret ${s.secretId}` : `parameter ${s.ssmParameter}`;
  return { kind: 'postgres', description: `PostgreSQL from ${where}` };
}

export async function resolveDatabaseUrl(env: NodeJS.ProcessEnv, config: Pick<Config, 'databaseUrl'>): Promise<string> {
  const s = source(env, config);
  if (!s) throw new StoreNotConfiguredError(NO_DATABASE_PROBLEM);
  try {
    if ('url' in s) return s.url;
    if ('secretId' in s) return await readSecret(s.secretId, 'DATABASE_URL');
    return await readParameter(s.ssmParameter);
  } catch (error) {
    throw new StoreUnavailableError(`Could not read the database URL: ${(error as Error).message}`, { cause: error });
  }
}

export type StoreSettings = Pick<
  Config,
  'databaseUrl' | 'dbPoolMax' | 'dbConnectTimeoutMs' | 'dbStatementTimeoutMs' | 'dbRequestTimeoutMs' | 'migrateOnStart' | 'dbPooled' | 'foldEvery'
>;

/** A memoised opener: one store per environment; a failed open is retried on the next call. */
export function lazyStore(env: NodeJS.ProcessEnv, config: StoreSettings): () => Promise<Store> {
  let opening: Promise<Store> | undefined;
  const open = async (): Promise<Store> => {
    const url = await resolveDatabaseUrl(env, config);
    const { openPostgresStore } = await import('../../storage/postgres.ts');
    const store = openPostgresStore({
      url,
      poolMax: config.dbPoolMax,
      connectTimeoutMs: config.dbConnectTimeoutMs,
      statementTimeoutMs: config.dbStatementTimeoutMs,
      requestTimeoutMs: config.dbRequestTimeoutMs,
      applicationName: 'mlops-service-lambda',
      ...(config.dbPooled !== undefined ? { pooled: config.dbPooled } : {}),
      // A frozen environment cannot finish work after its answer: it folds before answering.
      fold: { every: config.foldEvery, mode: 'inline' },
    });
    if (config.migrateOnStart) await store.migrate();
    return store;
  };
  return () => {
    opening ??= open().catch((error: unknown) => {
      opening = undefined;
      throw error;
    });
    return opening;
  };
}
