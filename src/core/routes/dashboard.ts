/**
 * The dashboard: `GET /` answers it when the request prefers HTML (see routes/index.ts), and
 * `GET /assets/<name>` serves its scripts, styles and icon. The files themselves come from
 * ../dashboard.ts, imported lazily so that they load only when the page is asked for.
 */
import type { Context } from 'hono';
import { etag } from 'hono/etag';
import type { App, AppContext, AppEnv } from '../context.ts';
import { ApiError } from '../http-errors.ts';

/**
 * Everything from this origin, nothing inline: the page has no inline script or style, and its
 * charts draw on canvases. `base-uri 'self'` still allows the <base> set below.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Quality of the most specific range in `accept` matching `type` (0 when none does). */
function quality(accept: string, type: string): number {
  const [major] = type.split('/');
  let best = -1;
  let q = 0;
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.trim().toLowerCase().split(';');
    const specificity = range === type ? 2 : range === `${major}/*` ? 1 : range === '*/*' ? 0 : -1;
    if (specificity <= best) continue;
    best = specificity;
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const value = qParam ? Number(qParam.slice(2)) : 1;
    q = Number.isFinite(value) ? value : 0;
  }
  return q;
}

/**
 * True when the client prefers HTML to JSON: a browser navigating (`text/html,…,*\/*;q=0.8`).
 * curl, fetch() and API clients (`*\/*`, none, or JSON) keep the JSON endpoint index.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const html = quality(accept, 'text/html');
  return html > 0 && html > quality(accept, 'application/json');
}

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/**
 * The page, with `<base href>` set to the external prefix plus a slash: its URLs are relative
 * (`assets/…`, `health`, `analytics`), and a browser at `/default/mlops-service-lambda` (no
 * trailing slash) would otherwise resolve them one level too high.
 */
export async function dashboardPage(c: Context<AppEnv>): Promise<Response> {
  const { readAsset } = await import('../dashboard.ts');
  const page = await readAsset('dashboard.html');
  if (!page) throw new Error('dashboard.html is missing from the build');
  const html = typeof page.body === 'string' ? page.body : new TextDecoder().decode(page.body);
  const base = `<base href="${escapeAttr(c.get('prefix'))}/">`;
  return c.html(html.replace('<base href="./">', base), 200, {
    'Content-Security-Policy': DASHBOARD_CSP,
    'Cache-Control': 'no-cache',
    Vary: 'Accept',
  });
}

export function registerDashboard(app: App, _ctx: AppContext): void {
  // no-cache + ETag: browsers revalidate each load and get a 304 when nothing changed.
  app.get('/assets/:name', etag(), async (c) => {
    const name = c.req.param('name');
    const { readAsset } = await import('../dashboard.ts');
    const asset = name === 'dashboard.html' ? undefined : await readAsset(name);
    if (!asset) throw new ApiError(404, 'not_found', `No dashboard asset called ${JSON.stringify(name)}`);
    return c.body(asset.body as string, 200, { 'Content-Type': asset.type, 'Cache-Control': 'no-cache' });
  });
}
