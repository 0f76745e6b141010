/**
 * Every route of the contract in one table: it drives the endpoint index, the `Allow` header of
 * 405 answers and the OpenAPI document, so none of them can disagree with what is served.
 */
export type Auth = 'none' | 'api-key' | 'metrics-token';

export interface RouteSpec {
  method: 'GET' | 'POST';
  /** OpenAPI-style path, e.g. `/analytics/{business_id}`. */
  path: string;
  /** Key in the endpoint index of `GET /`. */
  name: string;
  summary: string;
  auth: Auth;
}

export const ROUTES: readonly RouteSpec[] = [
  { method: 'GET', path: '/', name: 'index', summary: 'Dashboard for browsers; this endpoint index otherwise', auth: 'none' },
  { method: 'GET', path: '/health', name: 'health', summary: 'Liveness; never touches the database', auth: 'none' },
  { method: 'GET', path: '/health/detailed', name: 'health_detailed', summary: 'Readiness with a real database check', auth: 'none' },
  { method: 'GET', path: '/metrics', name: 'metrics', summary: 'Prometheus exposition of stored business series and instance series', auth: 'metrics-token' },
  { method: 'POST', path: '/track', name: 'track', summary: 'Store one event; answers after it is committed', auth: 'api-key' },
  { method: 'POST', path: '/track/batch', name: 'track_batch', summary: 'Store up to 500 events in one transaction, all or nothing', auth: 'api-key' },
  { method: 'POST', path: '/refresh-metrics', name: 'refresh_metrics', summary: 'Re-derive every aggregate from the stored events', auth: 'api-key' },
  { method: 'GET', path: '/analytics', name: 'analytics', summary: 'One summary row per business', auth: 'api-key' },
  { method: 'GET', path: '/analytics/{business_id}', name: 'business_analytics', summary: 'Aggregates of one business over a window of days', auth: 'api-key' },
  { method: 'GET', path: '/openapi.json', name: 'openapi', summary: 'This API as an OpenAPI 3.1 document', auth: 'none' },
  { method: 'POST', path: '/v1/traces', name: 'otlp_traces', summary: 'OTLP/HTTP trace export (protobuf or JSON): model-call spans become events', auth: 'api-key' },
];

/** `/analytics/{business_id}` → `/analytics/:business_id` */
export const honoPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

/**
 * First path segments the app serves (`''` is the root). A gateway route prefix such as
 * `/mlops-service-lambda` is stripped only when it is not one of these.
 */
export const ROUTE_ROOTS: ReadonlySet<string> = new Set([...ROUTES.map((r) => r.path.split('/')[1] ?? ''), 'assets']);
