/**
 * The body of an OTLP/HTTP export: which encoding it declares (415 for anything else), and its
 * bytes, gunzipped when `Content-Encoding: gzip`, with the body limit applied to the
 * decompressed size too (a small gzip bomb is a 413, never a process out of memory).
 *
 * Gzip goes through the WHATWG `DecompressionStream`: standard on every runtime the core targets
 * (Node ≥ 18, Lambda, Deno, Bun, Workers), no bytes added to the Lambda bundle, touched only when
 * a gzip body arrives (so no cold start pays for it), and it inflates chunk by chunk as they are
 * read, so reading stops as soon as the limit is passed.
 */
import { ApiError } from '../http-errors.ts';

export type OtlpEncoding = 'protobuf' | 'json';

export const CONTENT_TYPES: Readonly<Record<OtlpEncoding, string>> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

/** The encoding a Content-Type names; 415 for any other (OTLP/HTTP defines only these two). */
export function requestEncoding(contentType: string | undefined): OtlpEncoding {
  const mime = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mime === 'application/x-protobuf' || mime === 'application/protobuf') return 'protobuf';
  if (mime === 'application/json') return 'json';
  throw new ApiError(
    415,
    'unsupported_media_type',
    `Content-Type must be application/x-protobuf or application/json (OTLP/HTTP), got ${mime || 'none'}`,
  );
}

/** The body as sent, decompressed when it says it is gzip; 415 for another content coding. */
export async function decodedBody(raw: Uint8Array, contentEncoding: string | undefined, maxBytes: number): Promise<Uint8Array> {
  const coding = (contentEncoding ?? '').trim().toLowerCase();
  if (coding === '' || coding === 'identity') return raw;
  if (coding === 'gzip' || coding === 'x-gzip') return gunzip(raw, maxBytes);
  throw new ApiError(415, 'unsupported_media_type', `Content-Encoding must be gzip or none, got ${coding}`);
}

export async function gunzip(compressed: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const stream = new DecompressionStream('gzip');
  const writer = stream.writable.getWriter();
  // Not awaited: the write completes only as the output is read. A corrupt body fails the reader.
  writer
    .write(compressed as Uint8Array<ArrayBuffer>)
    .then(() => writer.close())
    .catch(() => {});
  const reader = stream.readable.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await reader.read();
    } catch {
      throw new ApiError(400, 'bad_request', 'Content-Encoding is gzip but the body is not valid gzip data');
    }
    if (next.done) break;
    size += next.value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new ApiError(413, 'payload_too_large', `Request body exceeds the limit of ${maxBytes} bytes once decompressed`);
    }
    chunks.push(next.value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
