/**
 * The database of a Lambda environment: PostgreSQL only (an embedded database would vanish with
 * the environment), one connection, opened on first use so requests that need no database (and
 * cold starts that serve them) never load the driver. Warm-up events open it ahead of traffic.
 *
 * A URL kept in Secrets Manager or Parameter Store is read once and kept; a failed read is tried
 * again by later requests (with backoff, see CachedSecret), and when the server refuses the
 * credentials (a rotated secret: SQLSTATE 28P01/28000) it is read again and the store reconnects
 * with the new value.
 */
import type { Config } from '../../core/config.ts';
import { StoreNotConfiguredError } from '../../core/http-errors.ts';
import type { StoreInfo } from '../../core/context.ts';
import { StoreUnavailableError } from '../../storage/errors.ts';
import type { Store } from '../../storage/types.ts';
import { CachedSecret, readParameter, readSecret } from './secrets.ts';

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

/** Where the URL comes from; `reload` only for a URL kept in a secret or parameter. */
interface DatabaseUrl {
  get(): Promise<string>;
  reload?: () => Promise<string>;
}

function databaseUrl(env: NodeJS.ProcessEnv, config: Pick<Config, 'databaseUrl'>): DatabaseUrl {
  const s = source(env, config);
  if (!s) throw new StoreNotConfiguredError(NO_DATABASE_PROBLEM);
  if ('url' in s) return { get: async () => s.url };
  const secret = new CachedSecret(() => ('secretId' in s ? readSecret(s.secretId, 'DATABASE_URL') : readParameter(s.ssmParameter)));
  const unavailable = (error: unknown): never => {
    throw new StoreUnavailableError(`Could not read the database URL: ${(error as Error).message}`, { cause: error });
  };
  return { get: () => secret.get().catch(unavailable), reload: () => secret.refresh().catch(unavailable) };
}

export async function resolveDatabaseUrl(env: NodeJS.ProcessEnv, config: Pick<Config, 'databaseUrl'>): Promise<string> {
  return databaseUrl(env, config).get();
}

export type StoreSettings = Pick<
  Config,
  'databaseUrl' | 'dbPoolMax' | 'dbConnectTimeoutMs' | 'dbStatementTimeoutMs' | 'dbRequestTimeoutMs' | 'migrateOnStart' | 'dbPooled' | 'foldEvery'
>;

/** A memoised opener: one store per environment; a failed open is retried on the next call. */
export function lazyStore(env: NodeJS.ProcessEnv, config: StoreSettings): () => Promise<Store> {
  let opening: Promise<Store> | undefined;
  let url: DatabaseUrl | undefined; // kept across attempts: its backoff and its value
  const open = async (): Promise<Store> => {
    url ??= databaseUrl(env, config);
    const { reload } = url;
    const first = await url.get();
    const { openPostgresStore } = await import('../../storage/postgres.ts');
    const store = openPostgresStore({
      url: first,
      ...(reload ? { reloadUrl: reload } : {}),
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
