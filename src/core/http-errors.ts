/**
 * Every error the API returns has the contract's shape `{error, message, details?}`; nothing else
 * (no HTML, no stack traces) ever reaches a client.
 */
import type { FieldProblem } from './event-schema.ts';

export type ErrorCode =
  | 'bad_request'
  | 'validation_error'
  | 'invalid_data'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'service_unavailable'
  | 'internal_error';

export interface ErrorBody {
  error: ErrorCode;
  message: string;
  details?: FieldProblem[];
  request_id?: string;
  /**
   * On a 503 for a write: `write_not_started` and `write_queue_full` mean nothing was stored;
   * `write_outcome_unknown` means the commit had started and may have landed (retry with the same
   * event_id; a repeat is stored once).
   */
  reason?: string;
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 413 | 415 | 429 | 500 | 503,
    readonly code: ErrorCode,
    message: string,
    readonly details?: FieldProblem[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The store cannot be used at all in this deployment (e.g. Lambda without DATABASE_URL). */
export class StoreNotConfiguredError extends Error {
  override readonly name = 'StoreNotConfiguredError';
}

/** Seconds a client should wait before retrying after a 503 from the database. */
export const RETRY_AFTER_SECONDS = 5;
