/**
 * The long-running server (EC2, containers, a laptop): the core app on @hono/node-server, with a
 * graceful shutdown that stops accepting, lets in-flight requests finish and closes the database.
 */
import { serve, type HttpBindings } from '@hono/node-server';
import type { Server, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { createApp } from '../../core/app.ts';
import { installLightweightGlobals } from '../web-objects.ts';
import { readIncomingBody } from './read-body.ts';
import type { Config } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { InstanceStats, type RuntimeInfo } from '../../core/runtime-info.ts';
import { scheduleFolding } from '../../core/fold-schedule.ts';
import { scheduleRetention } from '../../core/retention.ts';
import { openStore } from '../../storage/open-store.ts';
import type { Store } from '../../storage/types.ts';
import { VERSION } from '../../version.ts';

/** How a shutdown ended. */
export interface ShutdownReport {
  /** Requests still in flight when the shutdown timeout passed: their connections were cut. */
  abandoned: string[];
}

export interface RunningServer {
  url: string;
  port: number;
  store: Store;
  /**
   * Stops accepting, waits for in-flight requests (up to the shutdown timeout, then cuts their
   * connections and reports them as abandoned), closes the store.
   */
  close(): Promise<ShutdownReport>;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  // Hono sets a dozen headers per answer; undici's validating Headers made that a visible share
  // of a request here. @hono/node-server already lightens Request and Response.
  installLightweightGlobals({ headers: true, response: false });
  const runtime: RuntimeInfo = { name: 'server', instanceId: `${hostname()}-${process.pid}`, startedAt: Date.now(), version: VERSION };
  // A bad PRICES_FILE stops start-up (PriceTableError names the file and the entries), before the
  // database is opened; without one the built-in table loads on the first event that needs it.
  const prices = config.pricesFile ? await (await import('../../core/pricing/prices.ts')).loadPriceTable(config.pricesFile) : undefined;
  if (prices) logger.info('prices loaded', { prices_file: config.pricesFile, models: prices.entries.length });
  const store = await openStore(config);
  try {
    if (config.migrateOnStart) {
      const { applied } = await store.migrate();
      if (applied.length) logger.info('migrations applied', { applied });
    }
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  const stats = new InstanceStats();
  stats.coldStarts = 1;
  const { fetch } = createApp({
    config,
    logger,
    runtime,
    stats,
    getStore: () => Promise.resolve(store),
    storeInfo: { kind: store.kind, description: store.description },
    ...(prices ? { prices } : {}),
  });

  const stopRetention = config.retentionDays ? scheduleRetention(store, config.retentionDays, logger) : () => {};
  const stopFolding = scheduleFolding(store, config.foldIntervalMs, logger);

  // Requests from arrival until their response is sent or their connection closes, so that a
  // shutdown that runs out of time can say which ones it abandoned ("POST /track"; no query string).
  const inFlight = new Set<HttpBindings>();
  const label = ({ incoming }: HttpBindings) => `${incoming.method} ${(incoming.url ?? '').split('?')[0]}`;
  let shuttingDown = false;
  // While shutting down, an answer says `Connection: close` and its connection is closed after it:
  // kept alive, it would hold the shutdown for the keep-alive timeout and could carry new requests.
  const closeAfterAnswer = (response: ServerResponse) => {
    if (!response.headersSent) response.shouldKeepAlive = false;
  };
  // The app reads request bodies straight from Node's IncomingMessage (see read-body.ts).
  const handle = (request: Request, bindings: HttpBindings) => {
    inFlight.add(bindings);
    bindings.outgoing.once('close', () => inFlight.delete(bindings));
    if (shuttingDown) closeAfterAnswer(bindings.outgoing);
    return fetch(request, { readBody: (maxBytes: number) => readIncomingBody(bindings.incoming, maxBytes) });
  };
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: handle as never, port: config.port, hostname: config.host }, () => resolve(s as Server));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${shownHost}:${port}${config.basePath}`;
  logger.info(`listening on ${url} with ${store.description}`, { url, port, database: store.kind, version: VERSION });

  let closing: Promise<ShutdownReport> | undefined;
  const close = () =>
    (closing ??= (async () => {
      stopRetention();
      stopFolding();
      shuttingDown = true;
      for (const { outgoing } of inFlight) closeAfterAnswer(outgoing);
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let abandoned: string[] = [];
      const timer = setTimeout(() => {
        abandoned = [...inFlight].map(label);
        logger.warn('shutdown timeout: abandoning the requests still in flight and closing every connection', {
          timeout_ms: config.shutdownTimeoutMs,
          abandoned: abandoned.length,
          requests: abandoned,
        });
        server.closeAllConnections();
      }, config.shutdownTimeoutMs);
      await done;
      clearTimeout(timer);
      await store.close();
      return { abandoned };
    })());
  return { url, port, store, close };
}
