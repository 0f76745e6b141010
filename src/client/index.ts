/**
 * `mlops-service/client`: the Next.js app's `trackMetrics(data)`, made reliable. Zero
 * dependencies, fetch only (Node 18+, Vercel/Next.js edge, Cloudflare, Deno, browsers).
 *
 * - `track(event)` returns at once and never throws: the chat reply is never delayed or broken.
 * - Each event gets an `event_id` once (crypto.randomUUID), so every retry is idempotent: the
 *   service stores it once even when an acknowledgement was lost to a timeout.
 * - Per-call timeout; retries with exponential backoff and full jitter on network errors, timeouts,
 *   408, 429 and 5xx, honouring `Retry-After` (for the whole client: the service asked to wait).
 * - Optional batching through `POST /track/batch` (up to 500 events per request).
 * - A bounded queue: overflow and given-up events are counted in `stats()`, passed to `onDrop`
 *   and logged (rate-limited warning), never silent.
 * - `flush()` for serverless callers that must finish sending before their function returns.
 *
 * ```ts
 * // lib/mlops.ts (replaces the course's trackMetrics)
 * import { createMlopsClient } from 'mlops-service/client';
 * export const mlops = createMlopsClient({
 *   baseUrl: process.env.MLOPS_SERVICE_URL!,           // http://host:5001 or the API Gateway URL
 *   apiKey: process.env.MLOPS_API_KEY,
 *   batch: { maxEvents: 100, maxWaitMs: 1000 },          // optional
 * });
 * export const trackMetrics = (data: TrackEvent) => mlops.trackMetrics(data);
 *
 * // app/api/chat/route.ts
 * import { after } from 'next/server';
 * trackMetrics({ business_id, response_time_ms, tokens_used, intent_detected, appointment_booked });
 * after(() => mlops.flush());                           // serverless: finish before the function freezes
 * ```
 *
 * There is no `/refresh-metrics` call: the service maintains its aggregates on every write.
 */

/** The `POST /track` body (src/core/event-schema.ts); `event_id` is filled in when absent. */
export interface TrackEvent {
  business_id: string;
  response_time_ms: number;
  tokens_used: number;
  conversation_id?: string | null;
  session_id?: string | null;
  event_id?: string | null;
  success_rate?: number | null;
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  api_cost_usd?: number | null;
  model_name?: string | null;
  intent_detected?: string | null;
  response_type?: string | null;
  appointment_requested?: boolean | null;
  appointment_booked?: boolean | null;
  human_handoff_requested?: boolean | null;
  user_message_length?: number | null;
  ai_response_length?: number | null;
  user_satisfaction?: number | null;
}

export type DropReason =
  /** The queue was full when the event arrived. */
  | 'overflow'
  /** The service refused it (400 invalid, 401/403 key, 404 wrong URL, 413, 415…): retrying cannot help. */
  | 'rejected'
  /** Every retry failed (network, timeouts, 429, 5xx). */
  | 'retries_exhausted'
  /** It could not be serialised, or no base URL is configured. */
  | 'invalid';

export interface DropInfo {
  reason: DropReason;
  events: TrackEvent[];
  /** HTTP status of the last answer, when there was one. */
  status?: number;
  /** The service's error message or the network error. */
  message?: string;
}

export interface ClientStats {
  /** Waiting to be sent (including waiting for a retry). */
  queued: number;
  inFlight: number;
  /** Acknowledged by the service (200), duplicates included. */
  sent: number;
  /** Acknowledged as already stored: a retry whose earlier attempt had landed. */
  duplicates: number;
  /** Retry attempts scheduled (per event). */
  retried: number;
  /** Given up (rejected, retries exhausted, invalid). */
  dropped: number;
  /** Refused because the queue was full. Events lost = dropped + overflowed. */
  overflowed: number;
}

export interface MlopsClientOptions {
  /** MLOPS_SERVICE_URL: the bare base URL, e.g. http://host:5001 or an API Gateway stage URL. */
  baseUrl: string;
  /** Sent as `X-API-Key`. */
  apiKey?: string;
  /** Per request (default 5000 ms, the course's timeout). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 6). */
  maxRetries?: number;
  /** Backoff: attempt n waits random(0, min(maxDelayMs, baseDelayMs·2ⁿ)) (defaults 200 ms, 30 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Batch through `/track/batch`: `true` or sizes (defaults 100 events, 1000 ms). Off by default. */
  batch?: boolean | { maxEvents?: number; maxWaitMs?: number };
  /** Events held in memory at most, waiting or in flight (default 1000); more are counted as overflow. */
  maxQueue?: number;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Called for every event given up; exceptions are swallowed. */
  onDrop?: (info: DropInfo) => void;
  /** Where warnings go (default console); `false` for none. Never given the API key. */
  logger?: { warn(message: string): void } | false;
  /** Override fetch (tests, instrumentation). */
  fetch?: typeof fetch;
}

export interface FlushResult {
  /** True when nothing is left queued or in flight. */
  ok: boolean;
  /** Events still queued or in flight when flush returned (they keep going while the process lives). */
  pending: number;
  stats: ClientStats;
}

export interface MlopsClient {
  /** Queues one event; returns its event_id at once ('' when refused). Never throws. */
  track(event: TrackEvent): string;
  /** Drop-in for the app's `trackMetrics(data)`: same as track, as an already-resolved promise. */
  trackMetrics(event: TrackEvent): Promise<void>;
  /** Sends everything queued now (no batching wait) and resolves when done or after timeoutMs (default 10 s). Never rejects. */
  flush(options?: { timeoutMs?: number }): Promise<FlushResult>;
  stats(): ClientStats;
}

export const MAX_BATCH_EVENTS = 500;

/** Full-jitter exponential backoff: random(0, min(cap, base·2^attempt)), attempt from 0. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function newEventId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  // Node 18 without the global Web Crypto: a v4-shaped id from Math.random, unique enough per business.
  return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (ch) => {
    const r = Math.floor(Math.random() * 16);
    return (ch === 'x' ? r : (r & 0x3) | 0x8).toString(16);
  });
}

function timeoutSignal(ms: number): AbortSignal {
  if (typeof AbortSignal.timeout === 'function') return AbortSignal.timeout(ms);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error(`timed out after ${ms} ms`)), ms);
  return controller.signal;
}

interface Item {
  event: TrackEvent;
  body: string;
  attempts: number;
  readyAt: number;
  queuedAt: number;
}

const RETRYABLE = (status: number) => status === 408 || status === 429 || status >= 500;

export function createMlopsClient(options: MlopsClientOptions): MlopsClient {
  const baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxRetries = options.maxRetries ?? 6;
  const baseDelay = options.baseDelayMs ?? 200;
  const maxDelay = options.maxDelayMs ?? 30_000;
  const maxQueue = options.maxQueue ?? 1000;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const batchOpt = options.batch === true ? {} : options.batch || undefined;
  // Lowered when the service answers 413 (a body limit smaller than our batches).
  let batchSize = batchOpt ? Math.min(MAX_BATCH_EVENTS, Math.max(1, batchOpt.maxEvents ?? 100)) : 1;
  const batchWait = batchOpt?.maxWaitMs ?? 1000;
  const doFetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  const logger = options.logger === false ? undefined : (options.logger ?? console);

  let batching = batchOpt !== undefined;
  let queue: Item[] = [];
  let inFlightEvents = 0;
  let inFlightRequests = 0;
  let pausedUntil = 0;
  let flushing = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt = Infinity;
  const waiters = new Set<() => void>();
  const counts = { sent: 0, duplicates: 0, retried: 0, dropped: 0, overflowed: 0 };
  let lastWarnAt = -Infinity;
  let unreportedDrops = 0;

  const stats = (): ClientStats => ({ queued: queue.length, inFlight: inFlightEvents, ...counts });

  function warn(message: string) {
    if (!logger) return;
    // One line per 10 s at most: an outage must not flood the app's log.
    const now = Date.now();
    if (now - lastWarnAt < 10_000) return;
    lastWarnAt = now;
    try {
      logger.warn(`[mlops-client] ${message} (totals: dropped ${counts.dropped}, overflowed ${counts.overflowed}; ${unreportedDrops} since the last warning)`);
      unreportedDrops = 0;
    } catch {
      /* a broken logger must not break the caller */
    }
  }

  function drop(info: DropInfo) {
    const n = info.events.length;
    if (info.reason === 'overflow') counts.overflowed += n;
    else counts.dropped += n;
    unreportedDrops += n;
    warn(`${n} event(s) lost: ${info.reason}${info.status ? ` (HTTP ${info.status})` : ''}${info.message ? `: ${info.message}` : ''}`);
    try {
      options.onDrop?.(info);
    } catch {
      /* the caller's callback must not break the client */
    }
  }

  function schedule(at: number) {
    if (at >= timerAt) return;
    if (timer) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = Infinity;
      pump();
    }, Math.max(0, at - Date.now()));
  }

  function settleWaiters() {
    if (queue.length === 0 && inFlightEvents === 0) for (const w of [...waiters]) w();
  }

  function pump() {
    const now = Date.now();
    if (now < pausedUntil) {
      if (queue.length) schedule(pausedUntil);
      return settleWaiters();
    }
    while (inFlightRequests < concurrency) {
      const ready = queue.filter((i) => i.readyAt <= now);
      if (ready.length === 0) break;
      const size = batching ? batchSize : 1;
      // Batching: wait for a full batch or the oldest event's deadline, unless flushing.
      if (batching && !flushing && ready.length < size && ready[0]!.queuedAt + batchWait > now) {
        schedule(ready[0]!.queuedAt + batchWait);
        break;
      }
      const take = new Set(ready.slice(0, size));
      queue = queue.filter((i) => !take.has(i));
      void send([...take]);
    }
    let next = Infinity;
    for (const i of queue) if (i.readyAt > now && i.readyAt < next) next = i.readyAt;
    if (next < Infinity) schedule(next);
    settleWaiters();
  }

  function retryOrDrop(items: Item[], status: number | undefined, message: string, retryAfterMs: number | undefined) {
    const now = Date.now();
    if (retryAfterMs !== undefined) pausedUntil = Math.max(pausedUntil, now + Math.min(retryAfterMs, maxDelay));
    const giveUp = items.filter((i) => i.attempts > maxRetries);
    const again = items.filter((i) => i.attempts <= maxRetries);
    if (giveUp.length) drop({ reason: 'retries_exhausted', events: giveUp.map((i) => i.event), status, message });
    for (const i of again) {
      counts.retried++;
      i.readyAt = now + Math.max(retryAfterMs ?? 0, backoffDelay(i.attempts - 1, baseDelay, maxDelay));
    }
    queue.push(...again);
  }

  async function send(items: Item[]) {
    inFlightRequests++;
    inFlightEvents += items.length;
    for (const i of items) i.attempts++;
    const single = items.length === 1;
    const path = single ? '/track' : '/track/batch';
    const body = single ? items[0]!.body : `{"events":[${items.map((i) => i.body).join(',')}]}`;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (options.apiKey) headers['x-api-key'] = options.apiKey;
    try {
      let res: Response;
      try {
        res = await doFetch(`${baseUrl}${path}`, { method: 'POST', headers, body, signal: timeoutSignal(timeoutMs) });
      } catch (error) {
        retryOrDrop(items, undefined, (error as Error)?.message ?? String(error), undefined);
        return;
      }
      // Read the body in every case: an unread body holds the connection.
      let text = '';
      try {
        text = await res.text();
      } catch {
        /* the status is what matters */
      }
      let parsed: any;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      if (res.ok) {
        counts.sent += items.length;
        counts.duplicates += single ? (parsed?.duplicate === true ? 1 : 0) : Number(parsed?.duplicates) || 0;
        return;
      }
      const message = typeof parsed?.message === 'string' ? parsed.message : text.slice(0, 200);
      if (RETRYABLE(res.status)) {
        retryOrDrop(items, res.status, message, parseRetryAfter(res.headers.get('retry-after')));
        return;
      }
      if (!single && (res.status === 404 || res.status === 405)) {
        // A service without /track/batch: send one by one from now on.
        batching = false;
        warn(`${baseUrl}/track/batch answered ${res.status}: batching turned off`);
        for (const i of items) i.attempts--;
        queue.unshift(...items);
        return;
      }
      if (!single && res.status === 413) {
        batchSize = Math.max(1, Math.floor(items.length / 2));
        for (const i of items) i.attempts--;
        queue.unshift(...items);
        return;
      }
      if (!single && res.status === 400 && items.length > 1) {
        // All or nothing: drop only the events named in details (events[3].field), resend the rest.
        const bad = new Set<number>();
        for (const d of Array.isArray(parsed?.details) ? parsed.details : []) {
          const m = /^events\[(\d+)\]/.exec(String(d?.field ?? ''));
          if (m) bad.add(Number(m[1]));
        }
        if (bad.size > 0 && bad.size < items.length) {
          drop({ reason: 'rejected', events: items.filter((_, k) => bad.has(k)).map((i) => i.event), status: 400, message });
          const good = items.filter((_, k) => !bad.has(k));
          for (const i of good) i.attempts--;
          queue.unshift(...good);
          return;
        }
      }
      drop({ reason: 'rejected', events: items.map((i) => i.event), status: res.status, message: `${path}: ${message}` });
    } catch (error) {
      // Nothing above should throw; if it does, the events are reported, not lost silently.
      drop({ reason: 'invalid', events: items.map((i) => i.event), message: String(error) });
    } finally {
      inFlightRequests--;
      inFlightEvents -= items.length;
      pump();
    }
  }

  function track(event: TrackEvent): string {
    try {
      if (!baseUrl) {
        drop({ reason: 'invalid', events: [event], message: 'no baseUrl (MLOPS_SERVICE_URL) configured' });
        return '';
      }
      if (queue.length + inFlightEvents >= maxQueue) {
        drop({ reason: 'overflow', events: [event], message: `queue full (${maxQueue} events)` });
        return '';
      }
      const withId: TrackEvent = event?.event_id ? event : { ...event, event_id: newEventId() };
      const body = JSON.stringify(withId);
      if (typeof body !== 'string') throw new TypeError('not a JSON object');
      const now = Date.now();
      queue.push({ event: withId, body, attempts: 0, readyAt: now, queuedAt: now });
      // Sending starts after the caller's synchronous code: track() itself does no I/O.
      queueMicrotask(pump);
      return withId.event_id!;
    } catch (error) {
      drop({ reason: 'invalid', events: [event], message: `could not serialise the event: ${(error as Error)?.message ?? error}` });
      return '';
    }
  }

  function flush(opts: { timeoutMs?: number } = {}): Promise<FlushResult> {
    const limit = opts.timeoutMs ?? 10_000;
    return new Promise<FlushResult>((resolve) => {
      flushing++;
      let deadline: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        waiters.delete(done);
        if (deadline) clearTimeout(deadline);
        flushing--;
        const s = stats();
        resolve({ ok: s.queued === 0 && s.inFlight === 0, pending: s.queued + s.inFlight, stats: s });
      };
      waiters.add(done);
      deadline = setTimeout(done, limit);
      try {
        pump();
      } catch {
        done();
      }
    });
  }

  return {
    track,
    trackMetrics: (event) => {
      track(event);
      return Promise.resolve();
    },
    flush,
    stats,
  };
}

let defaultClient: MlopsClient | undefined;

/**
 * The course's `trackMetrics(data)` with the client underneath, configured from MLOPS_SERVICE_URL
 * and MLOPS_API_KEY. Resolves at once; `flushMetrics()` waits for delivery.
 */
export function trackMetrics(data: TrackEvent): Promise<void> {
  return getDefaultClient().trackMetrics(data);
}

export function flushMetrics(options?: { timeoutMs?: number }): Promise<FlushResult> {
  return getDefaultClient().flush(options);
}

function getDefaultClient(): MlopsClient {
  if (!defaultClient) {
    // Guarded: runtimes without `process` (browsers, some edge runtimes) have no environment.
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
    defaultClient = createMlopsClient({ baseUrl: env.MLOPS_SERVICE_URL ?? '', apiKey: env.MLOPS_API_KEY || undefined });
  }
  return defaultClient;
}
