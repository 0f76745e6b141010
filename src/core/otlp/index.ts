/**
 * OTLP trace ingest, loaded by the `/v1/traces` route with `await import()` on its first request,
 * so a cold start that serves anything else never loads it.
 */
export { decodedBody, requestEncoding } from './body.ts';
export { decodeExportRequest } from './decode.ts';
export { exportResponse, rejectionMessage } from './response.ts';
export { spansToEvents, type MappedCall } from './spans-to-events.ts';
