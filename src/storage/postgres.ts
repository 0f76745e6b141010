/**
 * PostgreSQL (Neon or any server) through postgres.js: the lightest full driver to load at a cold
 * start, and it reconnects by itself after a connection is closed, so no error listener can be
 * forgotten.
 *
 * A connection can also die without a word: a Lambda environment frozen for minutes, a NAT gateway
 * or load balancer that forgets an idle flow (AWS NAT gateway and NLB after 350 s), a partition.
 * Then the kernel retransmits for ~15 minutes before it gives up, and every statement sent on that
 * connection waits as long. So (see ConnectionPool):
 * - a connection idle for `idleTimeoutMs` (50 s: below every common idle drop) is closed, by
 *   postgres.js's timer and, for a process that was frozen and whose timers have not run yet, by a
 *   wall-clock check before the next statement;
 * - TCP keepalive starts probing a connection after 15 s without traffic (also while a long
 *   statement runs), which keeps NAT mappings fresh and lets the kernel close a connection whose
 *   peer is gone (after the kernel's probe interval and count);
 * - a statement unanswered a quarter past the request deadline (`requestTimeoutMs`: its caller has
 *   its 503 by then, and so has a request queued just behind it) retires the whole pool: later
 *   statements go to fresh connections at once, while the old pool may finish its work until the
 *   statement timeout, then is closed;
 * - a statement that failed before it was handed to any connection (connecting failed, the pool
 *   was being retired) was never executed, and is retried once on a fresh connection;
 * - credentials the server refuses (28P01/28000) are read again through `reloadUrl` (a secret
 *   that was rotated), and the pool reconnects with the new URL.
 */
import { connect, type Socket } from 'node:net';
import postgres from 'postgres';
import { StoreUnavailableError } from './errors.ts';
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
  /** Connections idle this long are closed before they are used again (default DEFAULT_IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  /**
   * Reads the URL again after the server refused its credentials (SQLSTATE 28P01/28000): a URL
   * kept in a secret that may have been rotated. Unset: refused credentials answer 503.
   */
  reloadUrl?: () => Promise<string>;
}

/** Below the shortest common idle drop of a NAT or load balancer (AWS NAT gateway, NLB: 350 s; ALB: 60 s). */
const DEFAULT_IDLE_TIMEOUT_MS = 50_000;
/** TCP keepalive: idle time before the first probe. */
const KEEPALIVE_S = 15;

/** libpq URL parameters postgres.js would otherwise send to the server as settings. */
const LIBPQ_ONLY = ['sslmode', 'channel_binding', 'sslrootcert', 'sslcert', 'sslkey', 'sslnegotiation', 'connect_timeout', 'target_session_attrs'];

export interface ParsedDatabaseUrl {
  connectionString: string;
  /**
   * postgres.js's `ssl`: false (plain), 'prefer' (TLS when the server offers it, unverified, else
   * plain on the same connection: libpq's prefer) or TLS options. No `servername`: postgres.js sets
   * it from the host, and leaves it out for an IP address (RFC 6066).
   */
  ssl: false | 'prefer' | { rejectUnauthorized: boolean };
  /** host:port/database, without credentials: safe to log. */
  description: string;
  /** Neon's PgBouncer endpoint (`-pooler` host): no session state across transactions. */
  pooled: boolean;
}

/**
 * Reads a libpq-style URL, sslmode as libpq means it: `disable` (or `ssl=false`) plain; `allow`,
 * `prefer` and no sslmode at all TLS when offered (a Neon host without sslmode gets verified TLS, as
 * Neon requires); `require` is upgraded to full certificate verification, as libpq does when a
 * root certificate is available and as Neon recommends, like `verify-ca`, `verify-full` and
 * `ssl=true`; `no-verify` (postgres.js's name) is TLS without checks.
 */
export function parseDatabaseUrl(raw: string, pooled?: boolean): ParsedDatabaseUrl {
  const url = new URL(raw);
  const sslmode = url.searchParams.get('sslmode') ?? url.searchParams.get('ssl');
  for (const key of [...LIBPQ_ONLY, 'ssl']) url.searchParams.delete(key);
  const host = url.hostname;
  const local = host === 'localhost' || host === '127.0.0.1' || host === '::1' || host === '[::1]' || host === '';
  const neon = host.endsWith('.neon.tech');
  let ssl: ParsedDatabaseUrl['ssl'];
  if (sslmode === 'disable' || sslmode === 'false') ssl = false;
  else if (sslmode === 'no-verify') ssl = { rejectUnauthorized: false };
  else if (sslmode === 'allow' || sslmode === 'prefer' || (!sslmode && !neon)) ssl = 'prefer';
  else ssl = { rejectUnauthorized: true };
  const shown = ssl === false ? (local ? '' : ' (no TLS)') : ssl === 'prefer' ? (local ? '' : ' (TLS if offered)') : ' (TLS)';
  return {
    connectionString: url.toString(),
    ssl,
    description: `${host || 'localhost'}:${url.port || 5432}${url.pathname}${shown}`,
    pooled: pooled ?? host.includes('-pooler'),
  };
}

/** A query postgres.js has not settled yet; `state` is set once it is handed to a connection. */
type PendingQuery = postgres.PendingQuery<postgres.Row[]> & { state: unknown; cancel(): void };

/** One set of connections to one URL, retired as a whole. */
interface Pool {
  sql: postgres.Sql;
  url: string;
  /** Named prepared statements (not through a transaction-mode pooler). */
  prepare: boolean;
  /** Its sockets, so retiring can destroy them: postgres.js only ends them, which a dead flow never completes. */
  sockets: Set<Socket>;
}

/** A top-level statement under the request deadline. */
interface Watch {
  pool: Pool;
  query: PendingQuery;
  /** How long it may go unanswered. */
  ms: number;
  due: number;
  timer: NodeJS.Timeout;
  abandoned: boolean;
  /** Rejects when the statement is abandoned, so its caller (a commit slot) is freed at once. */
  gaveUp: Promise<never>;
  giveUp: (error: Error) => void;
}

const AUTH_FAILED = new Set(['28P01', '28000']);
const authFailure = (error: unknown) => AUTH_FAILED.has((error as { code?: string } | null)?.code ?? '');

/** The connections of one store: see the module comment for what it does about dead ones. */
class ConnectionPool {
  readonly #options: PostgresStoreOptions;
  readonly #pooled: boolean;
  readonly #idleTimeoutMs: number;
  #current: Pool;
  /** A retired pool still finishing its statements (at most one: a second retirement destroys it). */
  #retiring: Pool | undefined;
  readonly #watched = new Set<Watch>();
  /** Top-level statements and transactions in progress, and when the last one started or ended. */
  #busy = 0;
  #lastUsedAt = Date.now();
  #reloading: Promise<string> | undefined;

  constructor(options: PostgresStoreOptions, pooled: boolean) {
    this.#options = options;
    this.#pooled = pooled;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#current = this.#open(options.url);
  }

  #open(url: string): Pool {
    const parsed = parseDatabaseUrl(url, this.#pooled);
    const options = this.#options;
    const sockets = new Set<Socket>();
    let dialled = 0;
    const sql = postgres(parsed.connectionString, {
      max: options.poolMax,
      ssl: parsed.ssl,
      connect_timeout: options.connectTimeoutMs / 1000,
      idle_timeout: this.#idleTimeoutMs / 1000,
      keep_alive: KEEPALIVE_S,
      // Skips a catalogue round trip on every new connection; no custom array types are used.
      fetch_types: false,
      onnotice: () => {},
      // postgres.js writes the startup message at once; Node buffers it until the socket connects.
      socket: ({ host, port, path }: { host: string[]; port: number[]; path: string | false }) => {
        for (const s of sockets) if (s.destroyed) sockets.delete(s);
        const i = dialled++ % host.length;
        const socket = path ? connect(path) : connect({ host: host[i]!, port: port[i] ?? port[0]! });
        Object.assign(socket, { host: host[i], port: port[i] }); // named in postgres.js's error messages
        sockets.add(socket);
        return socket;
      },
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
    } as postgres.Options<Record<string, never>>);
    // Named prepared statements do not survive a transaction-mode pooler switching server
    // connections, so they are used on direct connections only.
    return { sql, url, prepare: !parsed.pooled, sockets };
  }

  /** The pool for the next statement, after retiring one that is idle too long or has a statement overdue. */
  #take(): Pool {
    const now = performance.now();
    // Overdue statements whose timers have not run yet (a process frozen, then thawed by this request).
    for (const watch of this.#watched) if (watch.due <= now) this.#stalled(watch);
    const idleFor = Date.now() - this.#lastUsedAt;
    if (this.#busy === 0 && idleFor > this.#idleTimeoutMs) this.#retire(this.#current.url, 0);
    return this.#current;
  }

  /** New statements go to a new pool; the old one may finish its statements for `drainMs`, then is closed. */
  #retire(url: string, drainMs: number): void {
    const old = this.#current;
    this.#current = this.#open(url);
    if (this.#retiring) this.#end(this.#retiring, 0);
    this.#retiring = old;
    void this.#end(old, drainMs).finally(() => {
      if (this.#retiring === old) this.#retiring = undefined;
    });
  }

  async #end(pool: Pool, drainMs: number): Promise<void> {
    await pool.sql.end({ timeout: drainMs / 1000 }).catch(() => {});
    // After end(): a connection still connecting would otherwise dial again when its socket closes.
    for (const socket of pool.sockets) socket.destroy();
  }

  /** No answer within the request deadline: the caller has its 503; the pool is presumed dead. */
  #stalled(watch: Watch): void {
    clearTimeout(watch.timer);
    this.#watched.delete(watch);
    watch.abandoned = true;
    watch.giveUp(new StoreUnavailableError(`The database did not answer within ${watch.ms} ms; its connections were replaced`));
    // Never handed to a connection: it must not run later, after its caller gave up.
    // One handed to a connection may still run on the retired pool: its outcome is unknown.
    if (watch.query.state == null) void watch.query.cancel();
    if (watch.pool === this.#current) {
      this.#retire(watch.pool.url, this.#options.statementTimeoutMs + (this.#options.requestTimeoutMs ?? 0));
    }
  }

  #watch(pool: Pool, query: PendingQuery): Watch | undefined {
    const deadline = this.#options.requestTimeoutMs;
    if (!deadline) return undefined;
    const ms = Math.round(deadline * 1.25);
    let giveUp!: (error: Error) => void;
    const gaveUp = new Promise<never>((_, reject) => (giveUp = reject));
    const watch: Watch = { pool, query, ms, due: performance.now() + ms, abandoned: false, timer: undefined as never, gaveUp, giveUp };
    watch.timer = setTimeout(() => this.#stalled(watch), ms);
    watch.timer.unref();
    this.#watched.add(watch);
    return watch;
  }

  /**
   * The URL read again after refused credentials (one read at a time); true when it changed and
   * new statements now use it.
   */
  async #reload(failed: Pool): Promise<boolean> {
    const reloadUrl = this.#options.reloadUrl;
    if (!reloadUrl) return false;
    this.#reloading ??= reloadUrl().finally(() => {
      this.#reloading = undefined;
    });
    const url = await this.#reloading;
    if (url === failed.url) return false;
    // Connections already open keep their session: the old pool may finish what it runs.
    if (this.#current.url !== url) this.#retire(url, this.#options.statementTimeoutMs);
    return true;
  }

  #explain(error: unknown): unknown {
    if (!authFailure(error)) return error;
    const code = (error as { code: string }).code;
    return new StoreUnavailableError(
      `The database refused the credentials (${code})${this.#options.reloadUrl ? ', also after reading the URL again' : ''}`,
      { cause: error },
    );
  }

  /**
   * One statement outside a transaction. `watched`: under the request deadline (the request path;
   * migrations and maintenance run as `exec` or in transactions, bounded by the statement timeout).
   */
  async statement<T>(run: (pool: Pool) => PendingQuery, watched: boolean): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const pool = this.#take();
      const query = run(pool);
      const watch = watched ? this.#watch(pool, query) : undefined;
      this.#busy++;
      this.#lastUsedAt = Date.now();
      try {
        return (await (watch ? Promise.race([query, watch.gaveUp]) : query)) as T;
      } catch (error) {
        // Never handed to a connection: the statement did not run, and may run once more.
        const unsent = query.state == null && !watch?.abandoned;
        if (attempt === 1 && unsent && (authFailure(error) ? await this.#reload(pool) : true)) continue;
        throw this.#explain(error);
      } finally {
        if (watch) {
          clearTimeout(watch.timer);
          this.#watched.delete(watch);
        }
        this.#busy--;
        this.#lastUsedAt = Date.now();
      }
    }
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, wrapTx: (tx: postgres.TransactionSql, pool: Pool) => SqlExecutor): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const pool = this.#take();
      let began = false;
      this.#busy++;
      this.#lastUsedAt = Date.now();
      try {
        return (await pool.sql.begin((tx) => {
          began = true;
          return fn(wrapTx(tx, pool));
        })) as T;
      } catch (error) {
        // Failed before its body ran (BEGIN or connecting): nothing of it was executed.
        if (attempt === 1 && !began && (authFailure(error) ? await this.#reload(pool) : true)) continue;
        throw this.#explain(error);
      } finally {
        this.#busy--;
        this.#lastUsedAt = Date.now();
      }
    }
  }

  async close(): Promise<void> {
    for (const watch of this.#watched) clearTimeout(watch.timer);
    this.#watched.clear();
    await Promise.all([this.#end(this.#current, 5000), this.#retiring ? this.#end(this.#retiring, 0) : undefined]);
  }
}

export function createPostgresExecutor(options: PostgresStoreOptions): { executor: SqlExecutor; parsed: ParsedDatabaseUrl } {
  const parsed = parseDatabaseUrl(options.url, options.pooled);
  const pool = new ConnectionPool(options, parsed.pooled);
  const inTransaction = (tx: postgres.TransactionSql, p: Pool): SqlExecutor => ({
    query: async <T>(text: string, params: unknown[] = []) =>
      (await tx.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: p.prepare })) as unknown as T[],
    exec: async (text: string) => {
      await tx.unsafe(text).simple();
    },
    transaction: (fn) => pool.transaction(fn, inTransaction),
    close: () => pool.close(),
  });
  const executor: SqlExecutor = {
    query: <T>(text: string, params: unknown[] = []) =>
      pool.statement<T[]>((p) => p.sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: p.prepare }) as PendingQuery, true),
    exec: async (text: string) => {
      await pool.statement((p) => p.sql.unsafe(text).simple() as unknown as PendingQuery, false);
    },
    transaction: (fn) => pool.transaction(fn, inTransaction),
    close: () => pool.close(),
  };
  return { executor, parsed };
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
