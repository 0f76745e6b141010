/**
 * A loopback TCP proxy whose failures a test drives explicitly, to stand between the service and
 * PostgreSQL: the network faults a connection meets in production, without timing games.
 *
 * - `blackholeOpenFlows()`: the flows open now stop forwarding in both directions and are never
 *   closed (a NAT gateway or load balancer that forgot an idle flow, a frozen peer); new flows
 *   still work, as after the NAT forgot the old mapping.
 * - `resetNextConnections(n)`: the next n connections are reset as soon as they are accepted (a
 *   connection attempt that fails: a server restarting, a full backlog).
 * A server that closes a flow (a backend killed with pg_terminate_backend) closes it for the client.
 */
import { EventEmitter, once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Flow {
  id: number;
  client: Socket;
  server: Socket;
  /** Forwarding stopped for good (black hole). */
  blackholed: boolean;
}

export class TcpProxy extends EventEmitter {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly flows = new Set<Flow>();
  #nextId = 1;
  #resetNext = 0;
  /** Connections accepted so far, reset ones included. */
  accepted = 0;

  private constructor(target: { host: string; port: number }) {
    super();
    this.#target = target;
    this.#server = createServer((client) => this.#accept(client));
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    proxy.#server.listen(0, '127.0.0.1');
    await once(proxy.#server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  /** `url` with its host and port replaced by this proxy's. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  /** Flows still open that forward. */
  get liveFlows(): Flow[] {
    return [...this.flows].filter((f) => !f.blackholed);
  }

  blackholeOpenFlows(): number {
    let n = 0;
    for (const flow of this.flows) {
      if (flow.blackholed) continue;
      flow.blackholed = true;
      n++;
    }
    return n;
  }

  resetNextConnections(n: number): void {
    this.#resetNext += n;
  }

  /** Resolves once `predicate` holds, checked after every change of flow state. */
  async until(predicate: () => boolean): Promise<void> {
    while (!predicate()) await once(this, 'change');
  }

  async close(): Promise<void> {
    for (const flow of this.flows) {
      flow.client.destroy();
      flow.server.destroy();
    }
    this.flows.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.accepted++;
    client.on('error', () => {});
    if (this.#resetNext > 0) {
      this.#resetNext--;
      client.resetAndDestroy();
      this.emit('change');
      return;
    }
    const server = connect(this.#target);
    server.on('error', () => {});
    const flow: Flow = { id: this.#nextId++, client, server, blackholed: false };
    this.flows.add(flow);
    client.on('data', (chunk) => {
      if (!flow.blackholed) server.write(chunk);
    });
    server.on('data', (chunk) => {
      if (!flow.blackholed) client.write(chunk);
    });
    server.on('close', () => {
      if (!flow.blackholed) client.end();
      this.emit('change');
    });
    client.on('close', () => {
      this.flows.delete(flow);
      if (!flow.blackholed) server.destroy();
      this.emit('change');
    });
    this.emit('change');
  }
}
