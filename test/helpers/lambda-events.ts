/** The recorded AWS sample events (test/fixtures/lambda-events, origins in its README), and small edits of them. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/lambda-events/', import.meta.url));

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES_DIR).filter((f) => f.endsWith('.json')).sort();
}

export function fixture(name: string): any {
  return JSON.parse(readFileSync(`${FIXTURES_DIR}${name}`, 'utf8'));
}

/** The console-shaped HTTP API v2 event (named stage `default`, route prefix) for any request. */
export function v2Event(method: string, path: string, opts: { body?: string; headers?: Record<string, string>; query?: string } = {}) {
  const e = fixture('synthetic-v2-named-stage-get-health.json');
  const rawPath = `/default/mlops-service-lambda${path === '/' ? '' : path}`;
  e.rawPath = rawPath;
  e.rawQueryString = opts.query ?? '';
  e.requestContext.http.method = method;
  e.requestContext.http.path = rawPath;
  e.requestContext.requestId = `req-${Math.random().toString(36).slice(2)}`;
  e.headers = { ...e.headers, ...(opts.headers ?? {}) };
  delete e.headers['content-length'];
  e.pathParameters = { proxy: path.slice(1) };
  if (opts.body !== undefined) {
    e.body = opts.body;
    if (!Object.keys(e.headers).some((k) => k.toLowerCase() === 'content-type')) e.headers['content-type'] = 'application/json';
  }
  e.isBase64Encoded = false;
  return e;
}
