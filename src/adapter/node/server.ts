/**
 * The long-running server (EC2, containers, a laptop): the core app on @hono/node-server, with a
 * graceful shutdown that stops accepting, lets in-flight requests finish and closes the database.
 */
import { serve, type HttpBindings } from '@hono/node-server';
import type { Server } from 'node:http';
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

export interface RunningServer {
  url: string;
  port: number;
  store: Store;
  /** Stops accepting, waits for in-flight requests (up to the shutdown timeout), closes the store. */
  close(): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  // Hono sets a dozen headers per answer; undici's validating Headers made that a visible share
  // of a request here. @hono/node-server already lightens Request and Response.
  installLightweightGlobals({ headers: true, response: false });
  const runtime: RuntimeInfo = { name: 'server', instanceId: `${hostname()}-${process.pid}`, startedAt: Date.now(), version: VERSION };
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
  });

  const stopRetention = config.retentionDays ? scheduleRetention(store, config.retentionDays, logger) : () => {};
  const stopFolding = scheduleFolding(store, config.foldIntervalMs, logger);

  // The app reads request bodies straight from Node's IncomingMessage (see read-body.ts).
  const handle = (request: Request, bindings: HttpBindings) =>
    fetch(request, { readBody: (maxBytes: number) => readIncomingBody(bindings.incoming, maxBytes) });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: handle as never, port: config.port, hostname: config.host }, () => resolve(s as Server));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${shownHost}:${port}${config.basePath}`;
  logger.info(`listening on ${url} with ${store.description}`, { url, port, database: store.kind, version: VERSION });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      stopRetention();
      stopFolding();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        logger.warn('shutdown timeout: closing remaining connections', { timeout_ms: config.shutdownTimeoutMs });
        server.closeAllConnections();
      }, config.shutdownTimeoutMs);
      await done;
      clearTimeout(timer);
      await store.close();
    })());
  return { url, port, store, close };
}
