/** `/health` (liveness, no database) and `/health/detailed` (readiness with a real check). */
import type { Context } from 'hono';
import { presentedKey } from '../auth.ts';
import type { App, AppContext, AppEnv } from '../context.ts';

const DB_CHECK_TIMEOUT_MS = 2000;

export function registerHealth(app: App, ctx: AppContext): void {
  const { deps, stats } = ctx;
  const security = () => ({
    api_key_required: ctx.apiKeys.enabled,
    // True when /metrics needs a credential (the metrics token or an API key).
    metrics_token_required: ctx.metricsAccess.enabled,
  });
  /**
   * Where the database lives and what its driver said are for operators: shown to a holder of an
   * API key or the metrics token, or to anyone when the service has no keys at all. A probe
   * without one still gets the status code and the up/down answer it needs.
   */
  const mayReadDetails = (c: Context<AppEnv>): boolean =>
    !ctx.metricsAccess.enabled || ctx.metricsAccess.accepts(presentedKey((n) => c.req.header(n)));

  app.get('/health', (c) => {
    const info = deps.storeInfo;
    return c.json({
      status: 'healthy',
      service: 'mlops-service-prometheus',
      timestamp: ctx.now().toISOString(),
      monitoring: 'prometheus',
      metrics_endpoint: '/metrics',
      environment: deps.config.environment,
      security: security(),
      runtime: {
        name: deps.runtime.name,
        instance_id: deps.runtime.instanceId,
        ...(c.env?.coldStart !== undefined ? { cold_start: c.env.coldStart } : {}),
      },
      version: deps.runtime.version,
      database: info.kind === 'none' ? { configured: false, message: info.problem } : { configured: true, kind: info.kind },
    });
  });

  app.get('/health/detailed', async (c) => {
    const info = deps.storeInfo;
    let database: Record<string, unknown>;
    let healthy = false;
    const details = mayReadDetails(c);
    const hidden = { details: 'send an API key or the metrics token to see where the database is and what its driver said' };
    if (info.kind === 'none') {
      database = { status: 'not_configured', ...(details ? { message: info.problem } : hidden) };
    } else {
      try {
        const store = await deps.getStore();
        const latency = await store.ping(DB_CHECK_TIMEOUT_MS);
        database = { status: 'up', kind: info.kind, latency_ms: Math.round(latency * 100) / 100 };
        healthy = true;
        if (details) {
          database.location = info.description;
          if (store.writeStats) database.writes = store.writeStats;
        } else Object.assign(database, hidden);
      } catch (error) {
        database = { status: 'down', kind: info.kind, ...(details ? { location: info.description, error: (error as Error).message } : hidden) };
      }
    }
    const memory = process.memoryUsage();
    const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;
    return c.json(
      {
        status: healthy ? 'healthy' : 'degraded',
        service: 'mlops-service-prometheus',
        timestamp: ctx.now().toISOString(),
        version: deps.runtime.version,
        environment: deps.config.environment,
        uptime_seconds: Math.round((Date.now() - deps.runtime.startedAt) / 100) / 10,
        memory: { rss_mb: mb(memory.rss), heap_used_mb: mb(memory.heapUsed), heap_total_mb: mb(memory.heapTotal) },
        requests: {
          total: stats.requests,
          failed: stats.failures,
          rejected: stats.rejected,
          error_rate: Math.round(stats.errorRate * 10000) / 10000,
          scope: 'this instance',
        },
        runtime: {
          name: deps.runtime.name,
          instance_id: deps.runtime.instanceId,
          started_at: new Date(deps.runtime.startedAt).toISOString(),
          node_version: process.version,
          cold_start: c.env?.coldStart ?? false,
          cold_starts: stats.coldStarts,
          warmups: stats.warmups,
        },
        security: security(),
        database,
      },
      healthy ? 200 : 503,
    );
  });
}
