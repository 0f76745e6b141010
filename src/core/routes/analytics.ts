/** `GET /analytics`, `GET /analytics/{business_id}` and `POST /refresh-metrics`. */
import type { MiddlewareHandler } from 'hono';
import { businessAnalytics, businessSummary } from '../analytics.ts';
import type { App, AppContext } from '../context.ts';
import { ApiError } from '../http-errors.ts';
import { textProblem } from '../text.ts';

const MAX_DAYS = 366;

function parseDays(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 30;
  const days = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new ApiError(400, 'validation_error', `days must be an integer from 1 to ${MAX_DAYS}, got "${raw}"`, [
      { field: 'days', message: `must be an integer from 1 to ${MAX_DAYS}` },
    ]);
  }
  return days;
}

export function registerAnalytics(app: App, ctx: AppContext, auth: MiddlewareHandler): void {
  app.get('/analytics', auth, async (c) => {
    const store = await ctx.deps.getStore();
    const businesses = (await store.businessTotals()).map(businessSummary);
    return c.json({ businesses, count: businesses.length, timestamp: ctx.now().toISOString() });
  });

  app.get('/analytics/:business_id', auth, async (c) => {
    const businessId = c.req.param('business_id');
    const problem = businessId.length > 255 ? 'must be at most 255 characters' : textProblem(businessId);
    if (problem) {
      throw new ApiError(400, 'validation_error', `business_id ${problem}`, [{ field: 'business_id', message: problem }]);
    }
    const days = parseDays(c.req.query('days'));
    const store = await ctx.deps.getStore();
    return c.json(businessAnalytics(await store.analyticsWindow(businessId, days), ctx.now()));
  });

  app.post('/refresh-metrics', auth, async (c) => {
    const force = ['1', 'true'].includes(c.req.query('force') ?? '');
    const store = await ctx.deps.getStore();
    const result = await store.refreshAggregates({ force, minIntervalMs: ctx.deps.config.refreshMinIntervalSeconds * 1000 });
    if (result.status === 'skipped') {
      return c.json({
        status: 'skipped',
        message: result.reason,
        last_refresh_at: result.last_refresh_at,
        timestamp: ctx.now().toISOString(),
      });
    }
    const drifted = result.report.drift.length;
    return c.json({
      status: 'success',
      message: `Re-derived all aggregates from ${result.report.events_scanned} stored events` +
        (drifted ? `; repaired drift for ${drifted} business(es)` : '; no drift found'),
      report: result.report,
      timestamp: ctx.now().toISOString(),
    });
  });
}
