/**
 * Turns any AWS HTTP event into one normalised request, and classifies everything else.
 *
 * Hand-written because every adapter tried (hono/aws-lambda, serverless-http,
 * @codegenie/serverless-express, @fastify/aws-lambda) breaks on real events: none strips the
 * stage and route prefix a console-made HTTP API sends (`/default/<function>/health`), AWS's own
 * samples carry GET bodies that WHATWG Request rejects, Function URL samples carry an invalid
 * host, and scheduled events are run through the app as `GET https://undefinedundefined/`.
 */
import { ROUTE_ROOTS } from '../../core/route-table.ts';
import { LightHeaders, LightRequest } from '../web-objects.ts';

export type EventSource = 'apigw-v2' | 'apigw-v1' | 'alb' | 'function-url' | 'vpc-lattice';

export interface HttpEventRequest {
  source: EventSource;
  method: string;
  /** Full path as the client sent it (with stage and prefixes). */
  rawPath: string;
  /** Path to route on (stage and gateway route prefix removed). */
  routePath: string;
  /** What was removed in front of `routePath`, for links. */
  prefix: string;
  /** Query string without `?`, percent-encoded. */
  query: string;
  headers: [string, string][];
  body: Uint8Array | undefined;
  host: string;
  protocol: 'http' | 'https';
  /** ALB: answer with multiValueHeaders when the target group enabled them. */
  multiValueHeaders: boolean;
}

export type ClassifiedEvent =
  | { type: 'http'; request: HttpEventRequest }
  | { type: 'warmup'; source: string }
  | { type: 'unknown'; description: string };

type Json = Record<string, any>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Warm-up pings: EventBridge schedules, our CDK warmer, and common plugins' payloads. */
function warmupSource(e: Json): string | undefined {
  if (e.source === 'aws.events' && e['detail-type'] === 'Scheduled Event') return 'eventbridge-schedule';
  if (e.source === 'mlops.warmer' || e.action === 'warm') return 'mlops-warmer';
  if (e.source === 'serverless-plugin-warmup') return 'serverless-plugin-warmup';
  if (e.warmer === true || e.warmup === true || e.source === 'warmer') return 'warmer';
  return undefined;
}

export function classifyEvent(event: unknown): ClassifiedEvent {
  if (!isObject(event)) return { type: 'unknown', description: `a ${Array.isArray(event) ? 'array' : typeof event}` };
  const warm = warmupSource(event);
  if (warm) return { type: 'warmup', source: warm };
  const rc = isObject(event.requestContext) ? event.requestContext : {};
  try {
    if (isObject(rc.elb)) return { type: 'http', request: fromAlb(event) };
    if (event.version === '2.0' && typeof event.rawPath === 'string') return { type: 'http', request: fromV2(event, rc) };
    if (typeof event.httpMethod === 'string' && typeof event.path === 'string') return { type: 'http', request: fromV1(event, rc) };
    if (event.version === '2.0' && typeof event.method === 'string' && typeof event.path === 'string' && 'serviceNetworkArn' in rc) {
      return { type: 'http', request: fromLattice(event) };
    }
    // VPC Lattice's event structure v1: snake_case fields, no version and no requestContext.
    if (typeof event.raw_path === 'string' && typeof event.method === 'string') return { type: 'http', request: fromLatticeV1(event) };
  } catch (error) {
    return { type: 'unknown', description: `an HTTP-like event that could not be read (${(error as Error).message})` };
  }
  const keys = Object.keys(event).slice(0, 8).join(', ');
  return { type: 'unknown', description: `an event with keys ${keys || '(none)'}` };
}

function decodeBody(body: unknown, base64: unknown): Uint8Array | undefined {
  if (typeof body !== 'string' || body === '') return undefined;
  return base64 === true ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8');
}

/** Headers from single- and/or multi-value maps; multi-value wins for the keys it has. */
function collectHeaders(single: unknown, multi: unknown): [string, string][] {
  const out: [string, string][] = [];
  const seen = new Set<string>();
  if (isObject(multi)) {
    for (const [k, values] of Object.entries(multi)) {
      if (!Array.isArray(values)) continue;
      seen.add(k.toLowerCase());
      for (const v of values) if (v != null) out.push([k, String(v)]);
    }
  }
  if (isObject(single)) {
    for (const [k, v] of Object.entries(single)) {
      if (v == null || seen.has(k.toLowerCase())) continue;
      if (Array.isArray(v)) for (const x of v) out.push([k, String(x)]);
      else out.push([k, String(v)]);
    }
  }
  return out;
}

function headerValue(headers: [string, string][], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([k]) => k.toLowerCase() === lower)?.[1];
}

/** Only a plausible host name reaches `new Request` (samples carry `<url-id>.lambda-url…`). */
function safeHost(...candidates: unknown[]): string {
  for (const c of candidates) if (typeof c === 'string' && /^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(c)) return c;
  return 'lambda.invalid';
}

function queryFromMaps(single: unknown, multi: unknown): string {
  const params: string[] = [];
  const enc = (s: string) => encodeURIComponent(s);
  if (isObject(multi)) {
    for (const [k, values] of Object.entries(multi)) if (Array.isArray(values)) for (const v of values) params.push(`${enc(k)}=${enc(String(v))}`);
  } else if (isObject(single)) {
    // VPC Lattice v2 sends each key's values as a list (a repeated key): one pair per value.
    for (const [k, v] of Object.entries(single)) {
      if (Array.isArray(v)) for (const x of v) params.push(`${enc(k)}=${enc(String(x))}`);
      else if (v != null) params.push(`${enc(k)}=${enc(String(v))}`);
    }
  }
  return params.join('&');
}

/**
 * The route's static part before its first `{parameter}` (or the whole path without one), when
 * it is a gateway prefix rather than a path of the app: `ANY /mlops-service-lambda/{proxy+}` →
 * `/mlops-service-lambda`; `GET /health` → none.
 */
const prefixCache = new Map<string, string>();

function routePrefix(route: unknown): string {
  if (typeof route !== 'string' || route.startsWith('$')) return '';
  let cached = prefixCache.get(route);
  if (cached === undefined) {
    cached = computeRoutePrefix(route);
    if (prefixCache.size < 100) prefixCache.set(route, cached);
  }
  return cached;
}

function computeRoutePrefix(route: string): string {
  const path = route.includes(' ') ? route.slice(route.indexOf(' ') + 1) : route;
  const staticPart = path.split('/{')[0]!.replace(/\/+$/, '');
  const first = staticPart.split('/')[1] ?? '';
  return staticPart && !ROUTE_ROOTS.has(first) ? staticPart : '';
}

function stripPrefix(path: string, prefix: string): [string, string] {
  if (prefix && (path === prefix || path.startsWith(`${prefix}/`))) return [path.slice(prefix.length) || '/', prefix];
  return [path, ''];
}

function fromV2(e: Json, rc: Json): HttpEventRequest {
  const headers = collectHeaders(e.headers, undefined);
  if (Array.isArray(e.cookies) && e.cookies.length && !headerValue(headers, 'cookie')) headers.push(['cookie', e.cookies.join('; ')]);
  const rawPath: string = e.rawPath || '/';
  const stage = typeof rc.stage === 'string' && rc.stage !== '$default' ? `/${rc.stage}` : '';
  const [afterStage, stagePrefix] = stripPrefix(rawPath, stage);
  const [routePath, routePrefixUsed] = stripPrefix(afterStage, routePrefix(e.routeKey ?? rc.routeKey));
  const isFunctionUrl = typeof rc.domainName === 'string' && rc.domainName.includes('.lambda-url.');
  return {
    source: isFunctionUrl || (!e.routeKey && !rc.routeKey) ? 'function-url' : 'apigw-v2',
    method: String(rc.http?.method ?? 'GET').toUpperCase(),
    rawPath,
    routePath,
    prefix: stagePrefix + routePrefixUsed,
    query: typeof e.rawQueryString === 'string' ? e.rawQueryString : '',
    headers,
    body: decodeBody(e.body, e.isBase64Encoded),
    host: safeHost(headerValue(headers, 'host'), rc.domainName),
    protocol: 'https',
    multiValueHeaders: false,
  };
}

function fromV1(e: Json, rc: Json): HttpEventRequest {
  const headers = collectHeaders(e.headers, e.multiValueHeaders);
  const path: string = e.path || '/';
  // `path` carries no stage; `requestContext.path` (what the client sent) does, when present.
  const [routePath, routePrefixUsed] = stripPrefix(path, routePrefix(e.resource ?? rc.resourcePath));
  const clientPath = typeof rc.path === 'string' && rc.path.endsWith(path) ? rc.path : path;
  const stageAndBase = clientPath.slice(0, clientPath.length - path.length);
  return {
    source: 'apigw-v1',
    method: String(e.httpMethod).toUpperCase(),
    rawPath: clientPath,
    routePath,
    prefix: stageAndBase + routePrefixUsed,
    query: queryFromMaps(e.queryStringParameters, e.multiValueQueryStringParameters),
    headers,
    body: decodeBody(e.body, e.isBase64Encoded),
    host: safeHost(headerValue(headers, 'host'), rc.domainName),
    protocol: 'https',
    multiValueHeaders: true,
  };
}

function fromAlb(e: Json): HttpEventRequest {
  const multi = isObject(e.multiValueHeaders);
  const headers = collectHeaders(e.headers, e.multiValueHeaders);
  // ALB passes query values as the client encoded them: keep them verbatim.
  const pairs: string[] = [];
  const source = multi ? e.multiValueQueryStringParameters : e.queryStringParameters;
  if (isObject(source)) {
    for (const [k, v] of Object.entries(source)) for (const x of Array.isArray(v) ? v : [v]) pairs.push(`${k}=${x}`);
  }
  const proto = headerValue(headers, 'x-forwarded-proto') === 'http' ? 'http' : 'https';
  return {
    source: 'alb',
    method: String(e.httpMethod).toUpperCase(),
    rawPath: e.path || '/',
    routePath: e.path || '/',
    prefix: '',
    query: pairs.join('&'),
    headers,
    body: decodeBody(e.body, e.isBase64Encoded),
    host: safeHost(headerValue(headers, 'host')),
    protocol: proto,
    multiValueHeaders: multi,
  };
}

/** Both VPC Lattice structures; the path may carry the query string when no map is given. */
function latticeRequest(path: string, method: unknown, headerMap: unknown, queryMap: unknown, body: unknown, base64: unknown): HttpEventRequest {
  const headers = collectHeaders(headerMap, undefined);
  const [pathOnly, inPath = ''] = path.split(/\?(.*)/s);
  const query = queryFromMaps(queryMap, undefined) || inPath;
  return {
    source: 'vpc-lattice',
    method: String(method).toUpperCase(),
    rawPath: pathOnly || '/',
    routePath: pathOnly || '/',
    prefix: '',
    query,
    headers,
    body: decodeBody(body, base64),
    host: safeHost(headerValue(headers, 'host')),
    protocol: 'https',
    multiValueHeaders: false,
  };
}

const fromLattice = (e: Json) => latticeRequest(e.path, e.method, e.headers, e.queryStringParameters, e.body, e.isBase64Encoded);
const fromLatticeV1 = (e: Json) => latticeRequest(e.raw_path, e.method, e.headers, e.query_string_parameters, e.body, e.is_base64_encoded);

/**
 * Builds the request the app takes (a lightweight one, see web-objects.ts). GET/HEAD bodies (AWS
 * samples have them) are dropped; Content-Length is set from the decoded body, so size limits
 * are checked without reading a stream.
 */
export function toRequest(r: HttpEventRequest): { request: Request; skippedHeaders: string[] } {
  const headers = new LightHeaders();
  const skippedHeaders: string[] = [];
  for (const [k, v] of r.headers) {
    // A header the real Headers would refuse (a line break or NUL) is dropped here too.
    if (v.includes('\n') || v.includes('\r') || v.includes('\0') || k === '') skippedHeaders.push(k);
    else headers.append(k, v);
  }
  const withBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
  if (withBody) headers.set('content-length', String(r.body!.byteLength));
  else headers.delete('content-length');
  const path = r.rawPath.startsWith('/') ? r.rawPath : `/${r.rawPath}`;
  const url = `${r.protocol}://${r.host}${path}${r.query ? `?${r.query}` : ''}`;
  const request = new LightRequest(url, r.method, headers, withBody ? r.body! : null);
  return { request: request as unknown as Request, skippedHeaders };
}
