/**
 * An OTLP `ExportTraceServiceRequest` (protobuf or OTLP/JSON) → a flat list of spans, each with
 * its resource's attributes: the one shape the mapping reads, whichever encoding came in.
 *
 * OTLP/JSON is protobuf's JSON mapping with OTLP's changes: lowerCamelCase keys, trace and span ids
 * in hex, enums as integers, 64-bit integers as decimal strings (numbers accepted too). The
 * protobuf decoder (trace-proto.ts) gives the same keys with ids as bytes and times as bigints, so
 * one walker reads both. Anything undecodable is a 400 that says where, never echoing body content.
 */
import { ApiError } from '../http-errors.ts';
import type { OtlpEncoding } from './body.ts';
import { decodeTraceRequest } from './trace-proto.ts';

export type AttributeValue = string | number | boolean | null | Uint8Array | AttributeValue[] | { [key: string]: AttributeValue };
export type Attributes = ReadonlyMap<string, AttributeValue>;

export interface TraceSpan {
  /** Lowercase hex ('' when absent). */
  traceId: string;
  spanId: string;
  name: string;
  startTimeUnixNano: bigint | undefined;
  endTimeUnixNano: bigint | undefined;
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  attributes: Attributes;
  /** The attributes of the span's resource (shared by the spans of one ResourceSpans). */
  resource: Attributes;
}

type Loose = Record<string, unknown>;

const invalid = (where: string) => new ApiError(400, 'bad_request', `Not an OTLP ExportTraceServiceRequest: ${where}`);

export function decodeExportRequest(bytes: Uint8Array, encoding: OtlpEncoding): TraceSpan[] {
  let message: unknown;
  if (encoding === 'json') {
    try {
      message = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      // The parser's message quotes the body, which may hold prompts: not repeated here.
      throw new ApiError(400, 'bad_request', 'Body is not valid JSON (OTLP/JSON expected)');
    }
  } else {
    try {
      message = decodeTraceRequest(bytes);
    } catch (error) {
      throw new ApiError(400, 'bad_request', `Body is not a valid OTLP/protobuf ExportTraceServiceRequest (${(error as Error).message})`);
    }
  }
  return flattenSpans(message);
}

/** Walks resourceSpans → scopeSpans → spans of a decoded request, in either encoding's shape. */
export function flattenSpans(message: unknown): TraceSpan[] {
  const spans: TraceSpan[] = [];
  for (const [r, resourceSpans] of list(object(message, 'body'), 'resourceSpans', 'resourceSpans').entries()) {
    const rs = object(resourceSpans, `resourceSpans[${r}]`);
    const resource = attributes(object(rs.resource, `resourceSpans[${r}].resource`), `resourceSpans[${r}].resource`);
    for (const [s, scopeSpans] of list(rs, 'scopeSpans', `resourceSpans[${r}].scopeSpans`).entries()) {
      const where = `resourceSpans[${r}].scopeSpans[${s}]`;
      for (const [i, value] of list(object(scopeSpans, where), 'spans', `${where}.spans`).entries()) {
        spans.push(span(object(value, `${where}.spans[${i}]`), resource, `${where}.spans[${i}]`));
      }
    }
  }
  return spans;
}

function span(s: Loose, resource: Attributes, where: string): TraceSpan {
  const status = object(s.status, `${where}.status`);
  return {
    traceId: id(s.traceId),
    spanId: id(s.spanId),
    name: typeof s.name === 'string' ? s.name : '',
    startTimeUnixNano: nanos(s.startTimeUnixNano),
    endTimeUnixNano: nanos(s.endTimeUnixNano),
    statusCode: statusCode(status.code),
    attributes: attributes(s, where),
    resource,
  };
}

function object(value: unknown, where: string): Loose {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) throw invalid(`${where} must be an object`);
  return value as Loose;
}

function list(parent: Loose, key: string, where: string): unknown[] {
  const value = parent[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(`${where} must be an array`);
  return value;
}

function attributes(parent: Loose, where: string): Map<string, AttributeValue> {
  const out = new Map<string, AttributeValue>();
  for (const kv of list(parent, 'attributes', `${where}.attributes`)) {
    const { key, value } = object(kv, `${where}.attributes[]`);
    if (typeof key === 'string') out.set(key, anyValue(value, 0));
  }
  return out;
}

/** Attribute values are flat in practice (arrays of scalars); deeper nesting is refused, not recursed. */
const MAX_DEPTH = 16;

/** AnyValue → a plain value; an empty AnyValue is null. */
function anyValue(value: unknown, depth: number): AttributeValue {
  if (typeof value !== 'object' || value === null) return null;
  if (depth > MAX_DEPTH) throw invalid(`attribute values nest deeper than ${MAX_DEPTH} levels`);
  const v = value as Loose;
  const has = (key: string) => Object.hasOwn(v, key) && v[key] !== null && v[key] !== undefined;
  if (has('stringValue')) return String(v.stringValue);
  if (has('boolValue')) return v.boolValue === true;
  if (has('intValue')) return integer(v.intValue);
  if (has('doubleValue')) return typeof v.doubleValue === 'number' ? v.doubleValue : Number(v.doubleValue);
  if (has('arrayValue')) {
    const values = (v.arrayValue as Loose).values;
    return Array.isArray(values) ? values.map((x: unknown) => anyValue(x, depth + 1)) : [];
  }
  if (has('kvlistValue')) {
    const values = (v.kvlistValue as Loose).values;
    const entries = Array.isArray(values) ? (values as Loose[]) : [];
    return Object.fromEntries(entries.filter((e) => typeof e?.key === 'string').map((e) => [e.key as string, anyValue(e.value, depth + 1)]));
  }
  // Bytes (protobuf) or base64 (OTLP/JSON).
  if (has('bytesValue')) return v.bytesValue instanceof Uint8Array ? v.bytesValue : typeof v.bytesValue === 'string' ? base64(v.bytesValue) : null;
  return null;
}

/** An int64: a number from protobuf; a decimal string (or a number) in OTLP/JSON. */
function integer(value: unknown): number | null {
  if (typeof value === 'number') return value;
  return typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : null;
}

/** A fixed64 time: a bigint from protobuf; a decimal string (exact) or a number in OTLP/JSON. */
function nanos(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? BigInt(value) : undefined;
  return typeof value === 'string' && /^\d+$/.test(value) ? BigInt(value) : undefined;
}

const STATUS_CODES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

function statusCode(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return STATUS_CODES[value] ?? (/^\d+$/.test(value) ? Number(value) : 0);
  return 0;
}

/** Ids: bytes (protobuf) or hex (OTLP/JSON); base64, which some JSON exporters send, is accepted. */
function id(value: unknown): string {
  if (value instanceof Uint8Array) return hex(value);
  if (typeof value !== 'string' || value === '') return '';
  if (/^(?:[0-9a-fA-F]{2})+$/.test(value)) return value.toLowerCase();
  const bytes = base64(value);
  return bytes ? hex(bytes) : '';
}

function base64(value: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}
