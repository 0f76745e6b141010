/**
 * The service as a Hono app, free of any runtime: the Node server and the Lambda handler both
 * call `app.fetch(request, env)`. Adapters supply the store, the runtime facts and, per request,
 * the routing path when a gateway prefixed it.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { getPath } from 'hono/utils/url';
import { StoreDataError, StoreUnavailableError } from '../storage/errors.ts';
import { createKeyRing, presentedKey } from './auth.ts';
import { corsMiddleware } from './cors.ts';
import type { AppContext, AppDeps, AppEnv } from './context.ts';
import { ApiError, type ErrorBody, RETRY_AFTER_SECONDS, StoreNotConfiguredError } from './http-errors.ts';
import { honoPath, ROUTES } from './route-table.ts';
import { registerAnalytics } from './routes/analytics.ts';
import { registerDashboard } from './routes/dashboard.ts';
import { registerHealth } from './routes/health.ts';
import { registerIndex } from './routes/index.ts';
import { registerMetrics } from './routes/metrics.ts';
import { registerOtlp } from './routes/otlp.ts';
import { registerTrack } from './routes/track.ts';
import { InstanceStats } from './runtime-info.ts';
import { createRateLimiter } from './rate-limit.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Strips `basePath` when present and a trailing slash, so `/mlops/health/` routes as `/health`. */
function routingPath(path: string, basePath: string): { path: string; prefix: string } {
  let prefix = '';
  if (basePath && (path === basePath || path.startsWith(`${basePath}/`))) {
    prefix = basePath;
    path = path.slice(basePath.length) || '/';
  }
  if (path.length > 1 && path.endsWith('/')) path = path.replace(/\/+$/, '') || '/';
  return { path, prefix };
}

export function createApp(deps: AppDeps) {
  const { config } = deps;
  const ctx: AppContext = {
    deps,
    stats: deps.stats ?? new InstanceStats(),
    apiKeys: createKeyRing(config.apiKeys),
    // Fail closed: with API keys set, the business totals on /metrics are no more public than /analytics.
    metricsAccess: createKeyRing([...(config.metricsToken ? [config.metricsToken] : []), ...config.apiKeys], 'Metrics token or API key'),
    now: deps.now ?? (() => new Date()),
  };

  const app = new Hono<AppEnv>({
    getPath: (request, options) => {
      const env = (options?.env ?? {}) as AppEnv['Bindings'];
      return routingPath(env.routePath ?? getPath(request), config.basePath).path;
    },
  });

  // Request id, access log, instance counters and the runtime headers, around everything else.
  app.use(async (c, next) => {
    const started = performance.now();
    const incoming = c.req.header('x-request-id');
    const requestId = c.env?.requestId ?? (incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID());
    // Hono already routed on the stripped path; the raw path is parsed again only when a
    // BASE_PATH may have been stripped from it (for the links the answer gives).
    const basePrefix = config.basePath ? routingPath(c.env?.routePath ?? getPath(c.req.raw), config.basePath).prefix : '';
    c.set('requestId', requestId);
    c.set('prefix', `${c.env?.prefix ?? ''}${basePrefix}`);
    await next();
    const durationMs = performance.now() - started;
    c.res.headers.set('X-Request-Id', requestId);
    c.res.headers.set('X-Instance-Id', deps.runtime.instanceId);
    c.res.headers.set('X-Cold-Start', String(c.env?.coldStart ?? false));
    c.res.headers.set('Server-Timing', `app;dur=${durationMs.toFixed(2)}`);
    ctx.stats.record(c.res.status);
    const fields = {
      request_id: requestId,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms: Math.round(durationMs * 100) / 100,
      ...(c.env?.coldStart !== undefined ? { cold_start: c.env.coldStart } : {}),
    };
    // Health probes every few seconds would drown the log at info.
    if (c.req.path.startsWith('/health')) deps.logger.debug('request', fields);
    else deps.logger.info('request', fields);
  });

  app.use(
    // What matters for a JSON API and its dashboard; the legacy ones (X-XSS-Protection,
    // X-Download-Options, X-DNS-Prefetch-Control) protect nothing here and cost bytes on every answer.
    secureHeaders({
      crossOriginResourcePolicy: false,
      crossOriginOpenerPolicy: false,
      originAgentCluster: false,
      xDnsPrefetchControl: false,
      xDownloadOptions: false,
      xXssProtection: false,
      xFrameOptions: 'DENY',
    }),
  );
  app.use(
    corsMiddleware({
      origins: config.corsOrigins,
      allowMethods: ['GET', 'POST', 'OPTIONS'],
      allowHeaders: ['Content-Type', 'X-API-Key', 'Authorization', 'Idempotency-Key', 'X-Request-Id'],
      exposeHeaders: ['X-Request-Id', 'X-Cold-Start', 'X-Instance-Id', 'Retry-After', 'Server-Timing'],
      maxAgeSeconds: 600,
    }),
  );

  const limiter = createRateLimiter(config.rateLimitPerMinute);
  const requireApiKey: MiddlewareHandler<AppEnv> = async (c, next) => {
    const keyIndex = ctx.apiKeys.enabled ? ctx.apiKeys.check(presentedKey((n) => c.req.header(n))) : -1;
    c.set('keyIndex', keyIndex);
    limiter.take(keyIndex >= 0 ? `key-${keyIndex}` : 'open');
    await next();
  };

  registerIndex(app, ctx);
  registerHealth(app, ctx);
  registerMetrics(app, ctx);
  registerTrack(app, ctx, requireApiKey);
  registerOtlp(app, ctx, requireApiKey);
  registerAnalytics(app, ctx, requireApiKey);
  registerDashboard(app, ctx);

  // Known paths with a method they do not serve: 405 with Allow (OPTIONS answers with Allow).
  const methodsByPath = new Map<string, string[]>();
  for (const r of ROUTES) methodsByPath.set(r.path, [...(methodsByPath.get(r.path) ?? []), r.method]);
  for (const [path, methods] of methodsByPath) {
    const allow = [...methods, ...(methods.includes('GET') ? ['HEAD'] : []), 'OPTIONS'].join(', ');
    app.all(honoPath(path), (c) => {
      if (c.req.method === 'OPTIONS') return c.body(null, 204, { Allow: allow });
      throw new ApiError(405, 'method_not_allowed', `${c.req.method} is not allowed on ${c.req.path}; use ${methods.join(' or ')}`, undefined, {
        Allow: allow,
      });
    });
  }

  app.notFound((c) =>
    c.json<ErrorBody>(
      { error: 'not_found', message: `No route for ${c.req.method} ${c.req.path}. GET ${c.get('prefix') || ''}/ lists the endpoints.` },
      404,
    ),
  );

  app.onError((error, c) => {
    const requestId = c.get('requestId');
    const log = deps.logger.child({ request_id: requestId });
    if (error instanceof ApiError) {
      const body: ErrorBody = { error: error.code, message: error.message, request_id: requestId };
      if (error.details) body.details = error.details;
      return c.json(body, error.status, error.headers);
    }
    if (error instanceof HTTPException) {
      // Raised inside Hono itself (e.g. a body that cannot be read): keep its status, our shape.
      const status = error.status >= 400 && error.status < 600 ? error.status : 500;
      return c.json<ErrorBody>(
        { error: status >= 500 ? 'internal_error' : 'bad_request', message: error.message || 'Bad request', request_id: requestId },
        status as 400,
      );
    }
    if (error instanceof StoreDataError) {
      // Validation lets through only what the store should take; a refusal left is still the data's.
      log.warn('database refused request data', { sqlstate: error.sqlState, err: error.message });
      return c.json<ErrorBody>({ error: 'invalid_data', message: error.message, request_id: requestId }, 400);
    }
    if (error instanceof StoreNotConfiguredError) {
      log.warn('store not configured', { err: error.message });
      return c.json<ErrorBody>({ error: 'service_unavailable', message: error.message, request_id: requestId }, 503);
    }
    if (error instanceof StoreUnavailableError) {
      log.error('database unavailable', { err: error, cause: error.cause instanceof Error ? error.cause.message : undefined });
      const reason = (error as { code?: unknown }).code;
      return c.json<ErrorBody>(
        {
          error: 'service_unavailable',
          message: /\bretry\b/.test(error.message)
            ? error.message
            : `${error.message}; retry in ${RETRY_AFTER_SECONDS} s with the same event_id (a repeat is stored once)`,
          request_id: requestId,
          ...(typeof reason === 'string' && reason.startsWith('write_') ? { reason } : {}),
        },
        503,
        { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      );
    }
    log.error('unhandled error', { err: error });
    return c.json<ErrorBody>(
      { error: 'internal_error', message: `Unexpected error; the service log has details under request id ${requestId}`, request_id: requestId },
      500,
    );
  });

  return { app, fetch: app.fetch.bind(app), stats: ctx.stats };
}

export type ServiceApp = ReturnType<typeof createApp>;
