/**
 * Turns the app's WHATWG Response into the result shape each event source expects.
 */
import type { EventSource } from './events.ts';
import type { LightResponse } from '../web-objects.ts';

export interface LambdaResult {
  statusCode: number;
  statusDescription?: string;
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  cookies?: string[];
  body: string;
  isBase64Encoded: boolean;
}

const TEXTUAL = /^(text\/|application\/(json|javascript|xml|x-www-form-urlencoded)|[^;]*\+(json|xml)|image\/svg\+xml)/i;

const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized',
  403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
  429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
};

/**
 * ALB without multi-value headers carries one value per header name. Header names are
 * case-insensitive but the JSON keys are not, so each extra Set-Cookie goes under another casing
 * of the name, which ALB passes on as separate headers.
 */
function casings(name: string, count: number): string[] {
  const out: string[] = [];
  const letters = [...name].map((c, i) => ({ c, i })).filter(({ c }) => c.toLowerCase() !== c.toUpperCase());
  for (let n = 0; out.length < count && n < 2 ** letters.length; n++) {
    const chars = [...name.toLowerCase()];
    letters.forEach(({ i }, bit) => {
      if (n & (1 << bit)) chars[i] = chars[i]!.toUpperCase();
    });
    out.push(chars.join(''));
  }
  return out;
}

export async function toResult(response: Response, source: EventSource, multiValueHeaders: boolean, head: boolean): Promise<LambdaResult> {
  const type = response.headers.get('content-type') ?? '';
  // A lightweight response hands over its body as given: no stream to read.
  const plain = 'plainBody' in response ? (response as unknown as LightResponse).plainBody : undefined;
  let body: string;
  let textual: boolean;
  if (head) {
    body = '';
    textual = true;
  } else if (typeof plain === 'string' && TEXTUAL.test(type)) {
    body = plain;
    textual = true;
  } else {
    const bytes = plain === null ? new Uint8Array() : plain instanceof Uint8Array ? plain : new Uint8Array(await response.arrayBuffer());
    textual = bytes.length === 0 || TEXTUAL.test(type);
    body = textual ? Buffer.from(bytes).toString('utf8') : Buffer.from(bytes).toString('base64');
  }
  const cookies = response.headers.getSetCookie();
  const single: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    if (key !== 'set-cookie') single[key] = value;
  });
  const result: LambdaResult = { statusCode: response.status, body, isBase64Encoded: !textual };

  if (source === 'apigw-v2' || source === 'function-url') {
    result.headers = single;
    if (cookies.length) result.cookies = cookies;
    return result;
  }
  if (source === 'apigw-v1' || (source === 'alb' && multiValueHeaders)) {
    const multi: Record<string, string[]> = Object.fromEntries(Object.entries(single).map(([k, v]) => [k, [v]]));
    if (cookies.length) multi['set-cookie'] = cookies;
    result.multiValueHeaders = multi;
    if (source === 'alb') result.statusDescription = `${response.status} ${REASONS[response.status] ?? ''}`.trim();
    return result;
  }
  // ALB with single-value headers, and VPC Lattice.
  const headers = { ...single };
  casings('set-cookie', cookies.length).forEach((name, i) => (headers[name] = cookies[i]!));
  result.headers = headers;
  result.statusDescription = `${response.status} ${REASONS[response.status] ?? ''}`.trim();
  return result;
}
