/** Types shared by the app and its route modules. */
import type { Hono } from 'hono';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import type { InstanceStats, RuntimeInfo } from './runtime-info.ts';
import type { KeyRing } from './auth.ts';
import type { PriceTable } from './pricing/prices.ts';
import type { Store } from '../storage/types.ts';

/** What an adapter passes per request (Hono `Bindings`). All optional: a plain server sends none. */
export interface RequestEnv {
  /** Path to route on, after the adapter removed a stage or route prefix. */
  routePath?: string;
  /** The prefix the client used in front of `routePath` (for links in answers). */
  prefix?: string;
  /** Lambda: whether this invocation started the execution environment. */
  coldStart?: boolean;
  /** Lambda: the invocation's request id. */
  requestId?: string;
  /**
   * The raw body as text, read by the adapter directly from its source (the Node server reads the
   * socket, skipping the WHATWG stream a Request body would go through); rejects with a 413
   * ApiError past `maxBytes`. Unset: the body is read from the Request.
   */
  readBody?: (maxBytes: number) => Promise<string>;
}

export interface StoreInfo {
  kind: 'pglite' | 'postgres' | 'none';
  /** Where the data lives, safe to show. */
  description: string;
  /** Why there is no store (kind `none`), phrased as what to do. */
  problem?: string;
}

export interface AppDeps {
  config: Config;
  logger: Logger;
  runtime: RuntimeInfo;
  /** Opens or returns the store; may reject with StoreNotConfiguredError or StoreUnavailableError. */
  getStore: () => Promise<Store>;
  storeInfo: StoreInfo;
  /** Model prices for events without `api_cost_usd`; default: the built-in table. */
  prices?: PriceTable;
  stats?: InstanceStats;
  now?: () => Date;
}

export interface AppVariables {
  requestId: string;
  /** External prefix for links: Lambda stage/route prefix and/or BASE_PATH. */
  prefix: string;
  /** Index of the API key used, when the route needs one. */
  keyIndex: number;
}

export type AppEnv = { Bindings: RequestEnv; Variables: AppVariables };
export type App = Hono<AppEnv>;

export interface AppContext {
  deps: AppDeps;
  stats: InstanceStats;
  apiKeys: KeyRing;
  /**
   * Who may read `/metrics` and `/health/detailed`'s database details: the metrics token or any
   * API key. Open (`enabled: false`) only when no key of either kind is configured.
   */
  metricsAccess: KeyRing;
  now: () => Date;
}
