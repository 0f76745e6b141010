/**
 * Test rig for the client SDK under outages: a fake clock (timers fire only when the test moves
 * time), an I/O tracker (so that moving time waits for real requests and spool operations to
 * finish instead of sleeping), and a stand-in for the service on node:http that can answer 503
 * with Retry-After, refuse connections (its port closed), lose an acknowledgement, and reject
 * invalid events the way the service does (400 validation_error, details[].field).
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock, EventSpool, TrackEvent } from '../src/client/index.ts';

interface Timer {
  at: number;
  order: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  #now: number;
  #order = 0;
  #timers = new Map<number, Timer>();

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = ++this.#order;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), order: id, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Runs the earliest timer due by `limit`, moving the time to it; false when none is. */
  fireNext(limit: number): boolean {
    let first: [number, Timer] | undefined;
    for (const entry of this.#timers) {
      const [, t] = entry;
      if (t.at <= limit && (!first || t.at < first[1].at || (t.at === first[1].at && t.order < first[1].order))) first = entry;
    }
    if (!first) return false;
    this.#timers.delete(first[0]);
    this.#now = Math.max(this.#now, first[1].at);
    first[1].callback();
    return true;
  }

  set(to: number): void {
    this.#now = Math.max(this.#now, to);
  }
}

/** Counts the real I/O the client started and has not seen finish: requests (bodies read in full) and spool operations. */
export class IoTracker {
  pending = 0;

  readonly fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    this.pending++;
    try {
      const res = await fetch(input, init);
      const body = await res.arrayBuffer();
      return new Response(body, { status: res.status, headers: res.headers });
    } finally {
      this.pending--;
    }
  }) as typeof fetch;

  spool<S extends EventSpool>(inner: S): S {
    const track = <T>(p: Promise<T>) => {
      this.pending++;
      return p.finally(() => this.pending--);
    };
    return {
      ...inner,
      append: (events) => track(inner.append(events)),
      take: (max) => track(inner.take(max)),
      release: (handles) => track(inner.release(handles)),
      stored: () => inner.stored(),
      waiting: () => inner.waiting(),
      close: async () => {
        await track(Promise.resolve(inner.close?.()));
      },
    } as S;
  }

  /** Resolves once nothing is pending for a few event-loop turns in a row (fails after 20 s of real time). */
  async settle(): Promise<void> {
    const started = Date.now();
    for (let quiet = 0; quiet < 3; ) {
      await new Promise((r) => setImmediate(r));
      quiet = this.pending === 0 ? quiet + 1 : 0;
      if (Date.now() - started > 20_000) throw new Error(`I/O did not settle: ${this.pending} operation(s) pending`);
    }
  }
}

/** Moves `clock` to `to`, firing due timers one by one and letting the I/O they start finish before the next. */
export async function runUntil(clock: FakeClock, io: IoTracker, to: number, afterEach?: () => void): Promise<void> {
  await io.settle();
  afterEach?.();
  while (clock.fireNext(to)) {
    await io.settle();
    afterEach?.();
  }
  clock.set(to);
}

export type Mode = 'up' | 'unavailable' | 'refused';

/** What the service would check of an event (the fields the tests vary). */
function problems(e: any, prefix: string): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  if (typeof e?.business_id !== 'string' || e.business_id.length === 0) out.push({ field: `${prefix}business_id`, message: 'Missing required field: business_id' });
  if (!Number.isInteger(e?.tokens_used) || e.tokens_used < 0) out.push({ field: `${prefix}tokens_used`, message: 'tokens_used must be ≥ 0' });
  return out;
}

export class SimService {
  mode: Mode = 'up';
  retryAfter = '5';
  /** The acknowledgements of the next n storing requests are lost (stored, then the connection cut). */
  loseAcks = 0;
  /** A batch 400 without details (the client cannot tell which event is bad). */
  batchDetails = true;
  /** business_id + event_id of every event stored; a repeat is not stored again but answered duplicate:true, as the service does. */
  readonly stored = new Set<string>();
  readonly requests: { at: number; path: string; business: string; events: number; status: number | 'cut' }[] = [];
  /** Events received again after they were stored. */
  duplicates = 0;
  #server?: Server;
  #port = 0;

  constructor(private readonly clock: Clock) {}

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get storedIds(): Set<string> {
    return new Set([...this.stored].map((k) => k.split('\u0000')[1]!));
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.listen(this.#port, '127.0.0.1');
    await once(this.#server, 'listening');
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  /** Connection refused from now on: the port is closed, open connections cut. */
  async refuse(): Promise<void> {
    this.mode = 'refused';
    const server = this.#server!;
    this.#server = undefined;
    const closed = once(server, 'close');
    server.close();
    server.closeAllConnections();
    await closed;
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    this.mode = 'up';
    if (!this.#server) await this.start();
  }

  async stop(): Promise<void> {
    if (this.#server) await this.refuse();
  }

  async #handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = req.url ?? '';
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    let body: any;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      body = undefined;
    }
    const batch = path === '/track/batch';
    const events: TrackEvent[] = batch ? (Array.isArray(body?.events) ? body.events : []) : [body];
    const log = (status: number | 'cut') =>
      this.requests.push({ at: this.clock.now(), path, business: String(events[0]?.business_id), events: events.length, status });
    if (this.mode === 'unavailable') {
      log(503);
      return reply(503, { error: 'service_unavailable', message: 'database unreachable' }, { 'retry-after': this.retryAfter });
    }
    const details = batch ? events.flatMap((e, k) => problems(e, `events[${k}].`)) : problems(body, '');
    if (details.length) {
      log(400);
      const message = details.map((d) => d.message).join('; ');
      return reply(400, batch && !this.batchDetails ? { error: 'validation_error', message } : { error: 'validation_error', message, details });
    }
    let duplicates = 0;
    for (const e of events) {
      const key = `${e.business_id}\u0000${e.event_id}`;
      if (this.stored.has(key)) duplicates++;
      else this.stored.add(key);
    }
    this.duplicates += duplicates;
    if (this.loseAcks > 0) {
      this.loseAcks--;
      log('cut');
      return res.socket?.destroy();
    }
    log(200);
    if (batch) reply(200, { status: 'success', stored: events.length - duplicates, duplicates });
    else reply(200, { status: 'success', duplicate: duplicates > 0 });
  }
}
