/**
 * PostgreSQL (Neon or any server) through postgres.js: the lightest full driver to load at a cold
 * start, and it reconnects by itself after an idle connection is dropped (a frozen Lambda
 * environment, a Neon compute that scaled to zero), so no error listener can be forgotten.
 */
import postgres from 'postgres';
import type { SqlExecutor } from './executor.ts';
import { SqlStore, type SqlStoreOptions } from './sql-store.ts';

export interface PostgresStoreOptions {
  url: string;
  /** Connections in the pool: 1 on Lambda (one request at a time per environment). */
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** Longest wait of a request for the database (see SqlStoreOptions.operationTimeoutMs). */
  requestTimeoutMs?: number;
  applicationName?: string;
  /** Transaction-mode pooler; undefined: detected from a Neon `-pooler` host. */
  pooled?: boolean;
  /** See SqlStoreOptions.fold. */
  fold?: SqlStoreOptions['fold'];
}

/** libpq URL parameters postgres.js would otherwise send to the server as settings. */
const LIBPQ_ONLY = ['sslmode', 'channel_binding', 'sslrootcert', 'sslcert', 'sslkey', 'sslnegotiation', 'connect_timeout', 'target_session_attrs'];

export interface ParsedDatabaseUrl {
  connectionString: string;
  ssl: false | { rejectUnauthorized: boolean; servername: string };
  /** host:port/database, without credentials: safe to log. */
  description: string;
  /** Neon's PgBouncer endpoint (`-pooler` host): no session state across transactions. */
  pooled: boolean;
}

/**
 * Reads a libpq-style URL. `sslmode=require` is upgraded to full certificate verification, as
 * libpq does when a root certificate is available and as Neon recommends; `no-verify` opts out.
 */
export function parseDatabaseUrl(raw: string, pooled?: boolean): ParsedDatabaseUrl {
  const url = new URL(raw);
  const sslmode = url.searchParams.get('sslmode') ?? url.searchParams.get('ssl');
  for (const key of [...LIBPQ_ONLY, 'ssl']) url.searchParams.delete(key);
  const host = url.hostname;
  const local = host === 'localhost' || host === '127.0.0.1' || host === '::1' || host === '';
  const neon = host.endsWith('.neon.tech');
  const wantsTls = sslmode ? !['disable', 'allow', 'prefer'].includes(sslmode) : neon;
  return {
    connectionString: url.toString(),
    ssl: wantsTls ? { rejectUnauthorized: sslmode !== 'no-verify', servername: host } : false,
    description: `${host || 'localhost'}:${url.port || 5432}${url.pathname}${wantsTls ? ' (TLS)' : local ? '' : ' (no TLS)'}`,
    pooled: pooled ?? host.includes('-pooler'),
  };
}

export function createPostgresExecutor(options: PostgresStoreOptions): { executor: SqlExecutor; parsed: ParsedDatabaseUrl } {
  const parsed = parseDatabaseUrl(options.url, options.pooled);
  const sql = postgres(parsed.connectionString, {
    max: options.poolMax,
    ssl: parsed.ssl,
    connect_timeout: options.connectTimeoutMs / 1000,
    idle_timeout: 0,
    // Skips a catalogue round trip on every new connection; no custom array types are used.
    fetch_types: false,
    onnotice: () => {},
    connection: {
      application_name: options.applicationName ?? 'mlops-service',
      // A transaction-mode pooler (PgBouncer) refuses startup parameters it does not know; there the
      // request deadline (requestTimeoutMs) still bounds every wait.
      ...(parsed.pooled
        ? {}
        : {
            statement_timeout: options.statementTimeoutMs,
            // The prepared statements are planned once per connection, not on every call: the
            // insert's custom plans cost ~1.5 ms each, a fifth of a commit.
            plan_cache_mode: 'force_generic_plan',
            // JIT compiles a plan once its estimated cost passes jit_above_cost; a queue's stale
            // row estimate pushed /metrics there at a million events: 0.8 s compiling a 0.1 s query.
            jit: 'off',
          }),
    },
  });
  // Named prepared statements do not survive a transaction-mode pooler switching server
  // connections, so they are used on direct connections only.
  const prepare = !parsed.pooled;
  const wrap = (db: postgres.Sql | postgres.TransactionSql): SqlExecutor => ({
    query: async <T>(text: string, params: unknown[] = []) =>
      (await db.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare })) as unknown as T[],
    exec: async (text: string) => {
      await db.unsafe(text).simple();
    },
    transaction: (fn) => sql.begin((tx) => fn(wrap(tx))) as never,
    close: () => sql.end({ timeout: 5 }),
  });
  return { executor: wrap(sql), parsed };
}

export function openPostgresStore(options: PostgresStoreOptions): SqlStore {
  const { executor, parsed } = createPostgresExecutor(options);
  return new SqlStore(executor, {
    kind: 'postgres',
    description: `PostgreSQL at ${parsed.description}${parsed.pooled ? ' (pooled)' : ''}`,
    // Appends do not contend, so commits may overlap; one connection stays free for reads and folds.
    maxConcurrentCommits: Math.max(1, options.poolMax - 1),
    ...(options.requestTimeoutMs ? { operationTimeoutMs: options.requestTimeoutMs } : {}),
    ...(options.fold ? { fold: options.fold } : {}),
    // Through a pooler no startup parameter may be set: reads turn JIT off per transaction.
    ...(parsed.pooled ? { readSettings: "SELECT set_config('jit', 'off', true)" } : {}),
  });
}
