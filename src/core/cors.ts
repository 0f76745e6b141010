/**
 * CORS for the configured origins. Hand-written instead of hono/cors because that middleware
 * writes headers onto `c.res` before the route runs, which makes Hono copy every response
 * (through its body stream) once the route answers; here headers are added after the route.
 */
import type { MiddlewareHandler } from 'hono';

export interface CorsOptions {
  /** `['*']` for any origin, else exact origins. */
  origins: readonly string[];
  allowMethods: readonly string[];
  allowHeaders: readonly string[];
  exposeHeaders: readonly string[];
  maxAgeSeconds: number;
}

export function corsMiddleware(options: CorsOptions): MiddlewareHandler {
  const any = options.origins.includes('*');
  const allowed = new Set(options.origins);
  const allowOrigin = (origin: string | undefined) => (any ? '*' : origin && allowed.has(origin) ? origin : undefined);
  const expose = options.exposeHeaders.join(', ');

  return async (c, next) => {
    const origin = c.req.header('origin');
    const value = allowOrigin(origin);
    if (c.req.method === 'OPTIONS' && origin !== undefined && c.req.header('access-control-request-method')) {
      const headers: Record<string, string> = { Vary: 'Origin' };
      if (value) {
        headers['Access-Control-Allow-Origin'] = value;
        headers['Access-Control-Allow-Methods'] = options.allowMethods.join(', ');
        headers['Access-Control-Allow-Headers'] = options.allowHeaders.join(', ');
        headers['Access-Control-Max-Age'] = String(options.maxAgeSeconds);
      }
      return c.body(null, 204, headers);
    }
    await next();
    // Only browsers send Origin, and only they read these headers.
    if (!value || origin === undefined) return;
    c.res.headers.set('Access-Control-Allow-Origin', value);
    c.res.headers.set('Access-Control-Expose-Headers', expose);
    if (!any) c.res.headers.append('Vary', 'Origin');
  };
}
