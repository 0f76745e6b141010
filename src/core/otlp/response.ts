/**
 * The `ExportTraceServiceResponse` of a successful export, in the request's encoding. Empty when
 * every model-call span was stored; otherwise `partial_success` counts the spans that were not and
 * says why (OTLP/HTTP: the client must not retry them, the reasons are for its logs).
 */
import { CONTENT_TYPES, type OtlpEncoding } from './body.ts';
import { encodeExportResponse } from './trace-proto.ts';

export interface Rejections {
  rejected: number;
  /** Reason → number of spans. */
  reasons: ReadonlyMap<string, number>;
}

const MAX_REASONS = 5;

export function rejectionMessage({ rejected, reasons }: Rejections): string {
  const listed = [...reasons].slice(0, MAX_REASONS).map(([reason, n]) => `${reason} (${n} span${n === 1 ? '' : 's'})`);
  const more = reasons.size > MAX_REASONS ? `; and ${reasons.size - MAX_REASONS} more reasons` : '';
  return `${rejected} model-call span${rejected === 1 ? ' was' : 's were'} not stored: ${listed.join('; ')}${more}`;
}

export function exportResponse(encoding: OtlpEncoding, rejections: Rejections): { body: Uint8Array | string; contentType: string } {
  const partial = rejections.rejected > 0 ? { rejectedSpans: rejections.rejected, errorMessage: rejectionMessage(rejections) } : undefined;
  if (encoding === 'json') {
    // OTLP/JSON writes int64 as a decimal string.
    const body = partial ? { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } } : {};
    return { body: JSON.stringify(body), contentType: CONTENT_TYPES.json };
  }
  return { body: encodeExportResponse(partial), contentType: CONTENT_TYPES.protobuf };
}
