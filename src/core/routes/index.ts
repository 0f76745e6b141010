/** `GET /` (endpoint index; the dashboard for browsers) and `GET /openapi.json`. */
import type { App, AppContext } from '../context.ts';
import { ROUTES } from '../route-table.ts';
import { dashboardPage, prefersHtml } from './dashboard.ts';

export function registerIndex(app: App, ctx: AppContext): void {
  app.get('/', (c) => {
    // Same URL, two answers (the contract's): the dashboard for a browser, the index for the rest.
    if (prefersHtml(c.req.header('accept'))) return dashboardPage(c);
    c.header('Vary', 'Accept');
    const prefix = c.get('prefix');
    const endpoints = Object.fromEntries(ROUTES.map((r) => [r.name, `${r.method} ${prefix}${r.path}`]));
    return c.json({
      message: 'MLOps metrics service for AI chat products. Send events to POST /track; scrape GET /metrics.',
      service: 'mlops-service-prometheus',
      version: ctx.deps.runtime.version,
      runtime: ctx.deps.runtime.name,
      base_path: prefix || '/',
      endpoints,
      documentation: `${prefix}/openapi.json`,
    });
  });

  let cached: string | undefined;
  app.get('/openapi.json', async (c) => {
    // Built on first request from the route table and the validating schemas.
    if (!cached) cached = JSON.stringify((await import('../openapi.ts')).buildOpenApi(ctx.deps.runtime.version));
    const prefix = c.get('prefix');
    const doc = prefix ? cached.replace('"servers":[{"url":"/"}]', `"servers":[{"url":${JSON.stringify(prefix)}}]`) : cached;
    return c.body(doc, 200, { 'Content-Type': 'application/json; charset=utf-8' });
  });
}
