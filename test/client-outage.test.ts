/**
 * The client SDK through service outages, on a fake clock against a real HTTP server on loopback
 * (test/client-sim.ts): a 10-minute outage (503 with Retry-After, then connection refused) loses
 * nothing and counts nothing twice, with the queue never above its cap; the spool is replayed
 * after a graceful restart and after a crash; drops are reported with how many and why; the
 * jitter spreads clients above the server's hint and the wait cap bounds a huge Retry-After.
 * No test sleeps: time moves only when the test moves it, once the real I/O has settled.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { createMlopsClient, type DropInfo, type MlopsClientOptions, type TrackEvent } from '../src/client/index.ts';
import { createFileSpool, type FileSpoolOptions } from '../src/client/file-spool.ts';
import { rng } from './helpers/events.ts';
import { FakeClock, IoTracker, runUntil, SimService } from './client-sim.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'mlops-client-spool-'));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const segments = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.jsonl'));
const event = (i: number, business = 'outage'): TrackEvent => ({ business_id: business, response_time_ms: 100 + i, tokens_used: i });

interface Rig {
  clock: FakeClock;
  io: IoTracker;
  sim: SimService;
  drops: DropInfo[];
  warnings: string[];
  client(extra?: Partial<MlopsClientOptions>, spool?: FileSpoolOptions): ReturnType<typeof createMlopsClient>;
  /** Moves time to `to` (absolute), checking the memory bound after every step. */
  run(to: number): Promise<void>;
  maxHeld: number;
}

let rig: Rig;

beforeEach(async () => {
  const clock = new FakeClock();
  const io = new IoTracker();
  const sim = new SimService(clock);
  await sim.start();
  const drops: DropInfo[] = [];
  const warnings: string[] = [];
  const clients: ReturnType<typeof createMlopsClient>[] = [];
  const r: Rig = {
    clock,
    io,
    sim,
    drops,
    warnings,
    maxHeld: 0,
    client(extra = {}, spoolOptions) {
      const c = createMlopsClient({
        baseUrl: sim.url,
        fetch: io.fetch,
        clock,
        random: rng(42 + clients.length),
        onDrop: (d) => drops.push(d),
        logger: { warn: (m) => warnings.push(m) },
        spool: spoolOptions ? io.spool(createFileSpool(spoolOptions)) : undefined,
        ...extra,
      });
      clients.push(c);
      return c;
    },
    async run(to) {
      const check = () => {
        for (const c of clients) {
          const s = c.stats();
          r.maxHeld = Math.max(r.maxHeld, s.queued + s.inFlight);
        }
      };
      await runUntil(clock, io, to, check);
    },
  };
  rig = r;
});

afterEach(async () => {
  await rig.sim.stop();
});

describe('client SDK through a 10-minute outage (fake clock, real HTTP)', () => {
  it('loses nothing and counts nothing twice: 503 + Retry-After for 5 min, connection refused for 5 min, then back', async () => {
    const dir = tempDir();
    const maxQueue = 50;
    const c = rig.client({ maxQueue, batch: { maxEvents: 20, maxWaitMs: SECOND } }, { dir, segmentBytes: 4096 });
    const t0 = rig.clock.now();
    const ids: string[] = [];
    let outageRequests = 0;
    for (let s = 0; s < 12 * 60; s++) {
      await rig.run(t0 + s * SECOND);
      if (s === 30) rig.sim.loseAcks = 1; // an acknowledgement lost before the outage: the retry must not count twice
      if (s === 60) rig.sim.mode = 'unavailable';
      if (s === 360) {
        outageRequests = rig.sim.requests.length;
        await rig.sim.refuse();
      }
      if (s === 660) await rig.sim.up();
      ids.push(c.track(event(s)));
      const st = c.stats();
      rig.maxHeld = Math.max(rig.maxHeld, st.queued + st.inFlight);
    }
    await rig.run(t0 + 20 * MINUTE);

    const stats = c.stats();
    assert.equal(new Set(ids).size, 720, 'every event accepted with its own id');
    assert.deepEqual(rig.sim.storedIds, new Set(ids), 'every event stored');
    assert.equal(rig.sim.stored.size, 720, 'each exactly once');
    const cut = rig.sim.requests.filter((r) => r.status === 'cut');
    assert.equal(cut.length, 1);
    assert.equal(rig.sim.duplicates, cut[0]!.events, 'only the events whose acknowledgement was lost came twice, with the same ids');
    assert.equal(stats.duplicates, cut[0]!.events);
    assert.deepEqual(rig.drops, [], 'nothing dropped');
    assert.ok(rig.maxHeld <= maxQueue, `memory bounded: ${rig.maxHeld} events held at most, cap ${maxQueue}`);
    assert.ok(stats.spilled > 500, `the overflow went to the spool (${stats.spilled} events)`);
    assert.equal(stats.replayed, stats.spilled, 'and all of it came back');
    assert.deepEqual({ queued: stats.queued, inFlight: stats.inFlight, spooled: stats.spooled }, { queued: 0, inFlight: 0, spooled: 0 });
    assert.deepEqual(segments(dir), [], 'spool files deleted once delivered');

    // While the service answered 503 + Retry-After: 5, nobody came back sooner, and one request probed at a time.
    const unavailable = rig.sim.requests.filter((r) => r.status === 503);
    assert.ok(unavailable.length >= 10);
    for (let k = 1; k < unavailable.length; k++) {
      const gap = unavailable[k]!.at - unavailable[k - 1]!.at;
      assert.ok(gap >= 5 * SECOND, `request ${k} came ${gap} ms after a Retry-After of 5 s`);
    }
    assert.ok(outageRequests - rig.sim.requests.filter((r) => r.at < t0 + 60 * SECOND).length <= 60, 'at most one request per 5 s');
    await c.close();
  });

  it('without a spool, a 10-minute outage within the queue size loses nothing: events are retried for 15 minutes', async () => {
    const c = rig.client({ maxQueue: 1000 });
    const t0 = rig.clock.now();
    const ids: string[] = [];
    for (let s = 0; s < 12 * 60; s += 2) {
      await rig.run(t0 + s * SECOND);
      if (s === 60) await rig.sim.refuse();
      if (s === 360) {
        await rig.sim.up();
        rig.sim.mode = 'unavailable';
      }
      if (s === 660) rig.sim.mode = 'up';
      ids.push(c.track(event(s)));
    }
    await rig.run(t0 + 20 * MINUTE);
    assert.deepEqual(rig.sim.storedIds, new Set(ids));
    assert.equal(rig.sim.duplicates, 0);
    assert.deepEqual(rig.drops, []);
    assert.equal(c.stats().sent, ids.length);
  });
});

describe('client SDK spool across restarts', () => {
  it('a graceful restart: close() moves unsent events to the spool, the next client sends them on start', async () => {
    const dir = tempDir();
    await rig.sim.refuse();
    const a = rig.client({ maxQueue: 10 }, { dir });
    const ids = Array.from({ length: 30 }, (_, i) => a.track(event(i, 'restart')));
    await rig.run(rig.clock.now() + 10 * SECOND);
    assert.equal(a.stats().spilled, 20, 'what the queue could not hold went to disk');
    const closing = a.close({ timeoutMs: 2 * SECOND });
    await rig.run(rig.clock.now() + 5 * SECOND);
    const closed = await closing;
    assert.equal(closed.ok, false);
    assert.equal(closed.stats.spooled, 30, 'the 10 unsent events of the queue joined them');
    assert.equal(a.track(event(99, 'restart')), '', 'a closed client takes nothing…');
    assert.equal(rig.drops.at(-1)?.reason, 'shutdown', '…and says so');
    assert.equal(rig.sim.stored.size, 0);

    await rig.sim.up();
    rig.drops.length = 0;
    const b = rig.client({ maxQueue: 10 }, { dir });
    await rig.run(rig.clock.now() + MINUTE);
    assert.deepEqual(rig.sim.storedIds, new Set(ids), 'the next process delivered every spooled event');
    assert.equal(rig.sim.duplicates, 0);
    assert.equal(b.stats().replayed, 30);
    assert.ok(rig.maxHeld <= 10);
    assert.deepEqual(rig.drops, []);
    assert.deepEqual(segments(dir), []);
    await b.close();
  });

  it('a crash: a killed process leaves its spool, the next one takes over the folder and sends it; a torn last line is reported', async () => {
    const dir = tempDir();
    await rig.sim.refuse();
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/client-crash-child.ts', dir, rig.sim.url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    while (!out.includes('\n')) {
      const [code] = await Promise.race([once(child, 'exit'), once(child.stdout, 'data')]);
      if (typeof code === 'number' || code === null) break;
    }
    const { ids, spilled } = JSON.parse(out) as { ids: string[]; spilled: number };
    assert.equal(spilled, 45);
    child.kill('SIGKILL');
    await once(child, 'exit');
    // A write the crash cut short: half a line at the end of the last segment.
    const files = segments(dir).sort();
    appendFileSync(join(dir, files.at(-1)!), '{"business_id":"crash","response_time_ms":1');

    await rig.sim.up();
    const c = rig.client({ maxQueue: 10 }, { dir });
    assert.equal(c.stats().spooled, 46, 'found on start: 45 events and the torn line');
    await rig.run(rig.clock.now() + MINUTE);
    assert.deepEqual(rig.sim.storedIds, new Set(ids.slice(5)), 'the 45 spooled events arrived; the 5 in memory died with the process');
    assert.deepEqual(
      rig.drops.map((d) => [d.reason, d.count]),
      [['spool_unreadable', 1]],
    );
    assert.match(rig.warnings.join('\n'), /1 event\(s\) dropped: 1 spool_unreadable/);
    assert.deepEqual(segments(dir), []);
    await c.close();
  });

  it('events parked in the spool past giveUpAfterMs are still delivered when the app has stopped tracking', async () => {
    const dir = tempDir();
    await rig.sim.refuse();
    const c = rig.client({ maxQueue: 10, giveUpAfterMs: MINUTE }, { dir });
    const ids = Array.from({ length: 5 }, (_, i) => c.track(event(i, 'parked')));
    await rig.run(rig.clock.now() + 3 * MINUTE);
    assert.ok(c.stats().spilled >= 5, 'parked in the spool, not dropped, when their horizon passed');
    assert.deepEqual(rig.drops, []);
    await rig.sim.up();
    await rig.run(rig.clock.now() + MINUTE);
    assert.deepEqual(rig.sim.storedIds, new Set(ids), 'a probe from the spool found the service back');
    assert.deepEqual(rig.drops, []);
    assert.equal(c.stats().spooled, 0);
    assert.deepEqual(segments(dir), []);
    await c.close();
  });

  it('refuses a second user of the same spool folder', async () => {
    const dir = tempDir();
    const first = createFileSpool({ dir });
    assert.throws(() => createFileSpool({ dir }), /The mlops client spool folder .* is already in use by process \d+.*its own folder/);
    await first.close();
    await createFileSpool({ dir }).close();
  });
});

describe('client SDK reports every drop: how many and why', () => {
  it('queue full without a spool: the newest events are refused, counted, and logged with their number', async () => {
    await rig.sim.refuse();
    const c = rig.client({ maxQueue: 10 });
    const ids = Array.from({ length: 25 }, (_, i) => c.track(event(i)));
    assert.equal(ids.filter((id) => id === '').length, 15, 'refused at once');
    assert.equal(c.stats().overflowed, 15);
    assert.deepEqual(new Set(rig.drops.map((d) => d.reason)), new Set(['overflow']));
    assert.equal(rig.warnings.length, 1, 'one line at once…');
    await rig.run(rig.clock.now() + 11 * SECOND);
    assert.equal(rig.warnings.length, 2, '…and one for the rest 10 s later');
    assert.match(rig.warnings[0]!, /1 event\(s\) dropped: 1 overflow \(queue full \(10 events\)\)/);
    assert.match(rig.warnings[1]!, /14 event\(s\) dropped: 14 overflow/);
    await c.close({ timeoutMs: 0 });
  });

  it('spool full: what neither the queue nor the spool can hold is reported as spool_full', async () => {
    await rig.sim.refuse();
    const dir = tempDir();
    const line = Buffer.byteLength(`${JSON.stringify({ ...event(10), event_id: '00000000-0000-4000-8000-000000000000' })}\n`);
    const c = rig.client({ maxQueue: 10 }, { dir, maxBytes: line * 12 });
    for (let i = 10; i < 50; i++) c.track(event(i));
    await rig.run(rig.clock.now() + 11 * SECOND);
    const full = rig.drops.filter((d) => d.reason === 'spool_full').reduce((n, d) => n + d.count, 0);
    assert.equal(c.stats().spilled, 12);
    assert.equal(full, 40 - 10 - 12);
    assert.equal(c.stats().dropped, 18);
    assert.match(rig.warnings.join('\n'), /spool_full \(the spool is full\)/);
    const logged = rig.warnings.map((w) => Number(/(\d+) spool_full/.exec(w)?.[1] ?? 0)).reduce((a, b) => a + b, 0);
    assert.equal(logged, 18, 'the log lines add up to every event dropped');
    await c.close({ timeoutMs: 0 });
  });

  it('retries_exhausted once giveUpAfterMs has passed', async () => {
    await rig.sim.refuse();
    const c = rig.client({ giveUpAfterMs: MINUTE });
    for (let i = 0; i < 5; i++) c.track(event(i));
    await rig.run(rig.clock.now() + 59 * SECOND);
    assert.equal(rig.drops.length, 0, 'still trying before the horizon');
    await rig.run(rig.clock.now() + 2 * SECOND);
    assert.deepEqual(
      rig.drops.map((d) => [d.reason, d.count]),
      [['retries_exhausted', 5]],
    );
    assert.match(rig.warnings[0]!, /5 event\(s\) dropped: 5 retries_exhausted \(not delivered within 60000 ms\)/);
  });

  it('a batch refused for some events (400 validation_error, details events[i].field) drops those and stores the rest', async () => {
    const c = rig.client({ batch: { maxEvents: 10, maxWaitMs: SECOND } });
    const ids = Array.from({ length: 10 }, (_, i) => c.track(event(i, i === 3 || i === 7 ? '' : 'batch')));
    await rig.run(rig.clock.now() + 5 * SECOND);
    assert.deepEqual(rig.sim.storedIds, new Set(ids.filter((_, i) => i !== 3 && i !== 7)));
    assert.deepEqual(
      rig.drops.map((d) => [d.reason, d.status, d.events.map((e) => e.event_id)]),
      [['rejected', 400, [ids[3], ids[7]]]],
    );
    assert.match(rig.warnings[0]!, /2 event\(s\) dropped: 2 rejected \(HTTP 400: /);
    assert.deepEqual(
      rig.sim.requests.map((r) => [r.path, r.events, r.status]),
      [
        ['/track/batch', 10, 400],
        ['/track/batch', 8, 200],
      ],
    );
  });

  it('a batch refused without naming its bad events is resent event by event, so the good ones still arrive', async () => {
    rig.sim.batchDetails = false;
    const c = rig.client({ batch: { maxEvents: 5, maxWaitMs: SECOND } });
    const ids = Array.from({ length: 5 }, (_, i) => c.track(event(i, i === 2 ? '' : 'batch')));
    await rig.run(rig.clock.now() + 5 * SECOND);
    assert.deepEqual(rig.sim.storedIds, new Set(ids.filter((_, i) => i !== 2)));
    assert.deepEqual(
      rig.drops.map((d) => [d.reason, d.count, d.events[0]?.event_id]),
      [['rejected', 1, ids[2]]],
    );
  });
});

describe('client SDK jitter and wait cap against a simulated service over real HTTP', () => {
  it('spreads 20 clients told "Retry-After: 5" over [5 s, 7.7 s): none earlier, not all at once', async () => {
    rig.sim.mode = 'unavailable';
    const t0 = rig.clock.now();
    const clients = Array.from({ length: 20 }, (_, k) => {
      const c = rig.client();
      c.track(event(k, `client-${k}`));
      return c;
    });
    await rig.run(t0 + 1);
    assert.equal(rig.sim.requests.length, 20);
    rig.sim.mode = 'up';
    await rig.run(t0 + MINUTE);
    const retries = rig.sim.requests.filter((r) => r.status === 200).map((r) => r.at - t0);
    assert.equal(retries.length, 20);
    for (const at of retries) assert.ok(at >= 5000 && at < 7700, `retried after ${at} ms`);
    assert.ok(new Set(retries).size >= 18, `${new Set(retries).size} distinct instants of 20`);
    assert.ok(Math.max(...retries) - Math.min(...retries) >= 1000, 'spread over more than a second');
    for (const c of clients) assert.equal(c.stats().sent, 1);
  });

  it('caps a huge Retry-After at maxDelayMs (never waiting an hour), still above two thirds of the cap', async () => {
    rig.sim.mode = 'unavailable';
    rig.sim.retryAfter = '3600';
    const t0 = rig.clock.now();
    const c = rig.client({ maxDelayMs: 30_000 });
    c.track(event(1));
    await rig.run(t0 + 1);
    rig.sim.mode = 'up';
    await rig.run(t0 + 2 * MINUTE);
    const retry = rig.sim.requests.find((r) => r.status === 200);
    assert.ok(retry, 'retried within the cap');
    const waited = retry.at - t0;
    assert.ok(waited >= 20_000 && waited <= 30_000, `waited ${waited} ms for a Retry-After of an hour, cap 30 s`);
  });
});
