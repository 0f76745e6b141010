/**
 * `mlops-service/client`: the Next.js app's `trackMetrics(data)`, made reliable. Zero
 * dependencies, fetch only (Node 18+, Vercel/Next.js edge, Cloudflare, Deno, browsers).
 *
 * - `track(event)` returns at once and never throws: the chat reply is never delayed or broken.
 * - Each event gets an `event_id` once (crypto.randomUUID), so every retry is idempotent: the
 *   service stores it once even when an acknowledgement was lost to a timeout.
 * - Per-call timeout; retries with exponential backoff and full jitter on network errors, timeouts,
 *   408, 429 and 5xx. `Retry-After` pauses the whole client, jittered above the hint so that clients
 *   told the same hint do not all come back at the same instant; every wait is capped (`maxDelayMs`).
 *   While the service fails, one request at a time probes it.
 * - An event is retried for up to `giveUpAfterMs` (15 min): a 10-minute outage loses nothing.
 * - Optional batching through `POST /track/batch` (up to 500 events per request); a batch refused
 *   for some of its events drops only those and resends the rest.
 * - A bounded queue. When it is full, new events go to the optional spool (`spool`, e.g. the
 *   JSON-lines folder of `mlops-service/client/file-spool` on Node), read back when the service
 *   answers again and when the next process starts; without one they are refused.
 * - Every event lost is counted in `stats()`, passed to `onDrop` and logged (one line per 10 s at
 *   most, naming how many and why), never silent.
 * - `flush()` for serverless callers that must finish sending before their function returns;
 *   `close()` for a long-running process that stops (unsent events go to the spool).
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
  /** The queue was full when the event arrived, and there is no spool (or its write buffer was full too). */
  | 'overflow'
  /** The queue was full and the spool refused the event: full, or it could not be written. */
  | 'spool_full'
  /** A line of the spool could not be read back (a write cut short by a crash); `events` is empty, `count` says how many. */
  | 'spool_unreadable'
  /** The service refused it (400 invalid, 401/403 key, 404 wrong URL, 413, 415…): retrying cannot help. */
  | 'rejected'
  /** Not delivered within `giveUpAfterMs` or `maxRetries` (network, timeouts, 429, 5xx). */
  | 'retries_exhausted'
  /** Still unsent when `close()` ended, with no spool to keep it; or tracked after `close()`. */
  | 'shutdown'
  /** It could not be serialised, or no base URL is configured. */
  | 'invalid';

export interface DropInfo {
  reason: DropReason;
  events: TrackEvent[];
  /** How many events were lost: `events.length`, except for `spool_unreadable`. */
  count: number;
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
  /** Given up (rejected, retries exhausted, spool full or unreadable, shutdown, invalid). */
  dropped: number;
  /** Refused because the queue was full and there was no spool. Events lost = dropped + overflowed. */
  overflowed: number;
  /** In the spool now (written, not yet delivered or dropped), those being sent from it included. */
  spooled: number;
  /** Written to the spool, in total. */
  spilled: number;
  /** Read back from the spool to be sent, in total. */
  replayed: number;
}

/** Time and timers, injectable so that tests drive a fake clock instead of sleeping. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface SpooledEvent {
  event: TrackEvent;
  /** Given back to `release` once the event is delivered or dropped. */
  handle: unknown;
}

/**
 * Where events wait outside memory. An event leaves it only when released (delivered or dropped),
 * so a crash after `take` sends it again with the same event_id, and the service stores it once.
 */
export interface EventSpool {
  /** Stores events in order; resolves with how many (from the first) were stored: the rest did not fit. */
  append(events: TrackEvent[]): Promise<number>;
  /** Up to `max` stored events not handed out yet, oldest first; `unreadable`: lines skipped as corrupt. */
  take(max: number): Promise<{ events: SpooledEvent[]; unreadable: number }>;
  /** Those events are settled: their room may be freed. */
  release(handles: unknown[]): Promise<void>;
  /** Events stored and not released. */
  stored(): number;
  /** Events stored and not handed out by `take`. */
  waiting(): number;
  close?(): Promise<void> | void;
}

export interface MlopsClientOptions {
  /** MLOPS_SERVICE_URL: the bare base URL, e.g. http://host:5001 or an API Gateway stage URL. */
  baseUrl: string;
  /** Sent as `X-API-Key`. */
  apiKey?: string;
  /** Per request (default 5000 ms, the course's timeout). */
  timeoutMs?: number;
  /** Attempts after the first, at most, per event (default: no limit; `giveUpAfterMs` bounds retrying). */
  maxRetries?: number;
  /** An event not delivered this long after it was queued is given up (default 15 min). */
  giveUpAfterMs?: number;
  /** Backoff after n failures in a row: random(0, min(maxDelayMs, baseDelayMs·2ⁿ)) (default 200 ms). */
  baseDelayMs?: number;
  /** The longest single wait, backoff and `Retry-After` alike (default 30 s). */
  maxDelayMs?: number;
  /** Batch through `/track/batch`: `true` or sizes (defaults 100 events, 1000 ms). Off by default. */
  batch?: boolean | { maxEvents?: number; maxWaitMs?: number };
  /** Events held in memory at most, waiting or in flight (default 1000); more go to the spool or are refused. */
  maxQueue?: number;
  /** Requests in flight at once while the service answers (default 4). */
  concurrency?: number;
  /** Keeps events the queue cannot hold and those unsent at `close()`; read back when the service answers. */
  spool?: EventSpool;
  /** Called for every loss, with how many events and why; exceptions are swallowed. */
  onDrop?: (info: DropInfo) => void;
  /** Where warnings go (default console); `false` for none. Never given the API key. */
  logger?: { warn(message: string): void } | false;
  /** Override fetch (tests, instrumentation). */
  fetch?: typeof fetch;
  /** Override time and timers (tests). */
  clock?: Clock;
  /** Override the random source of the jitter (tests): numbers in [0, 1). */
  random?: () => number;
}

export interface FlushResult {
  /** True when nothing is left queued, in flight or in the spool. */
  ok: boolean;
  /** Events still queued, in flight or spooled when flush returned (they keep going while the process lives). */
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
  /**
   * For a process that stops: flushes for up to timeoutMs (default 5 s), then stops sending and
   * moves what is still unsent to the spool (without one, reports it as dropped: `shutdown`).
   * Never rejects; `track` after it drops.
   */
  close(options?: { timeoutMs?: number }): Promise<FlushResult>;
  stats(): ClientStats;
}

export const MAX_BATCH_EVENTS = 500;

/**
 * Events waiting to be written to the spool, in JSON characters at most: a burst beyond the queue
 * goes to the spool whatever `maxQueue` is, while the memory it takes stays bounded.
 */
const SPOOL_WRITE_BUFFER_CHARS = 2 ** 20;

/** Full-jitter exponential backoff: random(0, min(cap, base·2^attempt)), attempt from 0. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

/**
 * The wait after a `Retry-After` hint: uniform in [lo, hi), hi = min(cap, 1.5·hint + the backoff
 * ceiling of this attempt), lo = min(hint, ⅔·hi). Never before the hint unless the cap is below it
 * (then within the top third under the cap); spread, so that clients told the same hint do not all
 * return at once, and wider as failures repeat.
 */
function retryAfterDelay(hintMs: number, attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const hi = Math.min(capMs, hintMs * 1.5 + Math.min(capMs, baseMs * 2 ** attempt));
  const lo = Math.min(hintMs, (hi * 2) / 3);
  return Math.floor(lo + random() * (hi - lo));
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

const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Item {
  event: TrackEvent;
  body: string;
  attempts: number;
  readyAt: number;
  queuedAt: number;
  /** Sent alone through /track: its batch was refused as a whole without naming the bad events. */
  alone?: boolean;
  /** Read from the spool: released there once delivered or dropped. */
  fromSpool?: boolean;
  handle?: unknown;
}

const RETRYABLE = (status: number) => status === 408 || status === 429 || status >= 500;
const errorText = (error: unknown) => (error as Error)?.message ?? String(error);

export function createMlopsClient(options: MlopsClientOptions): MlopsClient {
  const baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxRetries = options.maxRetries ?? Infinity;
  const giveUpAfter = options.giveUpAfterMs ?? 15 * 60_000;
  const baseDelay = options.baseDelayMs ?? 200;
  const maxDelay = options.maxDelayMs ?? 30_000;
  const maxQueue = Math.max(1, options.maxQueue ?? 1000);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const batchOpt = options.batch === true ? {} : options.batch || undefined;
  // Lowered when the service answers 413 (a body limit smaller than our batches).
  let batchSize = batchOpt ? Math.min(MAX_BATCH_EVENTS, Math.max(1, batchOpt.maxEvents ?? 100)) : 1;
  const batchWait = batchOpt?.maxWaitMs ?? 1000;
  const doFetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  const logger = options.logger === false ? undefined : (options.logger ?? console);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const spool = options.spool;

  let batching = batchOpt !== undefined;
  let queue: Item[] = [];
  let inFlightEvents = 0;
  let inFlightRequests = 0;
  /** Of the requests in flight: aborted by close(). */
  const inFlightAborts = new Set<AbortController>();
  let pausedUntil = 0;
  /** Requests failed in a row (network, timeout, 408, 429, 5xx); 0 while the service answers. */
  let failures = 0;
  let lastSuccessAt = -Infinity;
  let flushing = 0;
  let closed = false;
  let spoolClosed = false;
  let timer: unknown;
  let timerAt = Infinity;
  const watchers = new Set<() => void>();
  const counts = { sent: 0, duplicates: 0, retried: 0, dropped: 0, overflowed: 0, spilled: 0, replayed: 0 };
  // Spool traffic: events waiting to be written (bounded by SPOOL_WRITE_BUFFER_CHARS), reads and releases under way.
  const spillBuffer: Item[] = [];
  let spillBufferChars = 0;
  let spilling = false;
  let replaying = false;
  let replayReserved = 0;
  let spoolOps = 0;
  let spoolRetryAt = 0;
  // Drop reports not logged yet, by reason.
  const unreported = new Map<DropReason, { count: number; detail: string }>();
  let lastReportAt = -Infinity;
  let reportTimer: unknown;

  const held = () => queue.length + inFlightEvents + replayReserved;
  const stats = (): ClientStats => ({
    queued: queue.length,
    inFlight: inFlightEvents,
    ...counts,
    spooled: (spool?.stored() ?? 0) + spillBuffer.length,
  });
  const result = (): FlushResult => {
    const s = stats();
    const pending = s.queued + s.inFlight + s.spooled;
    return { ok: pending === 0, pending, stats: s };
  };

  function log(message: string) {
    try {
      logger?.warn(`[mlops-client] ${message}`);
    } catch {
      /* a broken logger must not break the caller */
    }
  }

  function reportDrops() {
    reportTimer = undefined;
    if (unreported.size === 0) return;
    let total = 0;
    const parts: string[] = [];
    for (const [reason, { count, detail }] of unreported) {
      total += count;
      parts.push(`${count} ${reason}${detail ? ` (${detail})` : ''}`);
    }
    unreported.clear();
    lastReportAt = clock.now();
    log(`${total} event(s) dropped: ${parts.join(', ')} (totals: dropped ${counts.dropped}, overflowed ${counts.overflowed})`);
  }

  function drop(info: Omit<DropInfo, 'count'> & { count?: number }) {
    const full: DropInfo = { ...info, count: info.count ?? info.events.length };
    if (full.count === 0) return;
    if (full.reason === 'overflow') counts.overflowed += full.count;
    else counts.dropped += full.count;
    const detail = [full.status ? `HTTP ${full.status}` : '', full.message ?? ''].filter(Boolean).join(': ');
    const entry = unreported.get(full.reason) ?? { count: 0, detail };
    entry.count += full.count;
    entry.detail = detail;
    unreported.set(full.reason, entry);
    // One line per 10 s at most: an outage must not flood the app's log. Drops in between are summed
    // into a line at the end of the 10 s, so none goes unlogged.
    const wait = lastReportAt + 10_000 - clock.now();
    if (wait <= 0) reportDrops();
    else if (reportTimer === undefined) {
      reportTimer = clock.setTimeout(reportDrops, wait);
      (reportTimer as { unref?: () => void } | undefined)?.unref?.();
    }
    try {
      options.onDrop?.(full);
    } catch {
      /* the caller's callback must not break the client */
    }
  }

  function release(items: Item[]) {
    const handles = items.filter((i) => i.fromSpool).map((i) => i.handle);
    if (!spool || handles.length === 0) return;
    spoolOps++;
    spool
      .release(handles)
      .catch((error) => log(`spool: could not free settled events: ${errorText(error)}`))
      .finally(() => {
        spoolOps--;
        pump();
      });
  }

  function dropItems(reason: DropReason, items: Item[], status: number | undefined, message: string) {
    if (items.length === 0) return;
    release(items);
    drop({ reason, events: items.map((i) => i.event), status, message });
  }

  /** To the spool when there is one (its write buffer is memory too, so bounded); else refused. */
  function spill(items: Item[]): number {
    if (!spool || spoolClosed) {
      dropItems(closed ? 'shutdown' : 'overflow', items, undefined, closed ? 'the client is closed' : `queue full (${maxQueue} events)`);
      return 0;
    }
    let accepted = 0;
    for (const item of items) {
      // One event always fits, however large: an empty buffer never refuses.
      if (spillBuffer.length > 0 && spillBufferChars + item.body.length > SPOOL_WRITE_BUFFER_CHARS) break;
      spillBuffer.push(item);
      spillBufferChars += item.body.length;
      accepted++;
    }
    dropItems('overflow', items.slice(accepted), undefined, `queue full (${maxQueue} events) and the spool is not keeping up`);
    if (!spilling && accepted > 0) {
      // Started after the caller's synchronous code: a burst of track() calls becomes one append.
      spilling = true;
      queueMicrotask(() => void writeSpill());
    }
    return accepted;
  }

  async function writeSpill() {
    try {
      while (spillBuffer.length) {
        const batch = spillBuffer.slice(0, MAX_BATCH_EVENTS);
        let stored = 0;
        let failure = 'the spool is full';
        try {
          stored = Math.max(0, Math.min(batch.length, await spool!.append(batch.map((i) => i.event))));
        } catch (error) {
          failure = `the spool could not be written: ${errorText(error)}`;
        }
        spillBuffer.splice(0, batch.length);
        for (const i of batch) spillBufferChars -= i.body.length;
        counts.spilled += stored;
        // Events from the spool parked again: their new copy is written, the old one can go.
        release(batch.slice(0, stored));
        dropItems('spool_full', batch.slice(stored), undefined, failure);
      }
    } finally {
      spilling = false;
      pump();
    }
  }

  /**
   * Reads the spool back into half the queue at most (the rest is for live events): while the
   * service answers, or, while it fails, when nothing in memory is left to probe it with.
   */
  function maybeReplay(now: number) {
    if (!spool || replaying || closed || now < pausedUntil || now < spoolRetryAt) return;
    if (failures > 0 && held() > 0) return;
    const room = Math.floor(maxQueue / 2) - held();
    if (room <= 0 || spool.waiting() === 0) return;
    replaying = true;
    replayReserved = room;
    spool
      .take(room)
      .then(
        ({ events, unreadable }) => {
          const at = clock.now();
          for (const { event, handle } of events.slice(0, room)) {
            const withId = event?.event_id ? event : { ...event, event_id: newEventId() };
            queue.push({ event: withId, body: JSON.stringify(withId), attempts: 0, readyAt: at, queuedAt: at, fromSpool: true, handle });
          }
          counts.replayed += events.length;
          drop({ reason: 'spool_unreadable', events: [], count: unreadable, message: 'unreadable spool line(s), a write cut short by a crash' });
          // A spool that hands out nothing while saying it has more must not spin.
          if (events.length + unreadable === 0) spoolRetryAt = at + maxDelay;
        },
        (error) => {
          spoolRetryAt = clock.now() + maxDelay;
          log(`spool: could not read: ${errorText(error)}`);
        },
      )
      .finally(() => {
        replaying = false;
        replayReserved = 0;
        pump();
      });
  }

  function cancelWake() {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    timerAt = Infinity;
  }

  function wakeAt(at: number) {
    if (closed || at >= timerAt) return;
    if (timer !== undefined) clock.clearTimeout(timer);
    timerAt = at;
    timer = clock.setTimeout(
      () => {
        timer = undefined;
        timerAt = Infinity;
        pump();
      },
      Math.max(0, at - clock.now()),
    );
  }

  function settle() {
    for (const w of [...watchers]) w();
  }

  /** Gives up events; with a spool, those that failed only because nothing got through since they were queued wait there instead. */
  function giveUp(items: Item[], status: number | undefined, message: string) {
    const park = spool ? items.filter((i) => lastSuccessAt < i.queuedAt) : [];
    if (park.length) spill(park);
    dropItems('retries_exhausted', items.filter((i) => !park.includes(i)), status, message);
  }

  function pump() {
    if (closed) return settle();
    const now = clock.now();
    if (failures > 0) {
      const expired = queue.filter((i) => now - i.queuedAt >= giveUpAfter);
      if (expired.length) {
        queue = queue.filter((i) => now - i.queuedAt < giveUpAfter);
        giveUp(expired, undefined, `not delivered within ${giveUpAfter} ms`);
      }
    }
    let next = Infinity;
    if (now >= pausedUntil) {
      // While the service fails, a single request probes it; all of them once it answers.
      const limit = failures > 0 ? 1 : concurrency;
      while (inFlightRequests < limit) {
        const ready = queue.filter((i) => i.readyAt <= now);
        if (ready.length === 0) break;
        const alone = ready.find((i) => i.alone);
        let take: Item[];
        if (alone || !batching) take = [alone ?? ready[0]!];
        else if (!flushing && ready.length < batchSize && ready[0]!.queuedAt + batchWait > now) {
          // Batching: wait for a full batch or the oldest event's deadline, unless flushing.
          next = ready[0]!.queuedAt + batchWait;
          break;
        } else take = ready.slice(0, batchSize);
        const taken = new Set(take);
        queue = queue.filter((i) => !taken.has(i));
        void send(take);
      }
    }
    maybeReplay(now);
    for (const i of queue) {
      const at = Math.max(i.readyAt, pausedUntil);
      if (at > now) next = Math.min(next, at);
      if (failures > 0) next = Math.min(next, i.queuedAt + giveUpAfter);
    }
    if (spool && spool.waiting() > 0) {
      const replayAt = Math.max(pausedUntil, spoolRetryAt);
      if (replayAt > now) next = Math.min(next, replayAt);
    }
    // An idle client holds no timer: nothing keeps the process alive once everything is settled.
    if (next < Infinity) wakeAt(next);
    else cancelWake();
    settle();
  }

  function succeeded(items: Item[], parsed: any) {
    failures = 0;
    lastSuccessAt = clock.now();
    counts.sent += items.length;
    counts.duplicates += items.length === 1 ? (parsed?.duplicate === true ? 1 : 0) : Number(parsed?.duplicates) || 0;
    release(items);
  }

  function failed(items: Item[], status: number | undefined, message: string, retryAfterMs: number | undefined) {
    const now = clock.now();
    failures++;
    // The whole client waits: the service is down or asked for room.
    const wait =
      retryAfterMs === undefined
        ? backoffDelay(failures - 1, baseDelay, maxDelay, random)
        : retryAfterDelay(retryAfterMs, failures - 1, baseDelay, maxDelay, random);
    pausedUntil = Math.max(pausedUntil, now + wait);
    const expired = (i: Item) => i.attempts > maxRetries || now - i.queuedAt >= giveUpAfter;
    giveUp(items.filter(expired), status, message);
    const again = items.filter((i) => !expired(i));
    for (const i of again) {
      counts.retried++;
      // Its own backoff too: an event the service keeps failing on backs off while others get through.
      i.readyAt = now + backoffDelay(i.attempts - 1, baseDelay, maxDelay, random);
    }
    queue.unshift(...again);
  }

  /** A refused batch: drop the events its details name (`events[3].business_id`), resend the rest; none named: each alone. */
  function refusedBatch(items: Item[], parsed: any, message: string) {
    const bad = new Set<number>();
    for (const d of Array.isArray(parsed?.details) ? parsed.details : []) {
      const m = /^events\[(\d+)\]/.exec(String(d?.field ?? ''));
      if (m && Number(m[1]) < items.length) bad.add(Number(m[1]));
    }
    dropItems('rejected', items.filter((_, k) => bad.has(k)), 400, message);
    const rest = items.filter((_, k) => !bad.has(k));
    for (const i of rest) {
      i.attempts--;
      if (bad.size === 0) i.alone = true;
    }
    queue.unshift(...rest);
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
    const controller = new AbortController();
    inFlightAborts.add(controller);
    const deadline = clock.setTimeout(() => controller.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      let res: Response;
      try {
        res = await doFetch(`${baseUrl}${path}`, { method: 'POST', headers, body, signal: controller.signal });
      } catch (error) {
        failed(items, undefined, errorText(error), undefined);
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
      if (res.ok) return succeeded(items, parsed);
      const message = typeof parsed?.message === 'string' ? parsed.message : text.slice(0, 200);
      if (RETRYABLE(res.status)) return failed(items, res.status, message, parseRetryAfter(res.headers.get('retry-after'), clock.now()));
      if (!single && (res.status === 404 || res.status === 405)) {
        // A service without /track/batch: send one by one from now on.
        batching = false;
        log(`${baseUrl}/track/batch answered ${res.status}: batching turned off`);
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
      if (!single && res.status === 400) return refusedBatch(items, parsed, message);
      dropItems('rejected', items, res.status, `${path}: ${message}`);
    } catch (error) {
      // Nothing above should throw; if it does, the events are reported, not lost silently.
      dropItems('invalid', items, undefined, String(error));
    } finally {
      clock.clearTimeout(deadline);
      inFlightAborts.delete(controller);
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
      const withId: TrackEvent = event?.event_id ? event : { ...event, event_id: newEventId() };
      const body = JSON.stringify(withId);
      if (typeof body !== 'string') throw new TypeError('not a JSON object');
      const now = clock.now();
      const item: Item = { event: withId, body, attempts: 0, readyAt: now, queuedAt: now };
      // Memory full (or closed): the new event goes to the spool, or is the one refused.
      if (closed || held() >= maxQueue) return spill([item]) ? withId.event_id! : '';
      queue.push(item);
      // Sending starts after the caller's synchronous code: track() itself does no I/O.
      queueMicrotask(pump);
      return withId.event_id!;
    } catch (error) {
      drop({ reason: 'invalid', events: [event], message: `could not serialise the event: ${errorText(error)}` });
      return '';
    }
  }

  /** Resolves once `done()` holds, or at `timeoutMs` on the client's clock (at once when ≤ 0, without a timer). */
  function until(done: () => boolean, timeoutMs = Infinity): Promise<void> {
    return new Promise<void>((resolve) => {
      if (timeoutMs <= 0 || done()) return resolve();
      let deadline: unknown;
      const finish = () => {
        watchers.delete(check);
        if (deadline !== undefined) clock.clearTimeout(deadline);
        resolve();
      };
      const check = () => {
        if (done()) finish();
      };
      watchers.add(check);
      if (timeoutMs < Infinity) deadline = clock.setTimeout(finish, timeoutMs);
      check();
    });
  }

  const idle = () =>
    queue.length === 0 && inFlightEvents === 0 && spillBuffer.length === 0 && !replaying && spoolOps === 0 && (spool?.stored() ?? 0) === 0;

  async function flush(opts: { timeoutMs?: number } = {}): Promise<FlushResult> {
    if (closed) return result();
    flushing++;
    const waiting = until(idle, opts.timeoutMs ?? 10_000);
    pump();
    await waiting;
    flushing--;
    return result();
  }

  async function close(opts: { timeoutMs?: number } = {}): Promise<FlushResult> {
    if (closed) return result();
    await flush({ timeoutMs: opts.timeoutMs ?? 5000 });
    closed = true;
    cancelWake();
    // close() ends within its timeout, not a request timeout later: aborted events come back to the
    // queue (they may have landed; their event_id makes a resend from the spool harmless).
    for (const controller of inFlightAborts) controller.abort(new Error('the client is closing'));
    await until(() => inFlightRequests === 0 && !replaying);
    // Events read from the spool are still stored there: the next process sends them again.
    const unsent = queue.filter((i) => !i.fromSpool);
    queue = [];
    if (unsent.length) spill(unsent);
    await until(() => !spilling && spillBuffer.length === 0 && spoolOps === 0);
    spoolClosed = true;
    try {
      await spool?.close?.();
    } catch (error) {
      log(`spool: could not close: ${errorText(error)}`);
    }
    if (reportTimer !== undefined) clock.clearTimeout(reportTimer);
    reportDrops();
    return result();
  }

  // Events an earlier process left in the spool go out as soon as the service answers.
  if (spool) queueMicrotask(pump);

  return {
    track,
    trackMetrics: (event) => {
      track(event);
      return Promise.resolve();
    },
    flush,
    close,
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
