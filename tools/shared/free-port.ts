/**
 * A loopback TCP port free at the time of asking, for servers a test or benchmark starts (a private
 * PostgreSQL cluster, PgBouncer). Another process may take it before the caller binds: callers that
 * can, retry with a new one.
 */
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
