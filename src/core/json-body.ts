/**
 * Reads a JSON request body with the contract's answers: 415 for a non-JSON content type, 400
 * for malformed JSON or an empty body. A missing Content-Type is accepted when the body parses:
 * some gateways and clients drop it (see the base64 Lambda fixture without one).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppEnv } from './context.ts';
import { ApiError } from './http-errors.ts';

export const EMPTY = Symbol('empty body');

export function payloadTooLarge(maxBytes: number): ApiError {
  // The rest of the body is never read, so the connection cannot carry another request.
  return new ApiError(413, 'payload_too_large', `Request body exceeds the limit of ${maxBytes} bytes`, undefined, { Connection: 'close' });
}

/**
 * The request size limit of a write route. A declared length (always, on Lambda) is checked
 * without touching the body stream; a chunked body is counted as it streams in, by Hono's
 * bodyLimit, or by the adapter's own reader when the route reads through it (`readBody`, on the
 * Node server: `adapterCounts`).
 */
export function requestSizeLimit(maxBytes: number, options: { adapterCounts: boolean }): MiddlewareHandler<AppEnv> {
  const tooLarge = () => {
    throw payloadTooLarge(maxBytes);
  };
  const streaming = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async (c, next) => {
    const declared = c.req.header('content-length');
    if (declared === undefined || c.req.header('transfer-encoding')) {
      if (options.adapterCounts && c.env?.readBody) return next();
      return streaming(c, next);
    }
    if (Number(declared) > maxBytes) tooLarge();
    await next();
  };
}

export async function readJsonBody(c: Context<AppEnv>, maxBytes: number): Promise<unknown> {
  const type = c.req.header('content-type');
  if (type !== undefined && type.trim() !== '') {
    const mime = type.split(';')[0]!.trim().toLowerCase();
    if (mime !== 'application/json' && !mime.endsWith('+json')) {
      throw new ApiError(415, 'unsupported_media_type', `Content-Type must be application/json, got ${mime}`);
    }
  }
  const text = c.env?.readBody ? await c.env.readBody(maxBytes) : await c.req.text();
  if (text.trim() === '') return EMPTY;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ApiError(400, 'bad_request', `Malformed JSON: ${(error as Error).message}`);
  }
}

/** An object body with at least one field; the contract's wording for the empty cases. */
export function requireObject(body: unknown): Record<string, unknown> {
  if (body === EMPTY || body === null || (isPlainObject(body) && Object.keys(body).length === 0)) {
    throw new ApiError(400, 'bad_request', 'No metrics data provided');
  }
  if (!isPlainObject(body)) {
    throw new ApiError(400, 'bad_request', `Request body must be a JSON object, got ${Array.isArray(body) ? 'an array' : typeof body}`);
  }
  return body;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
