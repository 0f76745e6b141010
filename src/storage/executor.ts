/** The little a store needs from a driver; implemented for postgres.js and for PGlite. */
export interface SqlExecutor {
  /** One parameterised statement; rows as plain objects. */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
  /** Runs `fn` in one transaction on one connection; commits when it resolves. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
