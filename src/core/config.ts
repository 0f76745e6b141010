/**
 * Configuration from the environment, validated once at start-up. Every problem is reported with
 * the variable's name, all at once, so a misconfigured deployment fails loudly and clearly.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export interface Config {
  port: number;
  host: string;
  /** Unset: embedded PGlite in `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  apiKeys: string[];
  metricsToken: string | undefined;
  /** `['*']` allows any origin. */
  corsOrigins: string[];
  environment: string;
  logLevel: LogLevel;
  /** Extra path prefix to strip (custom domains, reverse proxies); '' when unset. */
  basePath: string;
  maxBodyBytes: number;
  dbPoolMax: number;
  dbConnectTimeoutMs: number;
  dbStatementTimeoutMs: number;
  /** Longest a request waits for the database before a 503, even when the server never answers. */
  dbRequestTimeoutMs: number;
  /**
   * The URL is a transaction-mode pooler (PgBouncer, Neon's `-pooler` host, Supabase, RDS Proxy):
   * no named prepared statements, no startup parameters. Unset: detected from a `-pooler` host.
   */
  dbPooled: boolean | undefined;
  /** A process folds stored events into the aggregates after writing this many (see sql-store.ts). */
  foldEvery: number;
  /** A server also folds this often (ms; 0: only after writes). */
  foldIntervalMs: number;
  /** Whether this process applies migrations when it starts. */
  migrateOnStart: boolean;
  /** Raw events older than this many days are purged; aggregates are kept. */
  retentionDays: number | undefined;
  /** Requests per minute per API key on authenticated routes; 0 disables. */
  rateLimitPerMinute: number;
  shutdownTimeoutMs: number;
  /** A full re-derivation runs at most this often unless forced (clients call it after every event). */
  refreshMinIntervalSeconds: number;
  /** JSON file of model prices that adds to or overrides the built-in table (contract, "Prices"). */
  pricesFile: string | undefined;
  /**
   * Distinct values per business of each of intent, response_type, model_name (and GenAI
   * operation) that get their own series on `/metrics`; later ones are summed under `other`.
   */
  metricsMaxLabelValues: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

type Env = Record<string, string | undefined>;

export interface ConfigDefaults {
  /** Lambda: 1 connection per environment; a server: a small pool. */
  dbPoolMax?: number;
  migrateOnStart?: boolean;
}

export function loadConfig(env: Env, defaults: ConfigDefaults = {}): Config {
  const problems: string[] = [];
  const read = (name: string) => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return n;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name} must be true or false, got "${raw}"`);
    return fallback;
  };

  const portName = read('PORT') !== undefined ? 'PORT' : 'SERVICE_PORT';
  const port = int(portName, 5001, 0, 65535); // 0: any free port (tests)

  const databaseUrl = read('DATABASE_URL');
  if (databaseUrl !== undefined) {
    let ok = false;
    try {
      const u = new URL(databaseUrl);
      ok = u.protocol === 'postgres:' || u.protocol === 'postgresql:';
    } catch {
      ok = false;
    }
    // Never echo the value: it usually holds a password.
    if (!ok) problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL (value not shown: it may hold a password)');
  }

  const keyList = [read('MLOPS_API_KEY'), ...(read('MLOPS_API_KEYS')?.split(',') ?? [])]
    .map((k) => k?.trim())
    .filter((k): k is string => !!k);
  for (const key of keyList) {
    if (key.length < 16) problems.push('MLOPS_API_KEY/MLOPS_API_KEYS: every key must be at least 16 characters (use e.g. `openssl rand -hex 24`)');
    if (/\s/.test(key)) problems.push('MLOPS_API_KEY/MLOPS_API_KEYS: keys must not contain spaces');
  }

  const corsRaw = read('CORS_ORIGINS') ?? '*';
  const corsOrigins = corsRaw.split(',').map((o) => o.trim()).filter(Boolean);
  for (const origin of corsOrigins) {
    if (origin === '*') continue;
    let valid = false;
    try {
      const u = new URL(origin);
      valid = (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === origin.replace(/\/$/, '');
    } catch {
      valid = false;
    }
    if (!valid) problems.push(`CORS_ORIGINS entries must be origins like https://app.example.com or *, got "${origin}"`);
  }

  const level = (read('LOG_LEVEL') ?? 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(level)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);

  let basePath = read('BASE_PATH') ?? '';
  if (basePath) {
    if (!basePath.startsWith('/') || /[?#\s]/.test(basePath)) {
      problems.push(`BASE_PATH must be a path starting with "/", like /mlops, got "${basePath}"`);
    }
    basePath = basePath.replace(/\/+$/, '');
  }

  const retention = read('RETENTION_DAYS');
  const retentionDays = retention === undefined ? undefined : int('RETENTION_DAYS', 0, 1, 36500);

  const config: Config = {
    port,
    host: read('HOST') ?? '0.0.0.0',
    databaseUrl,
    dataDir: read('DATA_DIR') ?? './data',
    apiKeys: [...new Set(keyList)],
    metricsToken: read('METRICS_TOKEN'),
    corsOrigins: corsOrigins.length ? corsOrigins : ['*'],
    environment: read('ENVIRONMENT') ?? 'development',
    logLevel: level,
    basePath,
    maxBodyBytes: int('MAX_BODY_BYTES', 1_048_576, 1024, 6_291_456),
    dbPoolMax: int('DB_POOL_MAX', defaults.dbPoolMax ?? 4, 1, 100),
    dbConnectTimeoutMs: int('DB_CONNECT_TIMEOUT_MS', 2000, 100, 60_000),
    dbStatementTimeoutMs: int('DB_STATEMENT_TIMEOUT_MS', 10_000, 100, 300_000),
    dbRequestTimeoutMs: int('DB_REQUEST_TIMEOUT_MS', 2000, 100, 300_000),
    dbPooled: read('DB_POOLED') === undefined ? undefined : bool('DB_POOLED', false),
    foldEvery: int('FOLD_EVERY_EVENTS', 200, 1, 100_000),
    foldIntervalMs: int('FOLD_INTERVAL_MS', 1000, 0, 3_600_000),
    migrateOnStart: bool('DB_MIGRATE_ON_START', defaults.migrateOnStart ?? true),
    retentionDays,
    rateLimitPerMinute: int('RATE_LIMIT_PER_MINUTE', 0, 0, 1_000_000),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 10_000, 0, 120_000),
    refreshMinIntervalSeconds: int('REFRESH_MIN_INTERVAL_SECONDS', 60, 0, 86_400),
    pricesFile: read('PRICES_FILE'),
    metricsMaxLabelValues: int('METRICS_MAX_LABEL_VALUES', 50, 1, 10_000),
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}
