/**
 * Storage errors the core maps to HTTP: `StoreUnavailableError` means "try again later" (503 with
 * Retry-After); anything else is a bug or bad data and becomes a 500 without details.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The database refused a value of the request (SQLSTATE class 22, data exception: a character it
 * cannot store, a number out of a column's range…). The request's fault, so a 400, never a 500;
 * nothing of the request was stored (its statement failed as a whole).
 */
export class StoreDataError extends Error {
  override readonly name = 'StoreDataError';
  constructor(
    message: string,
    readonly sqlState: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('22');
}

/** The database refused the service's own data directory or configuration at start-up. */
export class StoreStartupError extends Error {
  override readonly name = 'StoreStartupError';
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'EPIPE', 'ECONNABORTED',
  // postgres.js
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
]);

/** SQLSTATEs meaning the server cannot serve right now, as opposed to a wrong statement. */
function isTransientSqlState(code: string): boolean {
  return (
    code.startsWith('08') || // connection exception
    code === '57P01' || code === '57P02' || code === '57P03' || // shutdown, crash, starting up
    code === '53300' || // too many connections
    code === '57014' || // statement timeout / cancelled
    code === '40001' || code === '40P01' // serialization failure, deadlock (after our retries)
  );
}

export function isUnavailableError(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  if (!error || typeof error !== 'object') return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || isTransientSqlState(code))) return true;
  const errno = (error as { errno?: unknown }).errno;
  if (typeof errno === 'string' && NETWORK_CODES.has(errno)) return true;
  const cause = (error as { cause?: unknown }).cause;
  return cause !== undefined && cause !== error && isUnavailableError(cause);
}

export function isRetryableConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40001' || code === '40P01';
}
