// A peer for the /track figure: the service's own app and server path (routes, validation, logs,
// the Node adapter's body reading) over a store that stores nothing and answers at once, so the
// benchmark can show how much of a committed /track is the database's share.
import { serve, type HttpBindings } from '@hono/node-server';
import { readIncomingBody } from '../../../src/adapter/node/read-body.ts';
import { installLightweightGlobals } from '../../../src/adapter/web-objects.ts';
import { createApp } from '../../../src/core/app.ts';
import { loadConfig } from '../../../src/core/config.ts';
import { batchedSink, createLogger } from '../../../src/core/logger.ts';
import type { InsertOutcome, NewEvent, Store } from '../../../src/storage/types.ts';

installLightweightGlobals({ headers: true, response: false });
let id = 0;
const store = {
  kind: 'postgres',
  description: 'no-op store (benchmark peer)',
  insertEvents: async (events: NewEvent[]): Promise<InsertOutcome[]> =>
    events.map((e) => ({ id: ++id, event_id: e.event_id, duplicate: false, created_at: new Date().toISOString() })),
} as unknown as Store;
const config = loadConfig({ LOG_LEVEL: 'info' });
const { fetch } = createApp({
  config,
  logger: createLogger(config.logLevel, { service: 'no-store-peer' }, batchedSink()),
  runtime: { name: 'server', instanceId: 'no-store-peer', startedAt: Date.now(), version: 'bench' },
  getStore: async () => store,
  storeInfo: { kind: 'postgres', description: store.description },
});
const handle = (request: Request, bindings: HttpBindings) => fetch(request, { readBody: (max: number) => readIncomingBody(bindings.incoming, max) });
const server = serve({ fetch: handle as never, port: 0, hostname: '127.0.0.1' }, (info) => process.stdout.write(`LISTENING ${info.port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
