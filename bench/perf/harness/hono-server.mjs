// A peer for the /health figure: Hono on @hono/node-server with one JSON route and no middleware,
// i.e. the framework's own cost on this machine, measured in the same run as the service.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.get('/health', (c) => c.json({ status: 'healthy', service: 'hono-minimal' }));
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => process.stdout.write(`LISTENING ${info.port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
