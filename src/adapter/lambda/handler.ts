/**
 * The Lambda entry: one handler for API Gateway HTTP APIs (payload 2.0, any stage) and REST APIs
 * (1.0), ALB (single- or multi-value headers), Function URLs and VPC Lattice, plus warm-up events.
 *
 * Everything a request does not need to wait for is done here at module scope, during the init
 * phase: configuration, the app, and the WHATWG globals. The database driver loads on first use.
 */
import { createApp } from '../../core/app.ts';
import type { PriceTable } from '../../core/pricing/prices.ts';
import { ConfigError, loadConfig, type Config } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { applyRetention, RETENTION_INTERVAL_MS } from '../../core/retention.ts';
import { InstanceStats, type RuntimeInfo } from '../../core/runtime-info.ts';
import { VERSION } from '../../version.ts';
import { publishInvocation } from './cloudwatch.ts';
import { describeDatabase, lazyStore } from './database.ts';
import { classifyEvent, toRequest, type HttpEventRequest } from './events.ts';
import { toResult, type LambdaResult } from './results.ts';
import { apiKeysFromSecret } from './secrets.ts';
import { installLightweightGlobals } from '../web-objects.ts';

/** The parts of the Lambda context object this handler reads. */
export interface LambdaContext {
  awsRequestId?: string;
  getRemainingTimeInMillis?: () => number;
}

// The app runs on lightweight Headers/Response (web-objects.ts): undici, whose first touch costs
// 30–110 ms on Node 20, is then never loaded on the request path.
installLightweightGlobals();

const startedAt = Date.now();
const runtime: RuntimeInfo = {
  name: 'lambda',
  // The log stream names the execution environment; unique enough and useful to find its logs.
  instanceId: process.env.AWS_LAMBDA_LOG_STREAM_NAME?.split(']').pop() || `env-${crypto.randomUUID().slice(0, 8)}`,
  startedAt,
  version: VERSION,
};
const stats = new InstanceStats();

let config: Config | undefined;
let configProblem: string | undefined;
try {
  config = loadConfig(process.env, { dbPoolMax: 1, migrateOnStart: false });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  configProblem = error.message;
}
// PRICES_FILE (a file in the package or a layer) is read at init; a bad one is a configuration
// problem like a bad variable. Without it the built-in table loads on the first event needing it.
let prices: PriceTable | undefined;
if (config?.pricesFile) {
  const { loadPriceTable } = await import('../../core/pricing/prices.ts');
  try {
    prices = await loadPriceTable(config.pricesFile);
  } catch (error) {
    configProblem = (error as Error).message;
    config = undefined;
  }
}
const logger = createLogger(config?.logLevel ?? 'info', { service: 'mlops-service', runtime: 'lambda', instance_id: runtime.instanceId });
if (configProblem) logger.error('invalid configuration: every request will be answered 503', { problem: configProblem });

const storeInfo = config ? describeDatabase(process.env, config) : undefined;
const getStore = config ? lazyStore(process.env, config) : undefined;

// API keys kept in Secrets Manager (the CDK stack's apiKeysSecretId) are first read during init.
// Until a read succeeds the service fails closed (503 to every request), and later invocations try
// again with backoff (CachedSecret): a throttled or still-starting extension heals by itself
// instead of breaking the environment for its whole life.
const apiKeysSecret = config && process.env.MLOPS_API_KEYS_SECRET_ID ? apiKeysFromSecret(process.env.MLOPS_API_KEYS_SECRET_ID) : undefined;
let app: ReturnType<typeof createApp> | undefined;
let keysProblem: string | undefined;

async function readyApp(): Promise<ReturnType<typeof createApp> | undefined> {
  if (app || !config || !storeInfo || !getStore) return app;
  let apiKeys = config.apiKeys;
  if (apiKeysSecret) {
    try {
      apiKeys = [...new Set([...apiKeys, ...(await apiKeysSecret.get())])];
    } catch (error) {
      const first = keysProblem === undefined;
      keysProblem = `Could not read the API keys from MLOPS_API_KEYS_SECRET_ID: ${(error as Error).message}. Every request is refused until a later read succeeds.`;
      if (first) logger.error('API keys unavailable: answering 503 and trying again on later requests', { problem: keysProblem });
      return undefined;
    }
    if (keysProblem !== undefined) logger.info('API keys read: serving requests');
    keysProblem = undefined;
  }
  app = createApp({ config: { ...config, apiKeys }, logger, runtime, stats, getStore, storeInfo, ...(prices ? { prices } : {}) });
  return app;
}
await readyApp();

let invoked = false;
// Read once: process.env lookups are slow enough to show on a warm request.
const provisioned = process.env.AWS_LAMBDA_INITIALIZATION_TYPE === 'provisioned-concurrency';
let lastRetentionAt = 0;

async function warmUp(source: string, coldStart: boolean) {
  stats.warmups++;
  let database = 'not_configured';
  if (getStore && config && storeInfo?.kind !== 'none') {
    try {
      const store = await getStore();
      await store.ping(2000);
      database = 'connected';
      // The warmer (and any schedule) folds what writers left queued, within a bounded time.
      await store.foldPending({ budgetMs: 2000 });
      // The warmer doubles as the retention schedule (at most every six hours per environment).
      if (config.retentionDays && Date.now() - lastRetentionAt > RETENTION_INTERVAL_MS) {
        lastRetentionAt = Date.now();
        await applyRetention(store, config.retentionDays, logger);
      }
    } catch (error) {
      database = `unavailable: ${(error as Error).message}`;
    }
  }
  logger.info('warm-up', { source, cold_start: coldStart, database });
  return { status: 'warm', source, cold_start: coldStart, instance_id: runtime.instanceId, database, version: VERSION };
}

function problemResponse(status: number, error: string, message: string, details?: { field: string; message: string }[]): Response {
  return new Response(JSON.stringify({ error, message, ...(details ? { details } : {}) }), { status, headers: { 'content-type': 'application/json' } });
}

export async function handler(event: unknown, context?: LambdaContext): Promise<LambdaResult | Record<string, unknown>> {
  const started = performance.now();
  const coldStart = !invoked && !provisioned;
  invoked = true;
  if (coldStart) stats.coldStarts++;

  const classified = classifyEvent(event);
  if (classified.type === 'warmup') {
    const answer = await warmUp(classified.source, coldStart);
    publishInvocation({ coldStart, durationMs: performance.now() - started });
    return answer;
  }
  if (classified.type === 'unknown') {
    logger.warn('unsupported event', { event: classified.description, cold_start: coldStart });
    return {
      error: 'unsupported_event',
      message:
        `This function serves HTTP requests from API Gateway (HTTP and REST APIs), ALB, Function URLs and VPC Lattice, ` +
        `and answers scheduled warm-up events; it received ${classified.description}.`,
    };
  }

  const req: HttpEventRequest = classified.request;
  let response: Response;
  const ready = app ?? (await readyApp());
  if (!ready) {
    stats.record(503);
    response = problemResponse(503, 'service_unavailable', configProblem ?? keysProblem ?? 'Invalid configuration');
  } else {
    try {
      const { request, skippedHeaders } = toRequest(req);
      if (skippedHeaders.length) logger.warn('dropped invalid request headers', { headers: skippedHeaders });
      // Dropping an idempotency key would store a retry twice: refuse the request instead.
      if (skippedHeaders.some((h) => h.toLowerCase() === 'idempotency-key')) {
        stats.record(400);
        response = problemResponse(400, 'validation_error', 'Idempotency-Key contains a NUL or a line break', [
          { field: 'Idempotency-Key', message: 'must not contain NUL or line breaks' },
        ]);
      } else {
        response = await ready.fetch(request, { routePath: req.routePath, prefix: req.prefix, coldStart, requestId: context?.awsRequestId });
      }
    } catch (error) {
      logger.warn('request could not be built', { err: error });
      stats.record(400);
      response = problemResponse(400, 'bad_request', `The request could not be read: ${(error as Error).message}`);
    }
  }
  const result = await toResult(response, req.source, req.multiValueHeaders, req.method === 'HEAD');
  publishInvocation({ coldStart, status: result.statusCode, durationMs: performance.now() - started });
  return result;
}
