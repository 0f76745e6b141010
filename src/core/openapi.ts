/**
 * The OpenAPI 3.1 document, generated from the route table, the schemas that validate requests
 * and the response schemas the tests check answers against. Loaded on first request only.
 */
import * as z from 'zod/mini';
import { trackBatchSchema, trackEventSchema } from './event-schema.ts';
import * as responses from './response-schemas.ts';
import { ROUTES, type RouteSpec } from './route-table.ts';

type Json = Record<string, unknown>;

const schema = (s: z.ZodMiniType, io: 'input' | 'output' = 'output'): Json => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Json;
  return rest;
};

const json = (s: Json, description: string) => ({ description, content: { 'application/json': { schema: s } } });
const errorRef = { $ref: '#/components/schemas/Error' };
const err = (description: string) => json(errorRef, description);

const SUCCESS: Record<string, Json> = {
  'GET /': json({ $ref: '#/components/schemas/Index' }, 'Endpoint index (JSON clients); HTML dashboard when Accept asks for text/html'),
  'GET /health': json({ $ref: '#/components/schemas/Health' }, 'The service is running'),
  'GET /health/detailed': json({ $ref: '#/components/schemas/HealthDetailed' }, 'Healthy, database reachable'),
  'GET /metrics': {
    description: 'Prometheus text exposition format 0.0.4',
    content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } },
  },
  'POST /track': json({ $ref: '#/components/schemas/TrackResponse' }, 'Stored and committed (or a duplicate of a stored event)'),
  'POST /track/batch': json({ $ref: '#/components/schemas/BatchResponse' }, 'Every event stored and committed in one transaction'),
  'POST /refresh-metrics': json({ $ref: '#/components/schemas/RefreshResponse' }, 'Refreshed, or skipped with the reason'),
  'GET /analytics': json({ $ref: '#/components/schemas/AnalyticsSummary' }, 'One row per business'),
  'GET /analytics/{business_id}': json({ $ref: '#/components/schemas/BusinessAnalytics' }, 'Aggregates over the window'),
  'GET /openapi.json': json({ type: 'object' }, 'This document'),
  'POST /v1/traces': {
    description:
      'ExportTraceServiceResponse in the request encoding, sent after the commit; partial_success counts the spans that ' +
      'looked like model calls but could not become events, and says why',
    content: { 'application/x-protobuf': { schema: { type: 'string', format: 'binary' } }, 'application/json': { schema: { type: 'object' } } },
  },
};

function operation(route: RouteSpec): Json {
  const key = `${route.method} ${route.path}`;
  const op: Json = {
    summary: route.summary,
    operationId: route.name,
    responses: { '200': SUCCESS[key] } as Json,
  };
  const res = op.responses as Json;
  const params: Json[] = [];
  if (route.path === '/analytics/{business_id}') {
    params.push(
      { name: 'business_id', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 255 } },
      { name: 'days', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 366, default: 30 } },
    );
    res['400'] = err('Bad days value');
  }
  if (route.path === '/refresh-metrics') {
    params.push({ name: 'force', in: 'query', required: false, schema: { type: 'boolean' }, description: 'Ignore the minimum interval' });
  }
  if (route.method === 'POST' && route.path.startsWith('/track')) {
    const body = route.path === '/track' ? '#/components/schemas/TrackEvent' : '#/components/schemas/TrackBatch';
    op.requestBody = { required: true, content: { 'application/json': { schema: { $ref: body } } } };
    if (route.path === '/track') {
      params.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        schema: { type: 'string', maxLength: 255 },
        description: 'Same as event_id',
      });
    }
    res['400'] = err('Malformed JSON, empty body or invalid fields (details lists each)');
    res['413'] = err('Body over the size limit');
    res['415'] = err('Content-Type is not JSON');
  }
  if (route.path === '/v1/traces') {
    op.requestBody = {
      required: true,
      description: 'OTLP/HTTP ExportTraceServiceRequest; Content-Encoding: gzip accepted',
      content: { 'application/x-protobuf': { schema: { type: 'string', format: 'binary' } }, 'application/json': { schema: { type: 'object' } } },
    };
    res['400'] = err('Undecodable body (bad protobuf, JSON or gzip)');
    res['413'] = err('Body (or its decompressed size) over the limit');
    res['415'] = err('Content-Type is neither application/x-protobuf nor application/json');
  }
  if (route.auth === 'api-key') {
    op.security = [{ apiKey: [] }, { bearer: [] }];
    res['401'] = err('No API key sent (only when keys are configured)');
    res['403'] = err('Wrong API key');
    res['429'] = err('Rate limit of this API key exceeded; see Retry-After');
  }
  if (route.auth === 'metrics-token') {
    op.security = [{ bearer: [] }, {}];
    res['401'] = err('No credential sent (only when METRICS_TOKEN or API keys are configured); the metrics token or an API key is accepted');
    res['403'] = err('Wrong token or key');
  }
  if (route.path !== '/health' && route.path !== '/' && route.path !== '/openapi.json') {
    res['503'] = err('Database unreachable; retry after Retry-After seconds');
  }
  if (params.length) op.parameters = params;
  return op;
}

export function buildOpenApi(version: string): Json {
  const paths: Record<string, Json> = {};
  for (const route of ROUTES) {
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'mlops-service',
      version,
      description:
        'Metrics service for AI chat products. Errors are JSON {error, message, details?}; unknown paths 404, ' +
        'wrong methods 405 with Allow.',
    },
    servers: [{ url: '/' }],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
      schemas: {
        TrackEvent: schema(trackEventSchema, 'input'),
        TrackBatch: schema(trackBatchSchema, 'input'),
        Error: schema(responses.errorSchema),
        Index: schema(responses.indexSchema),
        Health: schema(responses.healthSchema),
        HealthDetailed: schema(responses.healthDetailedSchema),
        TrackResponse: schema(responses.trackResponseSchema),
        BatchResponse: schema(responses.batchResponseSchema),
        RefreshResponse: schema(responses.refreshResponseSchema),
        AnalyticsSummary: schema(responses.summarySchema),
        BusinessAnalytics: schema(responses.analyticsSchema),
      },
    },
  };
}
