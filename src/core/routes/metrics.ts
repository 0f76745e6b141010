/**
 * `GET /metrics`: Prometheus text, behind `METRICS_TOKEN` (a Prometheus bearer token) or any API
 * key; open only when no key of either kind is configured.
 */
import type { App, AppContext } from '../context.ts';
import { presentedKey } from '../auth.ts';

export function registerMetrics(app: App, ctx: AppContext): void {
  app.get('/metrics', async (c) => {
    if (ctx.metricsAccess.enabled) ctx.metricsAccess.check(presentedKey((n) => c.req.header(n)));
    const store = await ctx.deps.getStore();
    const snapshot = await store.metricsSnapshot();
    // Loaded on the first scrape only: prom-client is a large share of a cold start.
    const { renderMetrics, CONTENT_TYPE } = await import('../prometheus.ts');
    const body = await renderMetrics(snapshot, ctx.deps.runtime, ctx.stats, ctx.deps.config.metricsMaxLabelValues);
    return c.body(body, 200, { 'Content-Type': CONTENT_TYPE, 'Cache-Control': 'no-store' });
  });
}
